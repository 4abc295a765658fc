"""Import every module of every dualgait package; exit 1 naming each module that does not import.

Run by .ci/run with the venv of the README's demo install (``pip install -e .``, no extras): a module whose
third-party import is not a declared dependency fails here even when the test extra would have hidden it.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback

PACKAGES = ("core", "capture", "inference", "aggregator", "offline", "bench", "dualgait", "training")


def main() -> int:
    names, failed = [], []
    for package in PACKAGES:
        module = importlib.import_module(package)
        names.append(package)
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
            if info.name.rsplit(".", 1)[-1] == "__main__":  # running it would start the CLI
                continue
            names.append(info.name)
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:
            failed.append(name)
            last = traceback.format_exception_only(exc)[-1].strip()
            print(f"import_all: cannot import {name}: {last}", file=sys.stderr)
    print(f"import_all: {len(names) - len(failed)} of {len(names)} modules import with this install")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
