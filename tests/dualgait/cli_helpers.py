"""Run the real ``dualgait`` command and check that it failed the way user mistakes must: one line, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    """``python -m dualgait ARGS`` in ``cwd``; ``env`` adds to (or replaces keys of) this environment."""
    return subprocess.run([sys.executable, "-m", "dualgait", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env={**os.environ, **env} if env is not None else None)


def one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit code 2, no traceback, exactly one ``error:`` line on stderr holding every needle; returns it."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]
