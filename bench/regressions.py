"""farm.regressions.detect against Apache Otava on labelled synthetic benchmark series, plus speed.

    .venv/bin/python bench/regressions.py [--seed 1] [--seeds 1] [--series 400] [--no-otava]
        [--otava-python PATH] [--speed] [--speed-series 10000] [--json out.json]

Each seed generates --series series of 40-200 points: level steps (1-3 changes, 5-30 %, at least 3x the noise
CV, segments >= 10 points), flat series and gently drifting ones (total drift under 3 %, no labelled
change), with Gaussian, log-normal, Student-t(3) or bimodal noise at 0.5-4 % CV and, in half of them, 1-3
lone spikes (+20..100 %). Both detectors get the same series and the same magnitude threshold (2 %):
detect(min_change_pct=2) and Otava's compute_change_points(min_magnitude=0.02) at its default settings
(window_len 50, max_pvalue 0.001), and again at max_pvalue 0.01 (detect's alpha). A detection within +-3
points of a labelled change is a hit (one-to-one); precision, recall and F1 are pooled over all series;
false alarms are detections per flat (or drifting) series.

Otava runs in its own venv (bench/.venv-otava, created and `pip install apache-otava` on first use, or
--otava-python), through bench/regressions_otava.py in a subprocess. --seeds N runs seeds seed..seed+N-1
and prints each, then the mean and the minimum. --speed times detect over --speed-series series of 200
points (one process, no multiprocessing) and check() on a 200-point history.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import support  # noqa: F401 - before farm: puts the checkout on sys.path

from farm.regressions import check, detect

HERE = Path(__file__).resolve().parent
OTAVA_VENV = HERE / ".venv-otava"
MIN_CHANGE_PCT = 2.0
TOLERANCE = 3
NOISES = ("gauss", "lognormal", "student-t3", "bimodal")


@dataclass
class Labelled:
    kind: str  # "step", "flat" or "drift"
    noise: str
    values: np.ndarray
    changes: list[int]
    spikes: bool


def _noise(rng: np.random.Generator, kind: str, n: int, cv: float) -> np.ndarray:
    """Multiplicative noise of mean ~1 and standard deviation ~cv."""
    if kind == "gauss":
        return 1.0 + cv * rng.standard_normal(n)
    if kind == "lognormal":
        s = math.sqrt(math.log1p(cv * cv))
        return rng.lognormal(-s * s / 2, s, n)
    if kind == "student-t3":  # variance 3: scale to cv
        return 1.0 + cv / math.sqrt(3.0) * rng.standard_t(3, n)
    p = rng.uniform(0.2, 0.5)  # bimodal: a second mode taken by a fraction p of the runs
    d = cv * math.sqrt(0.75 / (p * (1 - p)))
    return 1.0 + 0.5 * cv * rng.standard_normal(n) + d * ((rng.random(n) < p) - p)


def _positions(rng: np.random.Generator, n: int, k: int, gap: int) -> list[int]:
    """k change positions with every segment at least ``gap`` points long."""
    while True:
        pos = sorted(rng.choice(np.arange(gap, n - gap + 1), size=k, replace=False).tolist())
        if all(b - a >= gap for a, b in zip(pos, pos[1:], strict=False)):
            return pos


def generate(seed: int, count: int) -> list[Labelled]:
    """``count`` labelled series: 60 % steps, 25 % flat, 15 % drift; noise kinds in turn."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        noise = NOISES[i % len(NOISES)]
        n = int(rng.integers(40, 201))
        cv = rng.uniform(0.005, 0.04)
        level = np.full(n, 10 ** rng.uniform(0, 3))
        r = rng.random()
        kind = "step" if r < 0.6 else ("flat" if r < 0.85 else "drift")
        changes: list[int] = []
        if kind == "step":
            k = int(rng.integers(1, 4))
            while n < (k + 1) * 10 + 2:
                k -= 1
            changes = _positions(rng, n, k, 10)
            for at in changes:
                size = rng.uniform(max(0.05, 3 * cv), 0.30) * rng.choice([-1.0, 1.0])
                level[at:] *= 1 + size
        elif kind == "drift":
            level *= 1 + rng.uniform(-0.03, 0.03) * np.linspace(0, 1, n)
        values = level * _noise(rng, noise, n, cv)
        spikes = bool(rng.random() < 0.5)
        if spikes:  # lone spikes, never two in a row
            for at in rng.choice(n // 2, size=int(rng.integers(1, 4)), replace=False) * 2:
                values[at] *= 1 + rng.uniform(0.2, 1.0)
        out.append(Labelled(kind, noise, values, changes, spikes))
    return out


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    alarms: dict[str, list[int]] = field(default_factory=lambda: {"flat": [], "drift": []})
    seconds: float = 0.0

    def add(self, truth: list[int], found: list[int], kind: str) -> None:
        pairs = sorted((abs(t - f), t, f) for t in truth for f in found if abs(t - f) <= TOLERANCE)
        used_t: set[int] = set()
        used_f: set[int] = set()
        for _, t, f in pairs:
            if t not in used_t and f not in used_f:
                used_t.add(t)
                used_f.add(f)
        self.tp += len(used_t)
        self.fp += len(found) - len(used_f)
        self.fn += len(truth) - len(used_t)
        if kind in self.alarms:
            self.alarms[kind].append(len(found))

    def figures(self, count: int) -> dict[str, float]:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
        return {
            "precision": p,
            "recall": r,
            "f1": 2 * p * r / (p + r) if p + r else 0.0,
            "fa_flat": statistics.fmean(self.alarms["flat"]) if self.alarms["flat"] else 0.0,
            "fa_drift": statistics.fmean(self.alarms["drift"]) if self.alarms["drift"] else 0.0,
            "ms_per_series": self.seconds / count * 1e3,
        }


def score(series: list[Labelled], found: list[list[int]], seconds: float, keep=lambda s: True) -> Score:
    """Pooled figures over the series ``keep`` selects."""
    out = Score(seconds=seconds)
    for s, f in zip(series, found, strict=True):
        if keep(s):
            out.add(s.changes, f, s.kind)
    return out


def run_detect(series: list[Labelled]) -> tuple[list[list[int]], float]:
    found, seconds = [], 0.0
    for s in series:
        started = time.perf_counter()
        cps = detect(s.values, False, min_change_pct=MIN_CHANGE_PCT)
        seconds += time.perf_counter() - started
        found.append([c.index for c in cps])
    return found, seconds


def otava_python(given: str | None) -> Path:
    """Otava's interpreter: --otava-python, or bench/.venv-otava (created and filled on first use)."""
    if given:
        return Path(given)
    python = OTAVA_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {OTAVA_VENV} and installing apache-otava ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(OTAVA_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "apache-otava"], check=True)
    return python


def run_otava(python: Path, series: list[Labelled], max_pvalue: float) -> tuple[list[list[int]], float, str]:
    with tempfile.TemporaryDirectory(prefix="farm-otava-") as tmp:
        src, dst = os.path.join(tmp, "in.json"), os.path.join(tmp, "out.json")
        with open(src, "w") as f:
            json.dump(
                {
                    "series": [s.values.tolist() for s in series],
                    "max_pvalue": max_pvalue,
                    "min_magnitude": MIN_CHANGE_PCT / 100,
                    "window_len": 50,
                },
                f,
            )
        subprocess.run([str(python), str(HERE / "regressions_otava.py"), src, dst], check=True)
        with open(dst) as f:
            result = json.load(f)
    return result["indexes"], sum(result["seconds"]), result["version"]


def speed(count: int) -> dict[str, float]:
    """detect over ``count`` series of 200 points (steps and flat mixed), and one check() call."""
    rng = np.random.default_rng(7)
    series = []
    for i in range(count):
        x = 100 * (1 + 0.02 * rng.standard_normal(200))
        if i % 2:
            x[int(rng.integers(20, 180)) :] *= 1.1
        series.append(x)
    started = time.perf_counter()
    for x in series:
        detect(x, False, min_change_pct=MIN_CHANGE_PCT)
    total = time.perf_counter() - started
    history = 10 * (1 + 0.02 * rng.standard_normal(200))
    calls = 2000
    started = time.perf_counter()
    for i in range(calls):
        check(history, 12.0 if i % 2 else 10.1, False, min_change_pct=MIN_CHANGE_PCT)
    per_check = (time.perf_counter() - started) / calls
    return {"detect_total_s": total, "series": count, "check_ms": per_check * 1e3}


def _row(name: str, figs: list[dict[str, float]]) -> str:
    cells = []
    for key, fmt in (("f1", ".3f"), ("precision", ".3f"), ("recall", ".3f"), ("fa_flat", ".3f"),
                     ("fa_drift", ".3f"), ("ms_per_series", ".2f")):  # fmt: skip
        vals = [f[key] for f in figs]
        cell = format(statistics.fmean(vals), fmt)
        if len(vals) > 1:
            worst = max(vals) if key.startswith(("fa", "ms")) else min(vals)
            cell += f" ({format(worst, fmt)})"
        cells.append(cell)
    return f"| {name} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--series", type=int, default=400)
    parser.add_argument("--no-otava", action="store_true")
    parser.add_argument("--otava-python", default=None)
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--speed-series", type=int, default=10_000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    python = None if args.no_otava else otava_python(args.otava_python)
    names = ["farm detect (alpha 0.01)"] + (["Otava default (p 0.001)", "Otava p 0.01"] if python else [])
    tools: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    pooled: dict[str, list[list[int]]] = {name: [] for name in names}
    everything: list[Labelled] = []
    version = ""
    for seed in range(args.seed, args.seed + args.seeds):
        series = generate(seed, args.series)
        runs = {names[0]: run_detect(series)}
        if python:
            for name, p in zip(names[1:], (0.001, 0.01), strict=True):
                found, seconds, version = run_otava(python, series, p)
                runs[name] = (found, seconds)
        kinds = {k: sum(s.kind == k for s in series) for k in ("step", "flat", "drift")}
        print(
            f"seed {seed}: {len(series)} series ({kinds}), {sum(len(s.changes) for s in series)} labelled changes"
        )
        for name, (found, seconds) in runs.items():
            figs = score(series, found, seconds).figures(len(series))
            tools[name].append(figs)
            pooled[name] += found
            print(f"  {name:26s} " + " ".join(f"{k} {v:.3f}" for k, v in figs.items()))
        everything += series
    print()
    if version:
        print(f"apache-otava {version}")
    seeds = f"seeds {args.seed}..{args.seed + args.seeds - 1}" if args.seeds > 1 else f"seed {args.seed}"
    print(f"{seeds}, {args.series} series each; mean (worst over seeds)" if args.seeds > 1 else seeds)
    print("| detector | F1 | precision | recall | false alarms / flat | / drifting | ms / series |")
    print("|---|---|---|---|---|---|---|")
    for name, figs in tools.items():
        print(_row(name, figs))
    groups = {noise: (lambda s, noise=noise: s.noise == noise) for noise in NOISES}
    groups |= {"no spikes": lambda s: not s.spikes, "with spikes": lambda s: s.spikes}
    print("\nF1 / false alarms per flat series, by noise and spikes (all seeds pooled)")
    print("| detector | " + " | ".join(groups) + " |")
    print("|---|" + "---|" * len(groups))
    breakdown: dict[str, dict[str, list[float]]] = {}
    for name in names:
        cells = {}
        for g, keep in groups.items():
            f = score(everything, pooled[name], 0.0, keep).figures(1)
            cells[g] = [f["f1"], f["fa_flat"]]
        breakdown[name] = cells
        print(f"| {name} | " + " | ".join(f"{f1:.3f} / {fa:.3f}" for f1, fa in cells.values()) + " |")
    result: dict[str, object] = {"tools": tools, "breakdown": breakdown, "otava_version": version}
    if args.speed:
        sp = speed(args.speed_series)
        result["speed"] = sp
        print(f"\nspeed: detect over {sp['series']} series of 200 points: {sp['detect_total_s']:.2f} s "
              f"({sp['detect_total_s'] / sp['series'] * 1e3:.3f} ms each); check(): {sp['check_ms']:.3f} ms/call")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
