"""Import the board agent's modules in-process (as the agent does: by bare name, its directory first on
sys.path), optionally with the vendor fakes of tests/fakes importable, and forget them afterwards so no
other test sees them."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
AGENT_DIR = str(REPO / "workers" / "agent")
FAKES_DIR = str(REPO / "tests" / "fakes")
FAKES_BIN = os.path.join(FAKES_DIR, "bin")

MODULES = (
    "stats",
    "environment",
    "protocol",
    "loadgen_scenarios",
    "loadgen_logs",
    "loadgen_sut",
    "loadgen_driver",
    "harness",
    "backends",
    "backends.base",
    "sensors",
    "sensors.base",
    "sensors.sampler",
)
_TOP = {
    "stats", "environment", "loadgen_driver", "harness", "backends", "sensors", "health", "serve", "server_search",
    "accuracy", "images", "protocol", "protocol_checks", "loadgen_scenarios", "loadgen_logs", "loadgen_sut",
}  # fmt: skip
_FAKE_TOP = {"xir", "vart", "pynvml"}


def _ours(name: str, fakes: bool) -> bool:
    top = name.split(".")[0]
    return top in _TOP or (fakes and top in _FAKE_TOP)


@contextlib.contextmanager
def imported(fakes: bool = False):
    """A namespace of the agent's modules (``ns.harness``, ``ns.sensors_sampler``, ...)."""
    saved_path = list(sys.path)
    saved = {n: sys.modules.pop(n) for n in [n for n in sys.modules if _ours(n, True)]}
    sys.path.insert(0, AGENT_DIR)
    if fakes:
        sys.path.insert(1, FAKES_DIR)
    try:
        yield types.SimpleNamespace(**{n.replace(".", "_"): importlib.import_module(n) for n in MODULES})
    finally:
        sys.path[:] = saved_path
        for name in [n for n in sys.modules if _ours(n, True)]:
            del sys.modules[name]
        sys.modules.update(saved)


def module(name: str):
    """An agent module by bare name (inside :func:`imported`)."""
    return importlib.import_module(name)
