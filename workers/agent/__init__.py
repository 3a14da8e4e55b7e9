"""The farm board agent.

This directory is shipped as-is to a board and run there with the board's own ``python3``::

    python3 /path/to/agent/farm_agent.py --config cfg.json

Rules for everything in this directory:

* Python 3.8 compatible (boards run old distributions).
* Depends only on the standard library, numpy, mlperf_loadgen and the backend runtime
  (onnxruntime, VART, ...); never on ``farm`` or anything outside this directory.
* Modules import each other by bare name (``import harness``, ``from backends import create``);
  ``farm_agent.py`` puts this directory first on ``sys.path``. Code that imports agent modules
  in-process (tests, benchmarks) must do the same with :data:`AGENT_DIR`.
"""

from .protocol import AGENT_DIR, AGENT_SCRIPT

__all__ = ["AGENT_DIR", "AGENT_SCRIPT"]
