"""On-disk cache of built engines (ONNX files, OpenVINO IR, TensorRT plans), keyed by what they depend on.

Each entry is a folder ``<cache_dir>/<kind>/<sha256 of the key>[:16]/`` holding the artefact and a
``key.json`` that says, readably, what it was built from. Entries are written to a temporary folder
and renamed into place, so a crashed build never leaves a half-written engine that looks finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = ["CACHE_DIR_FIX", "EngineCache", "check_cache_dir", "resolve_cache_dir"]

CACHE_DIR_FIX = "set DUALGAIT_CACHE_DIR to a writable folder, or --set inference.model.cache_dir=DIR"


def resolve_cache_dir(path: str) -> Path:
    """The folder, ``${VAR:-default}`` and ``~`` expanded (a config dataclass built in code keeps its default
    unexpanded: only the config loader expands them)."""
    from core.configtools import expand_env

    return Path(os.path.expanduser(expand_env(path))).resolve()


def check_cache_dir(path: str) -> Path:
    """The cache folder (``inference.model.cache_dir``: engines, a demo model built there), created and proven
    writable before anything is built into it; a :class:`core.folders.FolderError` naming the fix otherwise."""
    from core.folders import check_writable_dir

    return check_writable_dir(path, what="cache folder", fix=CACHE_DIR_FIX)


class EngineCache:
    def __init__(self, root: str | Path, *, rebuild: bool = False) -> None:
        self.root = resolve_cache_dir(str(root))
        # rebuild: replace each entry asked for in this cache's lifetime (once), leave all others alone
        self.rebuild = rebuild
        self._rebuilt: set[Path] = set()

    @staticmethod
    def digest(key: Mapping[str, object]) -> str:
        return hashlib.sha256(json.dumps(dict(key), sort_keys=True).encode()).hexdigest()[:16]

    def entry(self, kind: str, key: Mapping[str, object]) -> Path:
        return self.root / kind / self.digest(key)

    def get_or_build(self, kind: str, key: Mapping[str, object], build: Callable[[Path], None]) -> tuple[Path, bool]:
        """Return ``(folder, built)``; ``build(tmp_folder)`` writes the artefact when it is not cached."""
        final = self.entry(kind, key)
        if self.rebuild and final not in self._rebuilt:
            self._rebuilt.add(final)
            shutil.rmtree(final, ignore_errors=True)
        if (final / "key.json").is_file():
            return final, False
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=final.parent))
        try:
            build(tmp)
            (tmp / "key.json").write_text(json.dumps(dict(key), sort_keys=True, indent=2) + "\n")
            try:
                tmp.rename(final)
            except OSError:  # another process finished the same entry first
                if not (final / "key.json").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final, True
