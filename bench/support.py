"""What the benchmarks share. bench/ never imports tests/: what a benchmark and a test both need lives in
the farm package (the tiny model: farm.zoo.tiny; sshd boards on loopback and their lab file:
farm.lab.loopback), and what only benchmarks need lives here.

Benchmarks run as files from a checkout (``.venv/bin/python bench/NAME.py``), so bench/ is first on
sys.path and ``import support`` finds this module; importing it puts the checkout's root there too, so the
farm imported is the checkout's even where it is not installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: The checkout these benchmarks belong to.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: This farm's CLI, run by the interpreter running the benchmark (no reliance on a `farm` on PATH).
FARM = [sys.executable, "-m", "farm.cli.main"]
