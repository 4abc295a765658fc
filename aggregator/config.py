"""Configuration of the aggregator process."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class AggregatorConfig:
    """``output_dir``: where windows.jsonl and summary.json go (null: keep nothing on disk)."""

    output_dir: str | None = None
    console: bool = True
    exit_on_end_of_stream: bool = False
