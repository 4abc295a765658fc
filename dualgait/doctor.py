"""``dualgait doctor``: what this machine has, what the pipeline will use, and which features will work here.

Modelled on Ultralytics' ``yolo checks``: one quick command (a few seconds: torch is imported, no model is
loaded, no process started) that prints short aligned ``name: value`` lines under headings (System,
Libraries, Engines, Assets, Demo model, Cache, Ports, Config, Features) and a final verdict, ``ready: the demo
will run here`` or ``not ready: <what is missing>``. ``--json`` prints the same facts as one JSON object.

Every probe is guarded: a failure becomes a line of the report, never a traceback. The exit code is 0 when
``dualgait demo`` can run here (config valid, videos and detector weights present, a demo model found or a
writable cache folder to build one in, the demo's ports free), else 1; 2 stays reserved for user mistakes.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

BUILD_NOTE = "about 25 min on 2 cores"
PETS_VIDEO = "videos/vtest_pets2009_480x360.avi"
MARKS = {True: "ok", False: "!!", None: "  "}
CONFIG_KEYS = ("inference.model.engine", "inference.model.device", "inference.model.precision",
               "inference.model.variant", "inference.model.weights", "inference.crop.input_px",
               "inference.detector.weights", "endpoints.front", "endpoints.side", "endpoints.scores",
               "aggregator.http.host", "aggregator.http.port", "aggregator.http.enabled",
               "aggregator.metrics.host", "aggregator.metrics.port", "aggregator.metrics.enabled")
NULL_MEANS = {"inference.model.variant": "the checkpoint's, else late", "inference.model.weights": "the demo model"}


@dataclass(slots=True)
class Check:
    """One line of the report; ``ok`` None: a fact, neither good nor bad."""

    name: str
    ok: bool | None
    detail: str
    value: Any = None  # the machine-readable fact (--json)


@dataclass(slots=True)
class Doctor:
    """The report being built: sections of checks, facts for the verdict, and what the demo lacks."""

    args: argparse.Namespace
    sections: dict[str, list[Check]] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    cfg: Any = None  # DualgaitConfig, or None when not even the defaults load

    def add(self, section: str, name: str, ok: bool | None, detail: str, value: Any = None) -> None:
        self.sections.setdefault(section, []).append(Check(name, ok, detail, value))

    def run(self, section: str, probe: Callable[[Doctor], None]) -> None:
        self.sections.setdefault(section, [])
        try:
            probe(self)
        except Exception as exc:  # a probe's failure is a line of the report
            log.debug("doctor: %s probe failed", section, exc_info=True)
            self.add(section, "error", False, f"{type(exc).__name__}: {exc}")


def add_doctor_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the text report")


def _version(*dists: str) -> str | None:
    for dist in dists:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _system(d: Doctor) -> None:
    d.add("System", "python", None, platform.python_version(), platform.python_version())
    d.add("System", "executable", None, sys.executable, sys.executable)
    d.add("System", "platform", None, platform.platform(), platform.platform())
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    d.add("System", "cpus", None, f"{os.cpu_count()} ({usable} usable by this process)", usable)
    try:
        info = {k: int(v.split()[0]) for k, v in
                (line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
                if k in ("MemTotal", "MemAvailable")}
        ram = {"total_gib": round(info["MemTotal"] / 2**20, 1),
               "available_gib": round(info.get("MemAvailable", 0) / 2**20, 1)}
        d.add("System", "ram", None, f"{ram['total_gib']} GiB total, {ram['available_gib']} GiB available", ram)
    except (OSError, ValueError, KeyError, IndexError):
        d.add("System", "ram", None, "unknown (no readable /proc/meminfo)")


def _libraries(d: Doctor) -> None:
    try:
        import torch

        d.facts["torch"] = torch
        d.add("Libraries", "torch", True, torch.__version__, torch.__version__)
    except Exception as exc:
        d.facts["torch"] = None
        d.add("Libraries", "torch", False, f"not importable: {type(exc).__name__}: {exc}")
    for name, dists in (("torchvision", ("torchvision",)), ("ultralytics", ("ultralytics",)),
                        ("opencv", ("opencv-python", "opencv-python-headless", "opencv-contrib-python",
                                    "opencv-contrib-python-headless")),
                        ("numpy", ("numpy",)), ("pyzmq", ("pyzmq",))):
        version = _version(*dists)
        d.add("Libraries", name, version is not None, version or "not installed", version)


def _engines(d: Doctor) -> None:
    torch = d.facts.get("torch")
    cuda = False
    if torch is not None:
        try:
            cuda = bool(torch.cuda.is_available())
            name = torch.cuda.get_device_name(0) if cuda else None
            d.add("Engines", "CUDA", True if cuda else None,
                  f"available: {name} (CUDA {torch.version.cuda})" if cuda else "not available", name)
        except Exception as exc:
            d.add("Engines", "CUDA", False, f"probe failed: {exc}")
        try:  # private torch probes: guarded, they move between releases
            onednn = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
            native = [n for n, probe in (("AVX512-BF16", torch.cpu._is_avx512_bf16_supported),
                                         ("AMX", torch.cpu._is_amx_tile_supported)) if probe()]
            d.add("Engines", "CPU bf16", (onednn and bool(native)) or None,
                  ("native: " + ", ".join(native) if native else "emulated (no native bf16 instructions): slower")
                  if onednn else "not supported by this torch build (oneDNN)", {"onednn": onednn, "native": native})
        except Exception as exc:
            d.add("Engines", "CPU bf16", None, f"unknown ({type(exc).__name__}: {exc})")
    else:
        d.add("Engines", "CUDA", False, "unknown (torch not importable)")
    d.facts["cuda"] = cuda
    d.facts["openvino"] = _engine(d, "OpenVINO", "openvino", lambda ov: list(ov.Core().available_devices), "devices")
    d.facts["onnxruntime"] = _engine(d, "ONNX Runtime", "onnxruntime", lambda ort: list(ort.get_available_providers()),
                                     "providers")
    d.facts["tensorrt"] = _engine(d, "TensorRT", "tensorrt", lambda trt: [], "", absent="NVIDIA's index only")
    if d.cfg is not None:
        from inference.engines.auto import resolve_engine

        try:
            m, choice = resolve_engine(d.cfg.inference.model)  # what "auto" picks here, as the processes will
        except ValueError as exc:  # an auto choice that does not fit an explicit part
            d.add("Engines", "pipeline uses", False, f"no engine fits the config: {exc}")
            d.missing.append("an engine for inference.model (see Engines)")
            return
        lacks = [what for what, bad in (("CUDA", m.device == "cuda" and not cuda),
                                        (m.engine, m.engine != "torch" and not d.facts[m.engine])) if bad]
        d.add("Engines", "pipeline uses", not lacks, choice
              + (f" (but {' and '.join(lacks)} not available)" if lacks else ""),
              {"engine": m.engine, "device": m.device, "precision": m.precision, "choice": choice})
        d.missing += [f"{what} for inference.model (see Engines)" for what in lacks]


def _engine(d: Doctor, name: str, module: str, listing: Callable[[Any], list[str]], what: str,
            absent: str = "") -> bool:
    """One optional engine: its version and what it runs on; whether it imports."""
    installed = _version(module) or _installed(module)
    try:
        mod = importlib.import_module(module)
        items = listing(mod)
    except Exception as exc:
        detail = f"installed but broken: {type(exc).__name__}: {exc}" if installed else \
            "not installed" + (f" ({absent})" if absent else "")
        d.add("Engines", name, False if installed else None, detail)
        return False
    version = _version(module) or str(getattr(mod, "__version__", "?"))
    d.add("Engines", name, True, version + (f", {what} " + ", ".join(items) if what else ""),
          {"version": version, what or "items": items})
    return True


def _source_check(source: str) -> tuple[bool | None, str]:
    if "://" in source or source.startswith(("usb:", "synthetic:")):
        return None, f"{source} (a camera or stream: not checked)"
    path = Path(source).expanduser().resolve()
    return (True, str(path)) if path.exists() else (False, f"missing: {path}")


def _assets(d: Doctor) -> None:
    from dualgait.preflight import assets_dir

    root = assets_dir()
    d.add("Assets", "folder", root.is_dir(), f"{root}" + ("" if root.is_dir() else " (missing: set DUALGAIT_ASSETS)"),
          str(root))
    if not root.is_dir():
        d.missing.append(f"shared assets folder {root} (set DUALGAIT_ASSETS)")
    wanted = ([(f"{view} video", d.cfg.capture.source(view)) for view in d.cfg.views]
              + [("detector weights", d.cfg.inference.detector.weights)]) if d.cfg is not None else []
    for what, path in wanted:
        ok, detail = _source_check(path)
        d.add("Assets", what, ok, detail, path)
        if ok is False:
            d.missing.append(f"{what} ({detail.removeprefix('missing: ')})")
    pets = root / PETS_VIDEO
    d.add("Assets", "PETS video", pets.is_file(), str(pets) if pets.is_file() else f"missing: {pets}", str(pets))
    d.facts["assets_ok"] = bool(wanted) and all(_source_check(p)[0] is not False for _, p in wanted)


def _demo_model(d: Doctor) -> None:
    weights = d.cfg.inference.model.weights
    if weights is not None:  # the demo then runs these instead of the demo model
        d.facts["configured_ok"] = Path(weights).expanduser().is_file()
        d.add("Demo model", "configured", d.facts["configured_ok"], f"{weights} (inference.model.weights, used "
              "instead)" + ("" if d.facts["configured_ok"] else ": missing"), weights)
    from training.demo_model import DEMO_RECIPE, demo_recipe_for, find_demo_model, packaged_info

    try:  # the cameras' demo model: late fusion for two, single_side for a side camera alone
        recipe = demo_recipe_for(d.cfg.views)
    except ValueError:
        recipe = DEMO_RECIPE
    key = recipe.key()
    d.add("Demo model", "variant", None, f"{recipe.variant} (cameras: {' + '.join(d.cfg.views)})", recipe.variant)
    d.add("Demo model", "recipe key", None, key, key)
    d.add("Demo model", "input px", None, f"{recipe.input_px} (the demo's, not inference.crop.input_px)",
          recipe.input_px)
    found = find_demo_model(d.cfg, recipe)
    d.facts["demo_model_built"] = found is not None
    if found is None:
        d.add("Demo model", "demo model", None, f"not built yet: the first demo builds it ({BUILD_NOTE}) into the "
              "cache folder")
    else:
        path, origin = found
        size_mb = round(Path(path).stat().st_size / 1e6, 1)
        d.add("Demo model", "demo model", True, f"{path} ({origin}, {size_mb} MB)",
              {"path": str(path), "origin": origin, "size_mb": size_mb})
    info = packaged_info(recipe=recipe)
    if info is None:
        d.add("Demo model", "packaged copy", None, f"none shipped for {recipe.variant} (training/packaged/)")
    else:
        fits = info.get("key") == key
        d.add("Demo model", "packaged copy", fits, f"key {info.get('key')}"
              + (" (matches the recipe)" if fits else f" (stale: the recipe's key is {key})"), info)


def _cache(d: Doctor) -> None:
    from core.folders import FolderError
    from inference.engines.cache import check_cache_dir

    try:
        folder = check_cache_dir(d.cfg.inference.model.cache_dir)
        free_gib = round(shutil.disk_usage(folder).free / 1024 ** 3, 1)
        d.facts["cache_writable"] = True
        d.add("Cache", "cache folder", True, f"{folder} (writable, {free_gib} GiB free)", str(folder))
    except FolderError as exc:
        d.facts["cache_writable"] = False
        d.add("Cache", "cache folder", False, str(exc), d.cfg.inference.model.cache_dir)


def _ports(d: Doctor) -> None:
    from dualgait.preflight import PreflightError, planned_tcp_binds, port_is_free

    demo_keys = {use.key for use in planned_tcp_binds(d.cfg, private_endpoints=True)}
    taken: dict[str, str] = {}
    for use in planned_tcp_binds(d.cfg):
        fix = f"tcp://{use.host}:PORT" if use.key.endswith("endpoint") else "PORT"
        try:
            free: bool | None = port_is_free(use.host, use.port)
            state = "free" if free else f"TAKEN (change with --set {use.key}={fix})"
        except PreflightError as exc:
            free, state = False, str(exc)
        if not free:
            taken[use.key] = f"port {use.port} ({use.what})"
        d.add("Ports", f"{use.host}:{use.port}", free, f"{state}: {use.what}, {use.key}",
              {"host": use.host, "port": use.port, "key": use.key, "what": use.what, "free": free,
               "demo": use.key in demo_keys})
    d.facts["taken"] = taken
    d.facts["demo_taken"] = [v for k, v in taken.items() if k in demo_keys]


def _config(d: Doctor) -> None:
    args = d.args
    d.add("Config", "file", None, args.config or "built-in defaults", args.config)
    d.add("Config", "overrides", None, " ".join(args.overrides) or "none", list(args.overrides))
    if d.facts.get("config_error"):
        d.add("Config", "error", False, d.facts["config_error"] + " (the rest of this report uses the defaults)")
    if d.cfg is None:
        return
    for key in CONFIG_KEYS:  # the settings that matter most, by the keys --set takes
        value = functools.reduce(getattr, key.split("."), d.cfg)
        d.add("Config", key, None, f"null ({NULL_MEANS[key]})" if value is None else str(value), value)


def _model_ready(f: dict[str, Any]) -> tuple[bool, str]:
    """Whether the demo has a model to run (or can build one), and why."""
    if "configured_ok" in f:
        return f["configured_ok"], "configured weights found" if f["configured_ok"] else "configured weights missing"
    if "demo_model_built" not in f:
        return False, "the demo model could not be checked"
    if f["demo_model_built"]:
        return True, "demo model found"
    if f.get("cache_writable"):
        return True, f"the first run builds the demo model ({BUILD_NOTE})"
    return False, "no demo model, and no writable cache folder to build one"


def _features(d: Doctor) -> None:
    f, cfg = d.facts, d.cfg
    taken = f.get("taken", {})
    model, model_why = _model_ready(f)
    assets = bool(f.get("assets_ok"))
    bad_cfg = "config error (see Config)" if "config_error" in f else ""
    demo_why = bad_cfg or ("videos or detector weights missing (see Assets)" if not assets
                           else "taken: " + ", ".join(f["demo_taken"]) if f.get("demo_taken") else model_why)
    weights_ok = cfg is not None and Path(cfg.inference.detector.weights).exists()

    def port(key: str, enabled: bool) -> tuple[bool, str]:
        return ((False, "disabled in the config") if not enabled else
                (False, f"taken: {taken[key]}") if key in taken else (True, "port free"))

    torch_ok, cuda, ov = f.get("torch") is not None, bool(f.get("cuda")), bool(f.get("openvino"))
    onnx, nncf = _installed("onnx") and _installed("onnxscript"), _installed("nncf")
    browser = [tool for tool in ("chromium", "chromedriver") if not shutil.which(tool)]
    rows = [("dualgait demo", not bad_cfg and assets and model and not f.get("demo_taken"), demo_why),
            ("dualgait score", not bad_cfg and weights_ok and model, bad_cfg or (
                f"detector weights found; {model_why}" if weights_ok else "detector weights missing")),
            ("dualgait run", not bad_cfg and cfg is not None and not taken,
             bad_cfg or ("taken: " + ", ".join(taken.values()) if taken else "all ports free")),
            ("live view", *port("aggregator.http.port", cfg is not None and cfg.aggregator.http.enabled)),
            ("metrics", *port("aggregator.metrics.port", cfg is not None and cfg.aggregator.metrics.enabled)),
            ("export onnx", onnx, "onnx + onnxscript installed" if onnx else "needs onnx and onnxscript"),
            ("export openvino", ov, "openvino installed" if ov else "needs openvino"),
            ("int8 (OpenVINO)", ov and nncf, "nncf installed" if nncf else "needs nncf"),
            ("export tensorrt", bool(f.get("tensorrt")) and cuda,
             "tensorrt + CUDA" if f.get("tensorrt") and cuda else "needs tensorrt (NVIDIA's index) and CUDA"),
            ("CUDA paths", cuda, "torch sees CUDA" if cuda else "no CUDA device"),
            ("browser tests", not browser, "chromium + chromedriver found" if not browser
             else "missing " + ", ".join(browser) + " (apt-get install chromium chromium-driver)"),
            ("dualgait train", torch_ok,
             ("CUDA" if cuda else "CPU only (no CUDA): slow") if torch_ok else "torch not importable")]
    for name, ok, why in rows:
        d.add("Features", name, bool(ok), why, bool(ok))


def _load_config(d: Doctor) -> None:
    from core.configtools import ConfigError
    from dualgait.config import load_config

    try:
        d.cfg = load_config(d.args.config, d.args.overrides)
        return
    except ConfigError as exc:
        d.facts["config_error"] = str(exc)
    except Exception as exc:
        d.facts["config_error"] = f"{type(exc).__name__}: {exc}"
    d.missing.append("a valid config (see Config)")
    try:
        d.cfg = load_config(None, [])
    except Exception as exc:
        d.facts["config_error"] += f"; the defaults do not load either: {exc}"


def diagnose(args: argparse.Namespace) -> Doctor:
    """Every probe, in report order; never raises."""
    d = Doctor(args)
    _load_config(d)  # never raises; its error is shown under Config, after the facts it explains
    steps: list[tuple[str, Callable[[Doctor], None], bool]] = [
        ("System", _system, False), ("Libraries", _libraries, False), ("Engines", _engines, False),
        ("Assets", _assets, True), ("Demo model", _demo_model, True), ("Cache", _cache, True),
        ("Ports", _ports, True), ("Config", _config, False), ("Features", _features, False)]
    for section, probe, needs_cfg in steps:
        if needs_cfg and d.cfg is None:
            d.add(section, "skipped", False, "no config loaded")
            continue
        d.run(section, probe)
    if d.cfg is not None:
        if "assets_ok" not in d.facts:
            d.missing.append("the videos and detector weights (not checked: see Assets)")
        model, why = _model_ready(d.facts)
        if not model:
            d.missing.append(f"a model: {why} (see Demo model, Cache)")
        d.missing += [f"free {what} (see Ports)" for what in d.facts.get("demo_taken", [])]
    return d


def summary(d: Doctor) -> str:
    if d.missing:
        return "not ready: " + "; ".join(dict.fromkeys(d.missing))
    built = d.facts.get("demo_model_built") or "configured_ok" in d.facts
    return "ready: the demo will run here" + ("" if built else f" (its first run builds the model, {BUILD_NOTE})")


def render_text(d: Doctor) -> str:
    width = min(26, max((len(c.name) for checks in d.sections.values() for c in checks), default=10))
    lines = []
    for section, checks in d.sections.items():
        lines.append(section)
        lines += [f"  {MARKS[c.ok]} {c.name:<{width}} : {c.detail}" for c in checks]
        lines.append("")
    lines.append(summary(d))
    return "\n".join(lines)


def run_doctor(args: argparse.Namespace) -> int:
    """Print the report (text, or JSON with ``--json``); 0 when the demo can run here, else 1."""
    d = diagnose(args)
    code = 0 if not d.missing else 1
    if getattr(args, "json", False):
        print(json.dumps({"ready": code == 0, "exit_code": code, "summary": summary(d),
                          "missing": list(dict.fromkeys(d.missing)),
                          "sections": {name: [asdict(c) for c in checks] for name, checks in d.sections.items()}},
                         indent=2, default=str), flush=True)
    else:
        print(render_text(d), flush=True)
    return code
