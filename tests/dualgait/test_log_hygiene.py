"""The four real processes at DEBUG, over CURVE, on recordings named like a clinic would name them: the run
works end to end and its log carries no frame bytes, no patient identifiers and no key material.

What counts (docs/security.md, "Logs"): frame or preview bytes in any form (a raw ``b'...'``/``\\x..`` repr,
a long base64 or hex run); patient identifiers: participant ids and the names of recording files (clinic
recordings are often named after the patient or their record number; logs name them by a digest); CURVE
secret keys and full public keys (logs show 8-character fingerprints). The CLI's own output on stdout (the
scores the operator asked for, the files it was given) is not a log.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import zmq.auth

from core.security import generate_key_pair

IDENTIFIERS = ("DOE", "JANE", "MRN4711", "participant")
BYTES_REPR = re.compile(r"(?<![A-Za-z0-9_])b['\"]|\\x[0-9a-fA-F]{2}")
BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")
HEX_RUN = re.compile(r"[0-9a-fA-F]{32,}")


def log_problems(text: str, secrets: tuple[str, ...] = ()) -> list[str]:
    """Lines of ``text`` that break the rules above, with the reason."""
    problems = []
    for line in text.splitlines():
        for pattern, what in ((BYTES_REPR, "bytes repr"), (BASE64_RUN, "base64 run"), (HEX_RUN, "hex run")):
            if pattern.search(line):
                problems.append(f"{what}: {line[:200]}")
        problems += [f"identifier {word!r}: {line[:200]}" for word in IDENTIFIERS if word.lower() in line.lower()]
        problems += [f"key material: {line[:120]}" for secret in secrets if secret in line]
    return problems


def test_the_rules_catch_what_they_should() -> None:
    assert log_problems("dropped message b'\\x00\\x01'") and log_problems("frame " + "QUJD" * 12)
    assert log_problems("digest " + "ab12" * 8) and log_problems("front: file /data/DOE_JANE_front.mp4 open")
    assert not log_problems("12:00:01 capture INFO front: file recording #1a2b3c4d.mp4 open")


def test_pipeline_log_has_no_frames_identifiers_or_keys(short_pair: tuple[str, str], tmp_path: Path) -> None:
    clinic = tmp_path / "recordings"
    clinic.mkdir()
    front, side = (clinic / f"DOE_JANE_MRN4711_{view}.mp4" for view in ("front", "side"))
    shutil.copy(short_pair[0], front)
    shutil.copy(short_pair[1], side)
    keys = tmp_path / "keys"
    public_path, secret_path = generate_key_pair(keys, "host")
    (keys / "allowed").mkdir()
    shutil.copy(public_path, keys / "allowed" / "host.key")
    public, secret = zmq.auth.load_certificate(secret_path)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "dualgait", "demo", "--front", str(front), "--side", str(side), "--untrained",
         "--output", str(out), "--log-level", "DEBUG",
         "--set", "security.curve=true", "--set", f"security.keys_dir={keys}",  # ipc endpoints over CURVE too
         "--set", f"aggregator.store.url=sqlite:///{tmp_path / 'sessions.db'}", "--set", "aggregator.http.port=0",
         "--set", "aggregator.metrics.port=0", "--set", "aggregator.publish_endpoint=null"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stderr
    assert "CURVE on ipc://" in log and " DEBUG " in log  # CURVE was on, DEBUG lines were written
    summary = json.loads((out / "summary.json").read_text())
    assert summary["windows"] >= 1  # windows went capture -> inference -> aggregator over CURVE
    problems = log_problems(log, (public.decode(), secret.decode()))
    assert not problems, "\n".join(problems[:20])


def test_a_damaged_recording_is_not_named_in_the_capture_log(assets: Path, tmp_path: Path) -> None:
    """A truncated file ends the capture with a reason that would carry its path: the log and the camera event
    carry the digest instead."""
    data = (assets / "videos" / "walk_front.mp4").read_bytes()
    damaged = tmp_path / "DOE_JANE_MRN4711_front.mp4"
    damaged.write_bytes(data[:len(data) // 5])
    result = subprocess.run(
        [sys.executable, "-m", "dualgait", "capture", "--view", "front", "--source", str(damaged),
         "--log-level", "DEBUG", "--set", f"endpoints.front=ipc://{tmp_path / 'front.sock'}",
         "--set", "capture.speed=20", "--set", "capture.start_delay_s=0"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]  # the capture failed: the file is damaged
    assert "truncated or corrupt" in result.stderr and "recording #" in result.stderr
    problems = log_problems(result.stderr)
    assert not problems, "\n".join(problems[:20])
