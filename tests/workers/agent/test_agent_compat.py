"""The agent ships to boards with old Pythons: every agent file must stay Python 3.8 compatible and
import only the standard library, numpy, mlperf_loadgen, the backend runtime and its own modules."""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

import pytest

AGENT_DIR = Path(__file__).resolve().parents[3] / "workers" / "agent"
AGENT_FILES = sorted(AGENT_DIR.rglob("*.py"))
AGENT_MODULES = {p.stem for p in AGENT_DIR.glob("*.py")} | {p.name for p in AGENT_DIR.iterdir() if p.is_dir()}
# Backend / sensor runtimes, each imported only by its own module: xir + vart (VART), pynvml (NVML).
THIRD_PARTY = {
    "numpy",
    "mlperf_loadgen",
    "onnxruntime",
    "xir",
    "vart",
    "pynvml",
    "torch",
    "onnx",
    "onnx2torch",
    "torchvision",
}
# Attribute names that only exist on Python >= 3.9.
PY39_ATTRS = {"removeprefix", "removesuffix", "is_relative_to", "with_stem", "readlink", "randbytes", "cache"}
PY39_MODULES = {"zoneinfo", "graphlib", "tomllib"}


def _ids(paths):
    return [str(p.relative_to(AGENT_DIR)) for p in paths]


def test_agent_has_the_expected_files():
    names = set(_ids(AGENT_FILES))
    for required in ("farm_agent.py", "harness.py", "loadgen_driver.py", "stats.py", "environment.py"):
        assert required in names
    assert {"backends/__init__.py", "backends/base.py", "backends/onnxruntime_cpu.py"} <= names


@pytest.mark.parametrize("path", AGENT_FILES, ids=_ids(AGENT_FILES))
def test_parses_as_python_3_8(path):
    tree = ast.parse(path.read_text(), filename=str(path), feature_version=(3, 8))
    uses_annotations = any(
        isinstance(node, ast.AnnAssign)
        or (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None)
        or (isinstance(node, ast.arg) and node.annotation is not None)
        for node in ast.walk(tree)
    )
    has_future = any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(a.name == "annotations" for a in node.names)
        for node in tree.body
    )
    # PEP 604/585 annotations (int | None, list[int]) only work on 3.8 as postponed strings.
    assert has_future or not uses_annotations, (
        f"{path.name}: annotations need 'from __future__ import annotations'"
    )
    bad_attrs = sorted(
        {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr in PY39_ATTRS}
    )
    assert not bad_attrs, f"{path.name} uses Python 3.9+ APIs: {bad_attrs}"


@pytest.mark.parametrize("path", AGENT_FILES, ids=_ids(AGENT_FILES))
def test_imports_only_allowed_modules(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    allowed = set(sys.stdlib_module_names) | THIRD_PARTY | AGENT_MODULES
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert "farm" not in imported and "workers" not in imported, f"{path.name} imports farm/workers"
    assert imported <= allowed, f"{path.name} imports {sorted(imported - allowed)}"
    assert not imported & PY39_MODULES


def test_agent_dir_constant_points_at_the_shipped_directory():
    import farm.workers.agent

    assert os.path.samefile(farm.workers.agent.AGENT_DIR, AGENT_DIR)
    assert os.path.isfile(farm.workers.agent.AGENT_SCRIPT)
