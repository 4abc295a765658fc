"""Export a stored session: CSV (one row per window), JSON (summary + windows), PNG (score timeline)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aggregator.store import SessionStore

FORMATS = ("csv", "json", "png")
CSV_COLUMNS = ("index", "window", "t_s", "t_start_utc", "valid", "reason_code", "reason", "p_asd", "p_front",
               "p_side", "visible_front", "visible_side", "cumulative_p_asd", "ci_low", "ci_high", "decision",
               "latency_ms", "walkway")


def _utc(wall_ns: int | None) -> str:
    if not wall_ns:
        return ""
    return datetime.fromtimestamp(wall_ns / 1e9, tz=UTC).isoformat(timespec="milliseconds")


def write_csv(path: Path, windows: Iterable[dict[str, Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for w in windows:
            row = {**w, "t_start_utc": _utc(w.get("t_start_wall_ns"))}
            writer.writerow(["" if row.get(c) is None else row[c] for c in CSV_COLUMNS])


def write_json(path: Path, summary: dict[str, Any], windows: list[dict[str, Any]]) -> None:
    doc = {"session": {**summary, "started_utc": _utc(summary.get("started_wall_ns")),
                       "ended_utc": _utc(summary.get("ended_wall_ns"))},
           "windows": windows}
    path.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _duration_s(window: dict[str, Any]) -> float:
    """The window's length from its record (records stored before protocol 6 have none: they were 1 s)."""
    return window.get("duration_s") or 1.0


def write_png(path: Path, summary: dict[str, Any], windows: list[dict[str, Any]]) -> None:
    """Per-second score (dots), cumulative score with its interval (line + band), invalid windows marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.2), dpi=100)
    valid = [w for w in windows if w["valid"]]
    invalid = [w for w in windows if not w["valid"]]
    for i, w in enumerate(invalid):  # a grey band per invalid window, its reason code above it
        ax.axvspan(w["t_s"], w["t_s"] + _duration_s(w), color="0.85", zorder=0,
                   label="invalid window" if i == 0 else None)
        ax.text(w["t_s"] + _duration_s(w) / 2, 1.27, w["reason_code"] or "?", rotation=90, fontsize=6, ha="center",
                va="top", color="0.35")
    if valid:
        ts = [w["t_s"] + _duration_s(w) / 2 for w in valid]
        ax.plot(ts, [w["p_asd"] for w in valid], "o", color="tab:blue", markersize=4, label="per-second p_asd")
        cum = [(w["t_s"] + _duration_s(w) / 2, w["cumulative_p_asd"], w["ci_low"], w["ci_high"]) for w in valid]
        ax.plot([c[0] for c in cum], [c[1] for c in cum], "-", color="tab:orange", label="cumulative p_asd")
        band = [c for c in cum if c[2] is not None]
        if band:
            ax.fill_between([c[0] for c in band], [c[2] for c in band], [c[3] for c in band], color="tab:orange",
                            alpha=0.2, label=f"{summary.get('ci_level', 0.95):.0%} interval")
    ax.axhline(summary.get("decision_threshold", 0.5), color="0.3", linestyle="--", linewidth=1, label="threshold")
    ax.set_ylim(-0.02, 1.3)
    ax.set_yticks([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_xlim(0, max([w["t_s"] + _duration_s(w) for w in windows], default=1.0))
    ax.set_xlabel("time in session (s)")
    ax.set_ylabel("p_asd")
    ax.legend(loc="lower left", fontsize=7, ncol=3)
    notes = "; ".join(summary.get("notes", []))
    ax.set_title(f"session {summary['id']} (walkway {summary.get('walkway', '?')}): {summary['valid_windows']} "
                 f"valid of {summary['windows']} windows, "
                 f"decision: {summary.get('decision_text', summary.get('decision'))}\n{notes}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def export_session(store: SessionStore, session_id: int, out_dir: str | Path,
                   formats: Iterable[str] = FORMATS) -> list[Path]:
    """Write ``session-<id>.<fmt>`` files; returns their paths (StoreError for an unknown session)."""
    summary = store.get_session(session_id)
    windows = store.windows(session_id)
    for window in windows:  # windows stored before walkways existed: their session's (the default) walkway
        window.setdefault("walkway", summary["walkway"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        if fmt not in FORMATS:
            raise ValueError(f"unknown export format {fmt!r} (expected one of {FORMATS})")
        path = out / f"session-{session_id}.{fmt}"
        if fmt == "csv":
            write_csv(path, windows)
        elif fmt == "json":
            write_json(path, summary, windows)
        else:
            write_png(path, summary, windows)
        paths.append(path)
    return paths
