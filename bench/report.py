"""The model benchmark's report: machine description, speed-ups, ``bench_model.json`` and ``bench_model.md``."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["BASELINE", "TABLE_HEADER", "fill_speedups", "machine_info", "markdown_table", "render_markdown",
           "summary_line", "write_json"]

BASELINE = "torch-cpu-fp32"
TABLE_HEADER = ("variant", "engine", "input px", "batch", "p50 ms", "p95 ms", "windows/s",
                f"speed-up vs {BASELINE}", "peak RSS MB", "max abs Δp vs fp32", "status")
_CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "avx_vnni")


def _cpuinfo() -> tuple[str, list[str]]:
    model, flags = "", []
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            present = set(value.split())
            flags = [f for f in _CPU_FLAGS if f in present]
    return model or platform.processor() or "unknown", flags


def _ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _gpu_name() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except Exception:  # a broken CUDA install is no reason to stop the bench
        pass
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                 text=True, timeout=10, check=False).stdout.strip()
            if out:
                return out.splitlines()[0] + " (torch sees no CUDA)"
        except (OSError, subprocess.SubprocessError):
            pass
    return "none"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on (CPU, cores, RAM, GPU, OS, package versions, date)."""
    from inference.engines.base import available_cores

    cpu, flags = _cpuinfo()
    return {
        "cpu": cpu,
        "cpu_flags": flags,
        "cores_available": available_cores(),
        "cores_total": os.cpu_count(),
        "ram_gb": _ram_gb(),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        "gpu": _gpu_name(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "openvino": _version("openvino"),
        "onnxruntime": _version("onnxruntime") or _version("onnxruntime-gpu"),
        "nncf": _version("nncf"),
        "tensorrt": _version("tensorrt"),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def fill_speedups(rows: Sequence[dict[str, Any]]) -> None:
    """``speedup``: the baseline's p50 over the row's, same variant, size and batch; None without a baseline."""
    base = {(r["variant"], r["input_px"], r["batch"]): r["latency_ms"]["p50"] for r in rows
            if r["engine"] == BASELINE and r["status"] == "ok"}
    for r in rows:
        ref = base.get((r["variant"], r["input_px"], r["batch"]))
        ok = r["status"] == "ok" and ref is not None and r["latency_ms"]["p50"] > 0
        r["speedup"] = round(ref / r["latency_ms"]["p50"], 3) if ok else None


def summary_line(row: Mapping[str, Any]) -> str:
    """One configuration's result in one line, for the progress log."""
    if row["status"] != "ok":
        return f"{row['status']}: {row['reason']}"
    lat = row["latency_ms"]
    dp = "" if row["max_abs_dp"] is None else f", max |Δp| {row['max_abs_dp']:.1e}"
    return (f"p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, {row['windows_per_s']:.2f} windows/s, "
            f"peak RSS {row['peak_rss_mb']:.0f} MB{dp} (build {row['build_s']:.1f} s, "
            f"CPU share {row['cpu_share']:.2f}, load {row['load_avg_1m']:.1f})")


def recorded_pair(front: str | None, side: str | None, cfg: Any) -> tuple[str, str]:
    """The benches' inputs: ``--front``/``--side`` or the config's capture sources, and the detector weights,
    checked to exist (``ConfigError``, one line)."""
    from core.configtools import ConfigError

    front, side = front or cfg.capture.front, side or cfg.capture.side
    for path, what in ((front, "front video"), (side, "side video"), (cfg.inference.detector.weights, "detector")):
        if not Path(path).exists():
            raise ConfigError(f"{what} not found: {path}")
    return front, side


def write_report(output: str | Path, report: Mapping[str, Any], markdown: str) -> None:
    """A bench's JSON report to ``output``, its markdown beside it (``.md``), and the markdown on stdout."""
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown + "\n")
    print(markdown, flush=True)


def write_json(path: Path, meta: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({**meta, "results": list(rows)}, indent=2) + "\n")
    tmp.replace(path)


def _ms(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.0f}" if v >= 1000 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def _dp(v: float | None) -> str:
    if v is None:
        return "—"
    return "0" if v == 0 else f"{v:.1e}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "|".join("---" for _ in TABLE_HEADER) + "|"]
    for r in rows:
        ok = r["status"] == "ok"
        lat = r.get("latency_ms") or {}
        speedup = r.get("speedup")
        status = r["status"] if ok or not r.get("reason") else f"{r['status']}: {r['reason']}"
        cells = [
            r["variant"], r["engine"], str(r["input_px"]), str(r["batch"]),
            _ms(lat.get("p50")) if ok else "—", _ms(lat.get("p95")) if ok else "—",
            f"{r['windows_per_s']:.2f}" if ok else "—",
            f"{speedup:.2f}×" if speedup is not None else "—",
            f"{r['peak_rss_mb']:.0f}" if r.get("peak_rss_mb") is not None else "—",
            _dp(r.get("max_abs_dp")) if ok else "—",
            status,
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def render_markdown(meta: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
    m, s = meta["machine"], meta["settings"]
    cores = f"{m['cores_available']} available of {m['cores_total']}"
    flags = f" ({', '.join(m['cpu_flags'])})" if m["cpu_flags"] else ""
    versions = ", ".join(f"{k} {m[k]}" for k in ("python", "torch", "openvino", "onnxruntime", "nncf", "tensorrt")
                         if m.get(k))
    threads = s["threads"] or f"all ({m['cores_available']})"
    parity = ("max |Δp|: largest absolute difference of any output probability from torch-cpu-fp32 with the same "
              "weights on the same inputs" if s["parity"] else "parity not measured (--no-parity)")
    return "\n".join([
        "# dualgait model benchmark",
        "",
        f"- date: {m['date']}",
        f"- CPU: {m['cpu']}{flags}; cores: {cores}; RAM: {m['ram_gb']} GB; "
        f"load average at start: {m['load_avg_1m_at_start']} (other work on the machine slows every row)",
        f"- GPU: {m['gpu']}",
        f"- OS: {m['os']}",
        f"- versions: {versions}",
        f"- per configuration: batch {s['batch']} of {s['frames']} frames per view, {s['warmup']} warm-up and "
        f"{s['repeats']} timed calls of `engine.infer`, threads {threads}, each in its own process "
        "(peak RSS is that process's high-water mark, including the Python and torch runtime)",
        f"- speed-up: p50 of {BASELINE} over the row's p50, same variant, size and batch, this run",
        "- contention: each row's `cpu_share` in the JSON (CPU seconds per wall second per thread while timed) "
        "well below 1 means other work took the cores during that row",
        "",
        f"**Weights are random (untrained, seed {s['seed']}): these numbers are for timing only**, and the "
        "model's outputs are not scores. Inputs are random normalised clips. " + parity + "; untrained "
        "outputs sit near 0.5, so Δp here only flags gross numeric problems.",
        "",
        markdown_table(rows),
        "",
    ])
