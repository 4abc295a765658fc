"""Folders a command writes (cache, output): created if needed and proven writable, or one line naming the fix."""

from __future__ import annotations

import tempfile
from pathlib import Path

from core.configtools import ConfigError

__all__ = ["FolderError", "check_writable_dir"]


class FolderError(ConfigError):
    """A folder cannot be created or written; the message names the fix."""


def check_writable_dir(path: str | Path, *, what: str, fix: str) -> Path:
    """Create ``path`` if needed and prove it writable (a file is created and removed); returns it resolved.

    ``fix`` finishes the sentence "...: " of the error, e.g. "set DUALGAIT_CACHE_DIR to a writable folder".
    """
    folder = Path(path).expanduser().resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise FolderError(f"cannot write the {what} {folder} ({reason}): {fix}") from None
    return folder
