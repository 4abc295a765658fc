"""The aggregator process: window scores in, console lines + windows.jsonl + summary.json out."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import IO

import zmq

from aggregator.scoring import ScoreAggregator, summary_lines
from dualgait.config import DualgaitConfig
from dualgait.messages import CameraState, EndOfStream, WindowScore
from dualgait.transport import Receiver, StopFlag, mark_ready, sub_socket

log = logging.getLogger(__name__)


def _echo(line: str, enabled: bool) -> None:
    if enabled:
        print(line, flush=True)  # CLI output: the live scores are this process's product


def run_aggregator(cfg: DualgaitConfig, *, ready_file: str | None = None) -> int:
    acfg = cfg.aggregator
    stop = StopFlag()
    out_dir = Path(acfg.output_dir) if acfg.output_dir else None
    jsonl: IO[str] | None = None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        jsonl = open(out_dir / "windows.jsonl", "a", encoding="utf-8")  # noqa: SIM115 - closed in finally
    aggregator = ScoreAggregator()
    ctx = zmq.Context()
    try:
        receiver = Receiver(sub_socket(ctx, [cfg.endpoints.scores], hwm=10_000))
        mark_ready(ready_file)
        eos: EndOfStream | None = None
        while not stop:
            for message, _received_ns in receiver.poll(200):
                if isinstance(message, WindowScore):
                    record, line = aggregator.update(message)
                    _echo(line, acfg.console)
                    if jsonl is not None:
                        jsonl.write(json.dumps(record) + "\n")
                        jsonl.flush()
                elif isinstance(message, CameraState):
                    _record, line = aggregator.camera_event(message)
                    _echo(line, acfg.console)
                elif isinstance(message, EndOfStream):
                    eos = message
                    summary = aggregator.finish(eos)
                    for line in summary_lines(summary):
                        _echo(line, acfg.console)
                    if out_dir is not None:
                        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
                    if acfg.exit_on_end_of_stream:
                        stop.set()
                        break
        if eos is None and aggregator.current is not None and out_dir is not None:
            # stopped before the stream ended: still leave a summary of what was scored
            (out_dir / "summary.json").write_text(json.dumps(aggregator.finish(None), indent=2) + "\n")
    finally:
        if jsonl is not None:
            jsonl.close()
        ctx.destroy(linger=0)
        sys.stdout.flush()
    return 0
