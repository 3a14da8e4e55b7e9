"""Regression detection on a benchmark's series of results: pure functions, no database.

- :func:`detect`: every change point of a whole series (levels, change, p-value, regression or not).
- :func:`check`: the fast per-run test of one new value against the recent history.
- :func:`mann_whitney_p`: a one-sided rank test of a few values against a reference (confirmation runs).

Method and benchmark against Apache Otava: docs/regressions.md.
"""

from farm.regressions.check import RunCheck, check
from farm.regressions.detect import ChangePoint, detect
from farm.regressions.ranktest import mann_whitney_p

__all__ = ["ChangePoint", "RunCheck", "check", "detect", "mann_whitney_p"]
