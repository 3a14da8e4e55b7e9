"""Driver run by bench/regressions.py inside Apache Otava's own venv (bench/.venv-otava): standard library and
otava only, never farm.

    bench/.venv-otava/bin/python bench/regressions_otava.py IN.json OUT.json

IN.json: {"series": [[float, ...], ...], "max_pvalue": p, "min_magnitude": m, "window_len": w}.
OUT.json: {"version": "...", "indexes": [[int, ...], ...], "seconds": [float, ...]}.

It calls Otava's library-level e-divisive with significance test, the function `otava analyze` runs per
metric (otava.series.AnalyzedSeries -> otava.analysis.compute_change_points: windowed split step with a
permutation-free t-test, then the merge step with the magnitude filter). The series goes in as a Python
list, as Otava's own caller passes it: with a numpy array its window slicing is skipped
(ChangePointDetector.get_change_points slices only non-arrays).
"""

from __future__ import annotations

import json
import sys
import time
from importlib.metadata import version

from otava.analysis import compute_change_points


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    with open(src) as f:
        job = json.load(f)
    indexes, seconds = [], []
    for values in job["series"]:
        started = time.perf_counter()
        cps, _weak = compute_change_points(
            list(values),
            window_len=job["window_len"],
            max_pvalue=job["max_pvalue"],
            min_magnitude=job["min_magnitude"],
        )
        seconds.append(time.perf_counter() - started)
        indexes.append(sorted(int(cp.index) for cp in cps))
    with open(dst, "w") as f:
        json.dump({"version": version("apache-otava"), "indexes": indexes, "seconds": seconds}, f)


if __name__ == "__main__":
    main()
