"""Every third-party module the packages import is a declared dependency, never one inherited from an extra.

The test extra once brought ``tqdm`` in through pytorchvideo, so CI was green while the README's demo
command (``pip install -e .``, no extras) crashed. This reads every import statement of every package
(module level and inside functions) and maps it to the distribution that provides it. ``.ci/run`` adds the
dynamic half: it builds a venv with the demo install alone and imports every module (``.ci/import_all.py``).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "capture", "inference", "aggregator", "offline", "bench", "dualgait", "training")
# imported only where a GPU host (tensorrt) or a PostgreSQL store (psycopg) needs them, behind ImportError guards,
# and declared as an extra
OPTIONAL = {"tensorrt": "tensorrt", "psycopg": "psycopg", "psycopg_pool": "psycopg-pool"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(requirements: list[str]) -> set[str]:
    return {_norm(re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0]) for req in requirements}


def third_party_imports(root: Path = ROOT) -> dict[str, set[str]]:
    """Top-level module name -> the files importing it, over every package's modules."""
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in PACKAGES:
                        found.setdefault(top, set()).add(str(path.relative_to(root)))
    return found


def test_every_imported_module_is_a_declared_runtime_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = _requirement_names(project["dependencies"])
    extras = _requirement_names([r for reqs in project["optional-dependencies"].values() for r in reqs])
    providers = packages_distributions()
    imports = third_party_imports()
    assert {"torch", "zmq", "cv2", "ultralytics", "tqdm"} <= set(imports)  # the scan sees the packages' imports
    missing = []
    for module, files in sorted(imports.items()):
        if module in OPTIONAL:
            assert _norm(OPTIONAL[module]) in extras, f"optional {module} is in no extra of pyproject.toml"
            continue
        dists = {_norm(d) for d in providers.get(module, [module])}
        if not dists & runtime:
            missing.append(f"{module} (from {', '.join(sorted(dists))}; imported by {', '.join(sorted(files)[:3])})")
    assert not missing, "imported but not in [project].dependencies: " + "; ".join(missing)


def test_runtime_dependencies_are_pinned_in_constraints() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {_norm(line.split("==")[0]) for line in (ROOT / "constraints.txt").read_text().splitlines()
            if "==" in line and not line.lstrip().startswith("#")}
    unpinned = sorted(_requirement_names(project["dependencies"]) - pins)
    assert not unpinned, f"runtime dependencies without a pin in constraints.txt: {unpinned}"


def test_the_scan_finds_an_undeclared_import(tmp_path: Path) -> None:
    """The check can fail: a module importing a package that pyproject.toml does not name is reported."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / "training" / "bar.py").write_text("def f():\n    from tqdm import tqdm\n    import numpy.linalg\n")
    assert third_party_imports(tmp_path) == {"tqdm": {"training/bar.py"}, "numpy": {"training/bar.py"}}
