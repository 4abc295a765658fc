"""The prepared GPU run (bench/gpu.sh, bench/gpu_summary.py), checked here without a GPU.

- ``bash bench/gpu.sh --dry-run`` exits 0 and lists every step with its budget;
- each ``dualgait`` command of the plan parses with the real CLI, and its config and overrides load;
- the whole script runs with a stand-in python (no install, no GPU, fake bench reports in the real key layout),
  so the step runner, the result collection and the summary are exercised before a device call is spent;
- the summary on small fake bench reports: pass, fail, and missing steps and files reported, not crashed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from bench.gpu_summary import build_summary, main, read_steps
from dualgait.cli import get_args_parser
from dualgait.config import load_config

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "gpu.sh"
STEP = re.compile(r"^step (\d+)/(\d+) (\S+) \(budget (\d+) s\): (.*)$")
STEPS = ("install_wheels", "install_dualgait", "gpu_tests", "bench_model_torch", "bench_model_ort", "bench_e2e",
         "bench_walkways")


SCRIPT_ENV = ("OUT", "GPU_STEPS", "GPU_BUDGET_S", "GPU_PYTHON", "GPU_CARRY", "GPU_WORK_DIR")


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without the script's own settings (a developer's or the device's), plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if k not in SCRIPT_ENV}, **(extra or {})}


def _dry_run(env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), "--dry-run"], capture_output=True, text=True, timeout=60,
                          env=_env(env), cwd=REPO)


@pytest.fixture(scope="module")
def plan() -> dict[str, tuple[int, str]]:
    """step name -> (budget s, command) from the dry run's plan."""
    result = _dry_run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "plan ok" in result.stdout
    steps = {}
    for line in result.stdout.splitlines():
        match = STEP.match(line)
        if match:
            steps[match[3]] = (int(match[4]), match[5])
    return steps


def test_dry_run_lists_every_step_within_the_budget(plan: dict[str, tuple[int, str]]) -> None:
    assert tuple(plan) == STEPS
    assert sum(budget for budget, _ in plan.values()) <= 450  # the device call: 8 minutes, summary included
    assert all(budget >= 10 for budget, _ in plan.values())
    assert "--no-index" in plan["install_wheels"][1] and "--no-deps" in plan["install_wheels"][1]
    assert "-m gpu" in plan["gpu_tests"][1] and "--junitxml=" in plan["gpu_tests"][1]


def test_dry_run_runs_nothing(tmp_path: Path) -> None:
    result = _dry_run({"OUT": str(tmp_path / "out"), "GPU_WORK_DIR": str(tmp_path / "work")})
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "work").exists()


def test_dry_run_of_some_steps_only_and_of_an_unknown_one() -> None:
    some = _dry_run({"GPU_STEPS": "install_wheels,bench_e2e"})
    assert some.returncode == 0, some.stderr
    assert [m[3] for m in map(STEP.match, some.stdout.splitlines()) if m] == ["install_wheels", "bench_e2e"]
    unknown = _dry_run({"GPU_STEPS": "install_wheels,bench_everything"})
    assert unknown.returncode == 1 and "no step bench_everything" in unknown.stderr


def test_gpu_tests_step_names_every_gpu_marked_test_file(plan: dict[str, tuple[int, str]]) -> None:
    marks = re.compile(r"^\s*(@pytest\.mark\.gpu|pytestmark\s*=.*pytest\.mark\.gpu)", re.MULTILINE)
    marked = {str(p.relative_to(REPO)) for p in (REPO / "tests").rglob("test_*.py")
              if marks.search(p.read_text(encoding="utf-8"))}
    assert "tests/inference/test_gpu_engines.py" in marked
    named = {arg for arg in shlex.split(plan["gpu_tests"][1]) if arg.startswith("tests/")}
    assert named == marked


def _dualgait_argv(command: str) -> list[str]:
    argv = shlex.split(command)
    at = argv.index("dualgait")
    assert argv[at - 1] == "-m"
    return argv[at + 1:]


@pytest.mark.parametrize("name", [s for s in STEPS if s.startswith("bench_")])
def test_each_dualgait_command_parses_and_its_config_loads(plan: dict[str, tuple[int, str]], name: str) -> None:
    argv = _dualgait_argv(plan[name][1])
    args = get_args_parser().parse_args(argv)  # SystemExit (exit 2) on any flag the CLI does not take
    assert (args.command, args.bench) == ("bench", argv[1])
    cfg = load_config(args.config, args.overrides)  # ConfigError on a bad key or value
    if name.startswith("bench_model"):
        assert args.variants == "late" and args.sizes == "224,512" and args.batch == "1"
        engines = {"bench_model_torch": "torch-cuda-fp16", "bench_model_ort": "onnxruntime-cuda-fp32"}
        assert args.engines == engines[name]
    else:  # the GPU profile, with the detector back on the shared OpenVINO export on the CPU and no TensorRT
        assert args.config == "configs/gpu.yaml"
        assert cfg.inference.detector.weights.endswith("assets/weights/yolo11n_int8_openvino_model")
        assert (cfg.inference.detector.device, cfg.inference.detector.half) == ("cpu", False)
        assert (cfg.inference.model.engine, cfg.inference.model.device) == ("torch", "cuda")
        assert cfg.inference.model.precision == "fp16" and cfg.inference.model.cuda_graphs


def test_bench_walkways_reaches_the_target_count(plan: dict[str, tuple[int, str]]) -> None:
    args = get_args_parser().parse_args(_dualgait_argv(plan["bench_walkways"][1]))
    assert max(int(n) for n in args.walkways.split(",")) >= 16


# ------------------------------------------------------------------ fake bench reports (the real keys)


def _model_json(path: Path, p50_ms: dict[tuple[str, int], float | None]) -> Path:
    from bench.model import _row
    from bench.report import write_json

    rows = []
    for (engine, px), ms in p50_ms.items():
        if ms is None:
            rows.append(_row("late", engine, px, 1, status="skipped", reason="onnxruntime here has no "
                             "CUDAExecutionProvider"))
        else:
            rows.append(_row("late", engine, px, 1, latency_ms={"p50": ms, "p95": ms * 1.2, "mean": ms, "min": ms}))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"machine": {"gpu": "NVIDIA H200", "torch": "2.11.0"}, "settings": {}}, rows)
    return path


def _e2e_json(path: Path, latencies_ms: list[float]) -> Path:
    from bench.stats import describe

    realtime = {"windows": len(latencies_ms), "windows_valid": len(latencies_ms), "windows_expected": 39,
                "latency_ms": describe(latencies_ms), "invalid_by_reason": {}, "pipeline_error": None}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": {"model": "late", "overrides": ["inference.model.engine=torch"]},
                                "results": {"realtime": realtime}, "targets": {}}))
    return path


def _walkways_json(path: Path, keeps: dict[int, bool]) -> Path:
    results = [{"walkways": n, "batched": {"walkway_s_per_s": 2.0 * n if ok else 0.5 * n, "keeps_real_time": ok},
                "one_at_a_time": {}, "agreement": {}, "ratio": 1.0} for n, ok in keeps.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": {"model": "late"}, "results": results, "max_real_time_walkways": max(
        (n for n, ok in keeps.items() if ok), default=0)}))
    return path


def _steps(tmp_path: Path, results: dict[str, int]) -> list[Any]:
    plan, done = tmp_path / "plan.tsv", tmp_path / "steps.tsv"
    plan.write_text("# name\tbudget_s\tcommand\n" + "".join(f"{s}\t30\techo {s}\n" for s in STEPS))
    done.write_text("".join(f"{s}\t{rc}\t1.5\n" for s, rc in results.items()))
    return read_steps(plan, done)


def test_summary_all_targets_pass(tmp_path: Path) -> None:
    model = _model_json(tmp_path / "m.json", {("torch-cuda-fp16", 224): 2.1, ("torch-cuda-fp16", 512): 8.5,
                                              ("onnxruntime-cuda-fp32", 224): 2.9,
                                              ("onnxruntime-cuda-fp32", 512): 9.9})
    summary = build_summary(_steps(tmp_path, dict.fromkeys(STEPS, 0)), model_jsons=[model],
                            e2e_json=_e2e_json(tmp_path / "e2e.json", [12.0 + i % 5 for i in range(40)]),
                            walkways_json=_walkways_json(tmp_path / "w.json", {1: True, 4: True, 16: True}),
                            notes=["detector on the CPU"])
    assert summary["steps_ok"] == len(STEPS) and all(s["status"] == "ok" for s in summary["steps"])
    assert summary["targets_tally"] == {"pass": 6, "fail": 0, "missing": 0}
    assert summary["all_targets_pass"]
    figures = summary["figures"]
    assert figures["late_torch-cuda-fp16_224px_p50_ms"] == 2.1 and figures["late_torch-cuda-fp16_512px_p95_ms"]
    assert figures["e2e_p50_ms"] <= figures["e2e_p95_ms"] <= figures["e2e_p99_ms"] <= 30
    assert figures["walkways_real_time"] == 16
    assert summary["notes"] == ["detector on the CPU"]
    json.dumps(summary)  # all of it serialisable


def test_summary_fails_and_misses_without_crashing(tmp_path: Path) -> None:
    model = _model_json(tmp_path / "m.json", {("torch-cuda-fp16", 224): 3.5, ("torch-cuda-fp16", 512): 9.0,
                                              ("onnxruntime-cuda-fp32", 224): None})
    results = {"install_wheels": 0, "install_dualgait": 1, "gpu_tests": 0, "bench_model_torch": 0,
               "bench_model_ort": 0, "bench_e2e": 124}  # bench_walkways never ran
    summary = build_summary(_steps(tmp_path, results), model_jsons=[model, tmp_path / "absent.json"],
                            e2e_json=_e2e_json(tmp_path / "e2e.json", [20.0] * 30 + [45.0] * 3),
                            walkways_json=tmp_path / "walkways.json")
    status = {s["name"]: s["status"] for s in summary["steps"]}
    assert status == {**dict.fromkeys(STEPS, "ok"), "install_dualgait": "failed", "bench_e2e": "timed_out",
                      "bench_walkways": "missing"}
    assert next(s for s in summary["steps"] if s["name"] == "bench_walkways")["rc"] is None
    targets = summary["targets"]
    assert targets["late_torch-cuda-fp16_224px_p50_ms"]["verdict"] == "fail"
    assert targets["late_torch-cuda-fp16_512px_p50_ms"]["verdict"] == "pass"
    assert targets["late_onnxruntime-cuda-fp32_224px_p50_ms"]["verdict"] == "missing"
    assert "CUDAExecutionProvider" in targets["late_onnxruntime-cuda-fp32_224px_p50_ms"]["reason"]
    assert "absent.json not written" in targets["late_onnxruntime-cuda-fp32_512px_p50_ms"]["reason"]
    assert targets["e2e_p99_ms"]["verdict"] == "fail" and targets["e2e_p99_ms"]["value"] > 30
    assert targets["walkways_real_time"] == {"value": None, "target": ">= 16", "verdict": "missing",
                                             "reason": "walkways.json not written"}
    assert summary["targets_tally"] == {"pass": 1, "fail": 2, "missing": 3} and not summary["all_targets_pass"]


def test_summary_of_a_run_that_left_nothing(tmp_path: Path) -> None:
    """No plan, no results, no reports, one report not even JSON: every target missing, exit 0."""
    (tmp_path / "e2e.json").write_text("{not json")
    out = tmp_path / "out" / "gpu_summary.json"
    code = main(["--plan", str(tmp_path / "plan.tsv"), "--results", str(tmp_path / "steps.tsv"),
                 "--model-json", str(tmp_path / "m.json"), "--e2e-json", str(tmp_path / "e2e.json"),
                 "--output", str(out), "--quiet"])
    assert code == 0
    summary = json.loads(out.read_text())
    assert summary["steps"] == [] and summary["targets_tally"] == {"pass": 0, "fail": 0, "missing": 6}
    assert "unreadable" in summary["targets"]["e2e_p99_ms"]["reason"]
    assert summary["targets"]["walkways_real_time"]["reason"] == "not given"


def test_summary_walkways_below_the_target_count_is_not_a_pass(tmp_path: Path) -> None:
    steps = _steps(tmp_path, {})
    tried_low = build_summary(steps, model_jsons=[], e2e_json=None,
                              walkways_json=_walkways_json(tmp_path / "a.json", {1: True, 8: True}))
    check = tried_low["targets"]["walkways_real_time"]
    assert check["verdict"] == "missing" and check["value"] == 8 and "16 not tried" in check["reason"]
    fell_behind = build_summary(steps, model_jsons=[], e2e_json=None,
                                walkways_json=_walkways_json(tmp_path / "b.json", {1: True, 4: True, 16: False}))
    assert fell_behind["targets"]["walkways_real_time"] == {"value": 4, "target": ">= 16", "verdict": "fail"}
    assert {s["status"] for s in fell_behind["steps"]} == {"missing"}


# ------------------------------------------------------------------ the whole script, with a stand-in python

FAKE_PYTHON = """#!/usr/bin/env bash
# stands in for the GPU machine's python3: the summary runs for real, dualgait is parsed and faked, the rest is a no-op
case "$1 ${{2:-}}" in
  "-m bench.gpu_summary") exec {python} "$@" ;;
  "-m dualgait") shift 2; exec {python} {fake_dualgait} "$@" ;;
  "-m pytest") for a in "$@"; do [[ $a == --junitxml=* ]] && echo '<testsuites/>' >"${{a#--junitxml=}}"; done; exit 0 ;;
  "-m pip") exit 0 ;;
  *) exit 0 ;;
esac
"""

FAKE_DUALGAIT = """
import json, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from dualgait.cli import get_args_parser
from test_gpu_script import _e2e_json, _model_json, _walkways_json

args = get_args_parser().parse_args(sys.argv[1:])
if args.bench == "model":
    engine = args.engines
    if engine.startswith("onnxruntime"):
        sys.exit("onnxruntime: failed on purpose")
    _model_json(Path(args.output) / "bench_model.json", {{(engine, 224): 2.0, (engine, 512): 12.0}})
elif args.bench == "e2e":
    _e2e_json(Path(args.output), [10.0, 11.0, 12.0])
else:
    _walkways_json(Path(args.output), {{int(n): True for n in args.walkways.split(",")}})
print("fake dualgait", " ".join(sys.argv[1:]))
"""


def test_the_script_runs_every_step_and_collects_the_summary(tmp_path: Path) -> None:
    fake_dualgait = tmp_path / "fake_dualgait.py"
    fake_dualgait.write_text(FAKE_DUALGAIT.format(tests=str(Path(__file__).parent)))
    fake_python = tmp_path / "python3"
    fake_python.write_text(FAKE_PYTHON.format(python=shlex.quote(sys.executable),
                                              fake_dualgait=shlex.quote(str(fake_dualgait))))
    fake_python.chmod(0o755)
    out, work = tmp_path / "out", tmp_path / "work"
    env = _env({"OUT": str(out), "GPU_WORK_DIR": str(work), "GPU_PYTHON": str(fake_python),
                "GPU_CARRY": str(tmp_path / "carry"), "PYTHONPATH": str(REPO)})
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((out / "gpu_summary.json").read_text())
    status = {s["name"]: (s["status"], s["rc"]) for s in summary["steps"]}
    assert status == {**{s: ("ok", 0) for s in STEPS}, "bench_model_ort": ("failed", 1)}
    verdicts = {k: t["verdict"] for k, t in summary["targets"].items()}
    assert verdicts == {"late_torch-cuda-fp16_224px_p50_ms": "pass", "late_torch-cuda-fp16_512px_p50_ms": "fail",
                        "late_onnxruntime-cuda-fp32_224px_p50_ms": "missing",
                        "late_onnxruntime-cuda-fp32_512px_p50_ms": "missing", "e2e_p99_ms": "pass",
                        "walkways_real_time": "pass"}
    assert any("CPU" in note for note in summary["notes"])
    # what the device tool brings back: at most 8 files, flat, the names it accepts
    files = sorted(p.name for p in out.iterdir())
    assert files == ["bench_model_torch.json", "details.tar.gz", "e2e.json", "gpu.log", "gpu_summary.json",
                     "gpu_tests.xml", "walkways.json"]
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", f) for f in files) and len(files) <= 8
    log = (out / "gpu.log").read_text()
    assert "step bench_walkways: rc 0" in log and "gpu.sh: done in" in log
    with tarfile.open(out / "details.tar.gz") as tar:
        names = tar.getnames()
    assert "./logs/bench_e2e.log" in names and "./plan.tsv" in names and "./steps.tsv" in names
