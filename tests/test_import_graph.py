"""The structure holds: no import circle between the project's modules, and the farm reaches into workers/
only through the declared farm-agent contract.

Every import counts, including those inside functions: a function-level import hides a circle from Python
but not from a reader. Imports under ``if TYPE_CHECKING:`` are for annotations only and never run. Agent modules import each other by bare name (they run on the board from their own
folder); those names are resolved against workers/agent/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("farm", "workers", "dashboard")
AGENT = ROOT / "workers" / "agent"

#: What farm/ and dashboard/ may import from workers/: the contract, and the input generator both sides
#: must share (INT8 calibrates, and the FP32 reference is computed, on the pictures the agent measures).
CONTRACT = {"farm.workers.agent.protocol", "farm.workers.agent.images"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if parts[0] != "farm":  # workers/ and dashboard/ are farm.workers and farm.dashboard (links in farm/)
        parts.insert(0, "farm")
    return ".".join(parts)


def _area(module: str) -> str:
    """farm, workers or dashboard: the folder a module lives in."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ("workers", "dashboard") else parts[0]


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if package == "farm" and path.relative_to(ROOT / package).parts[0] in PACKAGES:
                continue  # the links to workers/ and dashboard/: read from their own folders
            out[_module_name(path)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of a dotted name that is one of our modules."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return None


def _agent_module(bare: str, modules: dict[str, Path]) -> str | None:
    return (
        _resolve(f"farm.workers.agent.{bare}", modules)
        if (AGENT / bare.split(".")[0]).exists() or (AGENT / f"{bare.split('.')[0]}.py").exists()
        else None
    )


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    in_agent = path.is_relative_to(AGENT)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    type_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for stmt in block.body
        for n in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # "from a.b import c": the module a.b.c if there is one, else a.b (c is a name in it)
            names = [f"{prefix}.{a.name}" for a in node.names]
        for name in names:
            target = _resolve(name, modules)
            if target is None and in_agent:
                target = _agent_module(name, modules)
            if target is not None and target != module:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(m, p, modules) for m, p in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _is_package_face(module: str, target: str) -> bool:
    """A package's __init__ re-exporting its own submodules is not a circle worth the name."""
    return target.startswith(module + ".")


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return _graph()


def test_the_graph_sees_the_project(graph) -> None:
    assert (
        "farm.scheduler" in graph and "farm.workers.tasks" in graph and "farm.workers.agent.protocol" in graph
    )
    assert "farm.scheduler" in graph["farm.workers.tasks"]  # function-level and top-level imports both count
    assert "farm.workers.agent.protocol" in graph["farm.metrics"]
    assert (
        "farm.workers.agent.images" in graph["farm.workers.agent.loadgen_driver"]
    )  # bare-name imports resolve


def test_no_import_circles(graph) -> None:
    without_faces = {m: {t for t in deps if not _is_package_face(m, t)} for m, deps in graph.items()}
    assert _cycles(without_faces) == []


def test_farm_reaches_workers_only_through_the_contract(graph) -> None:
    crossing = sorted(
        f"{m} -> {t}"
        for m, deps in graph.items()
        if _area(m) in ("farm", "dashboard")
        for t in deps
        if _area(t) == "workers" and t not in CONTRACT
    )
    assert crossing == []


def test_domain_code_never_imports_the_tasks(graph) -> None:
    assert sorted(m for m, deps in graph.items() if "farm.workers.tasks" in deps) == []


def test_the_dashboard_reads_through_the_read_side(graph) -> None:
    """Pages read through farm.queries (and the catalog), never the services that write."""
    bad = sorted(
        f"{m} -> {t}"
        for m, deps in graph.items()
        if _area(m) == "dashboard"
        for t in deps
        if t.startswith(("farm.services", "farm.scheduler", "farm.transport", "farm.fleet.transports"))
    )
    assert bad == []
