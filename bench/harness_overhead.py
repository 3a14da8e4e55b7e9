"""Harness overhead: latency measured by the farm for resnet18 fp32 SingleStream on the CPU vs a bare
ONNX Runtime loop over the same session, in the same run: goal within 2%.

Method. One process, one ONNX Runtime session (the board agent's ``onnxruntime_cpu`` backend, loaded
once). Rounds alternate the two measurements, and the order flips every round (bare/farm, farm/bare,
...) so that thermal or frequency drift falls on both sides equally:

* bare: ``session.run`` in a tight loop for ``--duration-ms``, each call timed with
  ``time.perf_counter_ns``;
* farm: the agent's LoadGen SingleStream test (``loadgen_driver.run_test``) on the same backend object
  and the same inputs, for ``--duration-ms``; the figures are LoadGen's own (its detail log).

Both sides do the same warmup before every round. Each round gives a paired overhead
(farm - bare) / bare for p50 and for mean; the headline overhead is the median over rounds of these
paired figures (load that comes and goes between rounds cancels), PASS when |p50 overhead| <= goal.
Also printed: the median over rounds of each side's p50 and mean, the overhead computed from those
overall medians, the range of the per-round overheads (a wide range means other load on the machine
swamped the comparison: rerun on a quiet machine), and "lg-sut", LoadGen's mean latency minus the mean
time spent inside the SUT callback for the same queries: the harness's own per-query cost, which
other load barely disturbs.

    .venv/bin/python bench/harness_overhead.py [--model resnet18|path.onnx] [--rounds 40]
        [--duration-ms 1000] [--threads N] [--json out.json] [--strict]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AGENT_DIR = os.path.join(REPO, "workers", "agent")
if AGENT_DIR not in sys.path:
    sys.path.insert(0, AGENT_DIR)

import backends  # noqa: E402  (agent modules, imported by bare name as on a board)
import environment  # noqa: E402
import loadgen_driver  # noqa: E402
import stats  # noqa: E402
from backends.base import resolve_shape  # noqa: E402

GOAL_PCT = 2.0
SAMPLE_COUNT = 64
SEED = 0


def build_model(model, workdir):
    """Path of an ONNX file: ``model`` itself if it is a file, else the zoo model of that name (batch 1)."""
    if os.path.isfile(model):
        return os.path.abspath(model)
    import onnx

    from farm.zoo.registry import build_zoo_model

    path = os.path.join(workdir, f"{model}_b1.onnx")
    onnx.save(build_zoo_model(model, batch_size=1), path)
    return path


def bare_round(backend, batches, duration_ms, warmup, min_count):
    """Tight ``session.run`` loop over the backend's own session; per-call latencies in ns."""
    session, names, input_name = backend.session, backend.output_names, backend.input_name
    n = len(batches)
    for i in range(warmup):
        session.run(names, {input_name: batches[i % n]})
    clock = time.perf_counter_ns
    end = clock() + int(duration_ms * 1e6)
    latencies = []
    i = 0
    while True:
        feed = {input_name: batches[i % n]}
        t0 = clock()
        session.run(names, feed)
        t1 = clock()
        latencies.append(t1 - t0)
        i += 1
        if t1 >= end and i >= min_count:
            return latencies


def farm_round(backend, duration_ms, warmup, min_count, log_dir):
    """The agent's LoadGen SingleStream measurement on the same backend."""
    return loadgen_driver.run_test(
        backend,
        "SingleStream",
        batch_size=1,
        log_dir=log_dir,
        loadgen_cfg={"min_duration_ms": int(duration_ms), "min_query_count": min_count},
        sample_count=SAMPLE_COUNT,
        seed=SEED,
        warmup_queries=warmup,
    )


def pct(farm, bare):
    return (farm - bare) / bare * 100.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet18", help="zoo model name or path to an .onnx file")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--duration-ms", type=int, default=1000, help="per side per round")
    parser.add_argument("--threads", type=int, default=None, help="ORT intra-op threads (default: ORT's)")
    parser.add_argument("--warmup", type=int, default=5, help="warmup inferences per side per round")
    parser.add_argument(
        "--min-count", type=int, default=16, help="minimum timed inferences per side per round"
    )
    parser.add_argument("--goal", type=float, default=GOAL_PCT, help="overhead goal in %% (default 2.0)")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the goal is missed")
    args = parser.parse_args(argv)

    env = environment.collect()
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    print("harness overhead: farm (LoadGen SingleStream) vs bare ONNX Runtime loop, same session")
    print(
        f"date {now} | host {env['hostname']} | cpu {env['cpu_model']} | {env['cpu_count']} cores"
        f" | python {env['python']} | numpy {env['numpy']}"
    )
    with tempfile.TemporaryDirectory(prefix="farm-harness-overhead-") as workdir:
        path = build_model(args.model, workdir)
        backend = backends.create("onnxruntime_cpu")
        backend.load(path, args.threads)
        versions = backend.versions()
        print(
            f"model {args.model} | onnxruntime {versions['runtime_version']} {versions['session_providers']}"
            f" | threads {args.threads or 'default'} | loadgen {env['loadgen_version']}"
            f" | {args.rounds} rounds x {args.duration_ms} ms per side"
        )
        shape = resolve_shape(backend.input_shape, 1)
        batches = loadgen_driver.make_batches(shape, backend.input_dtype, SAMPLE_COUNT, SEED)

        rows = []
        header = (
            f"{'round':>5} {'first':>6} | {'bare p50':>10} {'bare mean':>10} {'n':>6} | {'farm p50':>10}"
            f" {'farm mean':>10} {'n':>6} {'valid':>7} | {'d p50 %':>8} {'d mean %':>8} | {'lg-sut us':>9}"
        )
        print()
        print(
            "latencies in ms; farm = LoadGen's own figures (INVALID: fewer queries than LoadGen's early stopping wants)"
        )
        print("lg-sut us = mean LoadGen latency - mean SUT-callback latency of the same queries")
        print(header)
        print("-" * len(header))
        for r in range(args.rounds):
            order = ("bare", "farm") if r % 2 == 0 else ("farm", "bare")
            row = {"round": r + 1, "first": order[0]}
            for side in order:
                if side == "bare":
                    lat = bare_round(backend, batches, args.duration_ms, args.warmup, args.min_count)
                    summary = stats.summarize(lat)
                    row["bare_p50"], row["bare_mean"] = summary["p50"] / 1e6, summary["mean"] / 1e6
                    row["bare_n"] = len(lat)
                else:
                    log_dir = os.path.join(workdir, f"loadgen_round{r + 1}")
                    res = farm_round(backend, args.duration_ms, args.warmup, args.min_count, log_dir)
                    row["farm_p50"], row["farm_mean"] = res["latency_ms"]["p50"], res["latency_ms"]["mean"]
                    row["farm_sut_p50"] = res["sut_latency_ms"]["p50"]
                    # LoadGen's window minus the SUT callback's window, same queries: the harness's
                    # own per-query cost, free of the run-to-run noise of the bare/farm comparison.
                    row["lg_minus_sut_us"] = (res["latency_ms"]["mean"] - res["sut_latency_ms"]["mean"]) * 1e3
                    row["farm_n"], row["farm_valid"] = res["query_count"], res["result_valid"]
            row["d_p50_pct"] = pct(row["farm_p50"], row["bare_p50"])
            row["d_mean_pct"] = pct(row["farm_mean"], row["bare_mean"])
            rows.append(row)
            valid = "VALID" if row["farm_valid"] else "INVALID"
            print(
                f"{row['round']:>5} {row['first']:>6} | {row['bare_p50']:>10.3f} {row['bare_mean']:>10.3f}"
                f" {row['bare_n']:>6} | {row['farm_p50']:>10.3f} {row['farm_mean']:>10.3f} {row['farm_n']:>6}"
                f" {valid:>7} | {row['d_p50_pct']:>+8.2f} {row['d_mean_pct']:>+8.2f} | {row['lg_minus_sut_us']:>9.1f}",
                flush=True,
            )
        backend.close()

    keys = ("bare_p50", "bare_mean", "farm_p50", "farm_mean")
    med = {k: statistics.median(row[k] for row in rows) for k in keys}
    # Headline: the median of the per-round paired overheads. Each round compares two back-to-back
    # measurements, so load that comes and goes between rounds cancels; the ratio of the overall
    # medians (also printed) does not, when some rounds are slowed and others are not.
    d_p50 = [r["d_p50_pct"] for r in rows]
    d_mean = [r["d_mean_pct"] for r in rows]
    over_p50, over_mean = statistics.median(d_p50), statistics.median(d_mean)
    print("-" * len(header))
    print(
        f"{'median':>12} | {med['bare_p50']:>10.3f} {med['bare_mean']:>10.3f} {'':>6} | {med['farm_p50']:>10.3f}"
        f" {med['farm_mean']:>10.3f} {'':>6} {'':>7} | {over_p50:>+8.2f} {over_mean:>+8.2f}"
    )
    print(
        f"ratio of overall medians: p50 {pct(med['farm_p50'], med['bare_p50']):+.2f} %,"
        f" mean {pct(med['farm_mean'], med['bare_mean']):+.2f} %"
    )
    print(
        f"per-round overhead range: p50 {min(d_p50):+.2f} .. {max(d_p50):+.2f} %,"
        f" mean {min(d_mean):+.2f} .. {max(d_mean):+.2f} %"
    )
    lg_sut = statistics.median(r["lg_minus_sut_us"] for r in rows)
    print(
        f"LoadGen + SUT callback cost per query (median over rounds): {lg_sut:.1f} us"
        f" = {lg_sut / 1e3 / med['bare_mean'] * 100:.3f} % of the bare mean"
    )
    passed = abs(over_p50) <= args.goal
    mean_verdict = "PASS" if abs(over_mean) <= args.goal else "FAIL"
    print(f"harness_overhead_pct_mean={over_mean:+.2f} goal<={args.goal:.1f} {mean_verdict}")
    print(f"harness_overhead_pct_p50={over_p50:+.2f} goal<={args.goal:.1f} {'PASS' if passed else 'FAIL'}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "model": args.model,
                    "threads": args.threads,
                    "rounds_requested": args.rounds,
                    "duration_ms": args.duration_ms,
                    "environment": env,
                    "runtime": versions,
                    "rounds": rows,
                    "median": med,
                    "overhead_pct_p50": over_p50,
                    "overhead_pct_mean": over_mean,
                    "ratio_of_medians_pct_p50": pct(med["farm_p50"], med["bare_p50"]),
                    "ratio_of_medians_pct_mean": pct(med["farm_mean"], med["bare_mean"]),
                    "loadgen_minus_sut_us": lg_sut,
                    "goal_pct": args.goal,
                    "pass": passed,
                },
                fh,
                indent=2,
            )
    return 0 if passed or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
