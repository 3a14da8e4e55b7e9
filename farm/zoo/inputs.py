"""Deterministic synthetic inputs: image-like for calibration and fidelity checks (numpy only).

The implementation lives in the board agent (``workers/agent/images.py``), which measures runs on pictures
from the same generator; the farm imports it from there.
"""

from __future__ import annotations

from farm.workers.agent.images import IMAGENET_MEAN, IMAGENET_STD, synthetic_inputs

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "synthetic_inputs"]
