"""``python -m bench.gpu_summary``: the GPU script's summary (``bench/gpu.sh``), ``gpu_summary.json``.

Reads the plan and the step results that ``bench/gpu.sh`` writes (tab-separated, one step a line) and the
bench JSON reports its steps leave, and writes one JSON: per step its exit code, seconds and status (``ok``,
``failed``, ``timed_out``, or ``missing`` for a planned step that left no result), the key figures, and each of
issue 17's H200 targets as ``pass``, ``fail`` or ``missing`` (no figure: the step failed, the row was skipped, the
file is absent). It never fails on missing or broken inputs: that is what it reports.

Targets (issue 17): late fusion model latency p50 <= 3 ms at 224 px and <= 10 ms at 512 px (batch 1, each GPU
engine), end-to-end latency p99 <= 30 ms, >= 16 walkways kept in real time by one inference process.

Only the standard library: this runs on the GPU machine before anything else is known to work there.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["MODEL_ENGINES", "MODEL_TARGETS_MS", "StepResult", "build_summary", "main", "read_steps"]

log = logging.getLogger(__name__)

# (input px) -> late fusion latency target (p50, batch 1) in ms
MODEL_TARGETS_MS: dict[int, float] = {224: 3.0, 512: 10.0}
MODEL_ENGINES: tuple[str, ...] = ("torch-cuda-fp16", "onnxruntime-cuda-fp32")
MODEL_VARIANT = "late"
E2E_P99_TARGET_MS = 30.0
WALKWAYS_TARGET = 16
TIMED_OUT_CODES = (124, 137)  # timeout(1): the budget ran out (137: killed after the grace)

Verdict = Literal["pass", "fail", "missing"]


@dataclass(frozen=True, slots=True)
class StepResult:
    """One step of the plan; ``rc``/``seconds`` are None when it left no result line."""

    name: str
    budget_s: float | None
    command: str
    rc: int | None = None
    seconds: float | None = None

    @property
    def status(self) -> str:
        if self.rc is None:
            return "missing"
        if self.rc == 0:
            return "ok"
        return "timed_out" if self.rc in TIMED_OUT_CODES else "failed"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "rc": self.rc, "seconds": self.seconds,
                "budget_s": self.budget_s, "command": self.command}


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def read_steps(plan_path: Path, results_path: Path) -> list[StepResult]:
    """Planned steps (``name<TAB>budget_s<TAB>command``) joined with their results (``name<TAB>rc<TAB>seconds``).

    A result without a planned step is kept (budget and command unknown); a planned step without a result is
    ``missing``. Unreadable files or lines are logged and skipped.
    """
    planned: dict[str, StepResult] = {}
    for fields in _tsv(plan_path):
        if len(fields) >= 2:
            planned[fields[0]] = StepResult(fields[0], _float(fields[1]), fields[2] if len(fields) > 2 else "")
    results: dict[str, tuple[int | None, float | None]] = {}
    for fields in _tsv(results_path):
        if len(fields) >= 3:
            try:
                results[fields[0]] = (int(fields[1]), _float(fields[2]))
            except ValueError:
                log.warning("%s: bad result line %r", results_path, "\t".join(fields))
    steps = []
    for name in [*planned, *(n for n in results if n not in planned)]:
        step = planned.get(name, StepResult(name, None, ""))
        rc, seconds = results.get(name, (None, None))
        steps.append(StepResult(step.name, step.budget_s, step.command, rc, seconds))
    return steps


def _tsv(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        log.warning("cannot read %s: %s", path, exc)
        return []
    return [line.split("\t") for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _load_json(path: Path | None) -> tuple[dict[str, Any] | None, str | None]:
    """The report, or None and why not."""
    if path is None:
        return None, "not given"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, f"{path.name} not written"
    except (OSError, ValueError) as exc:
        return None, f"{path.name} unreadable: {exc}"
    if not isinstance(data, dict):
        return None, f"{path.name} holds no JSON object"
    return data, None


def _check(value: float | None, target: float, *, at_most: bool, why_missing: str | None) -> dict[str, Any]:
    if value is None:
        return {"value": None, "target": f"{'<=' if at_most else '>='} {target:g}", "verdict": "missing",
                "reason": why_missing or "no figure"}
    met = value <= target if at_most else value >= target
    verdict: Verdict = "pass" if met else "fail"
    return {"value": value, "target": f"{'<=' if at_most else '>='} {target:g}", "verdict": verdict}


def _model_figures(paths: Sequence[Path]) -> tuple[dict[str, Any], dict[str, dict[str, Any]], list[str]]:
    """Late fusion rows (batch 1) of every bench_model.json: figures, targets, and the files' problems."""
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    problems: list[str] = []
    machine: dict[str, Any] | None = None
    for path in paths:
        data, why = _load_json(path)
        if data is None:
            problems.append(why or path.name)
            continue
        machine = machine or data.get("machine")
        for row in data.get("results") or []:
            if isinstance(row, dict) and row.get("variant") == MODEL_VARIANT and row.get("batch", 1) == 1:
                rows[(str(row.get("engine")), int(row.get("input_px", 0)))] = row
    figures: dict[str, Any] = {}
    targets: dict[str, dict[str, Any]] = {}
    for engine in MODEL_ENGINES:
        for px, target_ms in MODEL_TARGETS_MS.items():
            key = f"late_{engine}_{px}px_p50_ms"
            row = rows.get((engine, px))
            if row is None:
                why = "; ".join(problems) or "no such row in the bench"
                figures[key] = None
                targets[key] = _check(None, target_ms, at_most=True, why_missing=why)
                continue
            latency = row.get("latency_ms") or {}
            ok = row.get("status") == "ok" and isinstance(latency.get("p50"), int | float)
            figures[key] = latency.get("p50") if ok else None
            figures[f"late_{engine}_{px}px_p95_ms"] = latency.get("p95") if ok else None
            why = None if ok else f"{row.get('status')}: {row.get('reason')}"
            targets[key] = _check(figures[key], target_ms, at_most=True, why_missing=why)
    if machine:
        figures["model_machine"] = {k: machine.get(k) for k in ("gpu", "cpu", "torch", "onnxruntime", "python")}
    return figures, targets, problems


def _e2e_figures(path: Path | None) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    data, why = _load_json(path)
    realtime = ((data or {}).get("results") or {}).get("realtime") if data else None
    latency = (realtime or {}).get("latency_ms") or {}
    figures: dict[str, Any] = {f"e2e_{q}_ms": latency.get(q) for q in ("p50", "p95", "p99")}
    if realtime:
        figures.update(e2e_windows=realtime.get("windows"), e2e_windows_valid=realtime.get("windows_valid"),
                       e2e_windows_expected=realtime.get("windows_expected"),
                       e2e_invalid_by_reason=realtime.get("invalid_by_reason"),
                       e2e_pipeline_error=realtime.get("pipeline_error"))
    if data:
        figures["e2e_model"] = (data.get("meta") or {}).get("model")
        figures["e2e_overrides"] = (data.get("meta") or {}).get("overrides")
    if data is not None and realtime is None:
        why = "no realtime results in the report"
    elif data is not None and figures["e2e_p99_ms"] is None:
        why = "no windows scored"
    return figures, {"e2e_p99_ms": _check(figures["e2e_p99_ms"], E2E_P99_TARGET_MS, at_most=True, why_missing=why)}


def _walkways_figures(path: Path | None) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    data, why = _load_json(path)
    figures: dict[str, Any] = {"walkways_real_time": None}
    if data is not None:
        results = [r for r in data.get("results") or [] if isinstance(r, dict)]
        figures["walkways_real_time"] = data.get("max_real_time_walkways")
        figures["walkways_tested"] = [r.get("walkways") for r in results]
        figures["walkways_batched_walkway_s_per_s"] = {
            str(r.get("walkways")): (r.get("batched") or {}).get("walkway_s_per_s") for r in results}
        figures["walkways_model"] = (data.get("meta") or {}).get("model")
        most = max((r.get("walkways") or 0 for r in results), default=0)
        value = figures["walkways_real_time"]
        if value is None:
            why = "no max_real_time_walkways in the report"
        elif value >= most and most < WALKWAYS_TARGET:  # kept up with every count tried, none as high as 16
            check = _check(None, WALKWAYS_TARGET, at_most=False,
                           why_missing=f"kept real time at every count tried, up to {most}: {WALKWAYS_TARGET} "
                                       "not tried")
            check["value"] = value
            return figures, {"walkways_real_time": check}
    check = _check(figures["walkways_real_time"], WALKWAYS_TARGET, at_most=False, why_missing=why)
    return figures, {"walkways_real_time": check}


def build_summary(steps: Sequence[StepResult], *, model_jsons: Sequence[Path], e2e_json: Path | None,
                  walkways_json: Path | None, notes: Sequence[str] = ()) -> dict[str, Any]:
    """The whole summary: steps, figures, targets (pass/fail/missing) and their tally."""
    model, model_targets, _problems = _model_figures(model_jsons)
    e2e, e2e_targets = _e2e_figures(e2e_json)
    walkways, walkways_targets = _walkways_figures(walkways_json)
    targets = {**model_targets, **e2e_targets, **walkways_targets}
    tally = {v: sum(t["verdict"] == v for t in targets.values()) for v in ("pass", "fail", "missing")}
    return {
        "steps": [s.as_dict() for s in steps],
        "steps_ok": sum(s.status == "ok" for s in steps),
        "steps_planned": len(steps),
        "figures": {**model, **e2e, **walkways},
        "targets": targets,
        "targets_tally": tally,
        "all_targets_pass": bool(targets) and tally["pass"] == len(targets),
        "notes": list(notes),
    }


def _table(summary: dict[str, Any]) -> str:
    lines = ["| step | status | rc | s |", "|---|---|---|---|"]
    lines += [f"| {s['name']} | {s['status']} | {s['rc']} | {s['seconds']} |" for s in summary["steps"]]
    lines += ["", "| target | value | goal | verdict |", "|---|---|---|---|"]
    lines += [f"| {k} | {t['value']} | {t['target']} | {t['verdict']}{': ' + t['reason'] if 'reason' in t else ''} |"
              for k, t in summary["targets"].items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_summary", description=__doc__.splitlines()[0])
    parser.add_argument("--plan", type=Path, required=True, help="the script's plan: name<TAB>budget_s<TAB>command")
    parser.add_argument("--results", type=Path, required=True, help="step results: name<TAB>rc<TAB>seconds")
    parser.add_argument("--model-json", type=Path, action="append", default=[],
                        help="a bench_model.json (repeatable)")
    parser.add_argument("--e2e-json", type=Path, help="dualgait bench e2e's JSON")
    parser.add_argument("--walkways-json", type=Path, help="dualgait bench walkways' JSON")
    parser.add_argument("--note", action="append", default=[], help="a line for the summary's notes (repeatable)")
    parser.add_argument("--output", type=Path, required=True, help="gpu_summary.json")
    parser.add_argument("--quiet", action="store_true", help="no table on stdout")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s gpu_summary %(levelname)-7s "
                        "%(message)s", datefmt="%H:%M:%S")
    summary = build_summary(read_steps(args.plan, args.results), model_jsons=args.model_json,
                            e2e_json=args.e2e_json, walkways_json=args.walkways_json, notes=args.note)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_name(args.output.name + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    tmp.replace(args.output)
    if not args.quiet:
        print(_table(summary), flush=True)
    log.info("wrote %s: %d/%d steps ok, targets %s", args.output, summary["steps_ok"], summary["steps_planned"],
             summary["targets_tally"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
