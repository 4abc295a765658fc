"""The packages form layers and imports only go down (docs/architecture.md):

    app        dualgait (CLI, launcher, supervisor, score)        training (offline, beside the app)
    benchmarks bench
    recordings offline   (capture's file sources through inference's stages, no sockets)
    serving    capture   inference   aggregator   (no imports between the three)
    base       core      (imports no component)

An import inside ``if TYPE_CHECKING:`` is a type annotation only, and one inside ``if __name__ == "__main__":``
belongs to the module run as a program (an entry point of the app, handing it the app's config loader):
neither is an arrow. The graph is read from the source (every import statement, module level and inside
functions), so a lazy import counts too.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER = {"core": 0, "capture": 1, "inference": 1, "aggregator": 1, "offline": 2, "bench": 3, "dualgait": 4,
         "training": 4}
# sideways arrows that are allowed: the app's CLI runs training (demo model, train, simulate)
SIDEWAYS = {("dualgait", "training")}


def _runtime_imports(tree: ast.AST) -> list[str]:
    """Modules imported by ``tree``, leaving out ``if TYPE_CHECKING:`` and ``if __name__ == "__main__":`` blocks."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "__name__ == '__main__'"):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def package_graph(root: Path = ROOT) -> dict[tuple[str, str], set[str]]:
    """(importing package, imported package) -> the importing files, over every package of LAYER."""
    edges: dict[tuple[str, str], set[str]] = defaultdict(set)
    for package in LAYER:
        for path in (root / package).rglob("*.py"):
            for module in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
                top = module.split(".")[0]
                if top in LAYER and top != package:
                    edges[package, top].add(f"{path.relative_to(root)} -> {module}")
    return edges


def _cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    cycles, state = [], {}

    def walk(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                walk(nxt, [*stack, nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            walk(node, [node])
    return cycles


def test_no_import_cycle_between_packages() -> None:
    cycles = _cycles(set(package_graph()))
    assert not cycles, f"import cycles between packages: {cycles}"


def test_imports_only_go_down() -> None:
    wrong = {f"{a} -> {b}": sorted(files)[:3] for (a, b), files in package_graph().items()
             if LAYER[b] >= LAYER[a] and (a, b) not in SIDEWAYS}
    assert not wrong, f"imports that do not go down a layer: {wrong}"


def test_the_checks_can_fail(tmp_path: Path) -> None:
    for package in LAYER:
        (tmp_path / package).mkdir()
    (tmp_path / "capture" / "a.py").write_text("def f():\n    from training.synthetic import x\n")
    (tmp_path / "training" / "b.py").write_text("import capture.sources\n")
    (tmp_path / "core" / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                            "    from dualgait.config import DualgaitConfig\n")
    edges = package_graph(tmp_path)
    assert set(edges) == {("capture", "training"), ("training", "capture")}
    assert _cycles(set(edges)) == [["capture", "training", "capture"]]
