"""Sweep loader under mutation (issue 10): N mutated sweep files through the loader `farm submit` uses.

    .venv/bin/python bench/fuzz_sweeps.py [--n 2000] [--seed 1] [--labs 500]

Each case is a mutant of a valid sweep (farm.sweep.mutants: structured, raw-token and pathological
mutations of the bundled examples and inline seeds), written to a file and loaded with
``load_sweep(path, inventory)`` against a lab with every board type. It counts the cases rejected cleanly
(SweepError: file:line: field), accepted, and crashed (any other exception: the goal is 0), and reports the
slowest case's wall time and the largest per-case peak of Python memory (tracemalloc, in a second run of
the case). ``--labs`` runs that many mutated lab files through ``load_inventory`` the same way
(InventoryError is the clean rejection). A case past ``--case-timeout`` or the process's memory cap
(``--memory-limit-gib``) counts as crashed: run against the loader before issue 10, that is how its
billion-laughs cases end.
Prints one JSON object; the table in docs/benchmarks.md comes from it.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import signal
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import support  # noqa: F401  (puts this checkout first on sys.path)

from farm.errors import FarmError, InventoryError, SweepError
from farm.inventory import load_inventory
from farm.sweep import mutants
from farm.sweep.load import load_sweep


class _Runaway(Exception):
    """A case ran past --case-timeout (only a loader without bounds gets here)."""


def _alarm(signum, frame) -> None:
    raise _Runaway()


def _outcome(fn) -> tuple[str, str]:
    try:
        fn()
        return "accepted", ""
    except (SweepError, InventoryError) as exc:
        return "rejected", str(exc)[:160]
    except FarmError as exc:  # a FarmError that is not located: clean, but counted apart
        return "rejected (unlocated)", str(exc)[:160]
    except _Runaway:
        return "crashed", "ran past --case-timeout"
    except Exception as exc:  # counting every other exception is the point (MemoryError included)
        return "crashed", f"{type(exc).__name__}: {str(exc)[:160]}"


def _measure(fn, timeout_s: float) -> tuple[str, float, int, str]:
    """(outcome, seconds, peak bytes, detail) of one case: timed on its own, then run again under
    tracemalloc for the peak (tracing slows allocation-heavy code several times over)."""
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    start = time.perf_counter()
    try:
        outcome, detail = _outcome(fn)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    seconds = time.perf_counter() - start
    if outcome == "crashed" and detail.startswith("ran past"):
        return outcome, seconds, 0, detail  # not run a second time
    tracemalloc.start()
    signal.setitimer(signal.ITIMER_REAL, timeout_s * 10)
    try:
        _outcome(fn)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return outcome, seconds, peak, detail


def _run(cases: int, make, load, timeout_s: float) -> dict:
    counts: Counter[str] = Counter()
    slowest = (0.0, "")
    peak = (0, "")
    crashes: list[str] = []
    for i in range(cases):
        text = make(i)
        outcome, seconds, peak_bytes, detail = _measure(lambda t=text, n=i: load(n, t), timeout_s)
        counts[outcome] += 1
        if seconds > slowest[0]:
            slowest = (seconds, f"case {i}: {outcome}: {detail[:100]}")
        if peak_bytes > peak[0]:
            peak = (peak_bytes, f"case {i}: {outcome}: {detail[:100]}")
        if outcome == "crashed" and len(crashes) < 10:
            crashes.append(f"case {i}: {detail}")
    return {
        "cases": cases,
        **{k: counts[k] for k in ("rejected", "rejected (unlocated)", "accepted", "crashed")},
        "slowest_s": round(slowest[0], 4),
        "slowest_case": slowest[1],
        "peak_mib": round(peak[0] / 2**20, 2),
        "peak_case": peak[1],
        "crash_examples": crashes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="mutated sweep files")
    parser.add_argument("--labs", type=int, default=500, help="mutated lab files")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--case-timeout", type=float, default=30.0, help="seconds before a case is a runaway")
    parser.add_argument("--memory-limit-gib", type=float, default=4.0, help="address space of this process")
    args = parser.parse_args()
    # An unbounded loader (the one issue 10 replaced) can take gigabytes on one case: cap this process, so
    # such a case is a MemoryError counted as a crash, not a machine in swap.
    limit = int(args.memory_limit_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    signal.signal(signal.SIGALRM, _alarm)

    with tempfile.TemporaryDirectory(prefix="farm-fuzz-") as tmp:
        folder = Path(tmp)
        inv_dir = mutants.prepare_workspace(folder)
        inventory = load_inventory(inv_dir, "lab.yaml")
        seeds = mutants.example_sweeps()
        rnd = random.Random(args.seed)

        def sweep_case(i: int) -> bytes:
            return mutants.mutate(rnd.choice(seeds), rnd).encode("utf-8", "surrogatepass")

        def load_sweep_file(i: int, data: bytes) -> None:
            path = folder / f"sweep-{i}.yaml"
            path.write_bytes(data)
            try:
                load_sweep(path, inventory)
            finally:
                path.unlink()

        lab_seeds = list(mutants.SEED_LABS)

        def lab_case(i: int) -> bytes:
            return mutants.mutate(rnd.choice(lab_seeds), rnd).encode("utf-8", "surrogatepass")

        def load_lab(i: int, data: bytes) -> None:
            path = inv_dir / f"lab-{i}.yaml"
            path.write_bytes(data)
            try:
                load_inventory(inv_dir, path.name)
            finally:
                path.unlink()

        started = time.perf_counter()
        sweeps = _run(args.n, sweep_case, load_sweep_file, args.case_timeout)
        labs = _run(args.labs, lab_case, load_lab, args.case_timeout) if args.labs else None
        wall = time.perf_counter() - started
    print(json.dumps({"seed": args.seed, "sweeps": sweeps, "labs": labs, "wall_s": round(wall, 1)}, indent=2))
    if sweeps["crashed"] or (labs and labs["crashed"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
