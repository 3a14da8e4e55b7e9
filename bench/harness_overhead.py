"""Harness overhead per LoadGen scenario: what the farm measures (the board agent's LoadGen test) against a
bare ONNX Runtime loop over the same session, in the same process. Goals: within 2 % on SingleStream,
1 % on Offline; MultiStream and Server are reported (what "overhead" means there: docs/scenarios.md).

Method. One process, one ONNX Runtime session (the agent's ``onnxruntime_cpu`` backend, loaded once), the
same inputs. Every round measures each scenario twice, bare and farm, back to back, and the order flips
every round (bare/farm, farm/bare, ...) so drift falls on both sides equally. Each round gives a paired
overhead per scenario; the headline is the median over rounds of these paired figures (load that comes
and goes between rounds cancels). The per-round range is printed: a wide range means other load on the
machine swamped the comparison.

* SingleStream. bare: ``session.run`` in a tight loop, each call timed; farm: LoadGen SingleStream
  (its own p50/mean). overhead = farm p50 / bare p50 - 1 (and the same for the mean).
* MultiStream. bare: queries of ``--samples-per-query`` back-to-back ``session.run`` calls, each query
  timed whole; farm: LoadGen MultiStream per-query p50/mean. overhead as SingleStream.
* Offline. bare: inferences / elapsed of a tight loop; farm: LoadGen's samples per second.
  overhead = 1 - farm / bare (throughput lost).
* Server. Both sides see Poisson arrivals at the same rate, ``--server-load`` x (1 / the bare mean
  service time, measured at the start). bare: a loop that sleeps until each arrival (or runs at once when
  behind) and times arrival -> completion; farm: one LoadGen Server test at that QPS (issue thread ->
  FIFO -> worker thread). overhead = farm p50 / bare p50 - 1: what LoadGen's scheduling and the queue
  hand-off add to a request's latency at that load.

    .venv/bin/python bench/harness_overhead.py [--model mobilenet_v2|resnet18|path.onnx] [--rounds 10]
        [--duration-ms 1000] [--scenarios SingleStream,MultiStream,Server,Offline] [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import statistics
import sys
import tempfile
import time

import support  # noqa: F401 - before farm and workers: puts the checkout on sys.path

from farm.workers.agent import AGENT_DIR

if AGENT_DIR not in sys.path:
    sys.path.insert(0, AGENT_DIR)

import backends  # noqa: E402  (agent modules, imported by bare name as on a board)
import environment  # noqa: E402
import loadgen_driver  # noqa: E402
import stats  # noqa: E402
from backends.base import resolve_shape  # noqa: E402

SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")
GOALS_PCT = {"SingleStream": 2.0, "Offline": 1.0}  # MultiStream, Server: reported, no goal
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


def build_emulated(device_ms, workdir):
    """A tiny conv net carrying a ``farm.emulation`` profile: an accelerator that takes ``device_ms`` per
    inference in every scenario (the CPU only waits on it, as on an FPGA board)."""
    import onnx
    from onnx import helper

    from farm.zoo.tiny import tiny_model

    model = tiny_model()
    profile = {
        "model_version": "bench",
        "kind": "dpu",
        "device": "bench-device",
        "clock_mhz": 300.0,
        "batch_size": 1,
        "latency_ms": device_ms,
        "clock_scaled_ms": 0.0,
        "fps_mt": 1000.0 / device_ms,
    }
    helper.set_model_props(model, {"farm.emulation": json.dumps(profile)})
    path = os.path.join(workdir, "emulated.onnx")
    onnx.save(model, path)
    return path


# --------------------------------------------------------------------------- bare loops


def runner(backend):
    """The bare runtime call on one batch: ``session.run`` for ONNX Runtime; for the emulated device its
    ``predict`` (the paced wait is the device; there is no lower layer to call)."""
    if backend.name == "emulated":
        return backend.predict
    session, names, input_name = backend.session, backend.output_names, backend.input_name

    def run(batch):
        return session.run(names, {input_name: batch})

    return run


def _warm(backend, batches, warmup):
    run = runner(backend)
    for i in range(warmup):
        run(batches[i % len(batches)])


def bare_stream(backend, batches, duration_ms, warmup, min_count, per_query=1):
    """Queries of ``per_query`` back-to-back ``session.run`` calls, each query timed whole (ns)."""
    _warm(backend, batches, warmup)
    run = runner(backend)
    n = len(batches)
    clock = time.perf_counter_ns
    end = clock() + int(duration_ms * 1e6)
    latencies = []
    i = 0
    while True:
        feeds = [batches[(i + k) % n] for k in range(per_query)]
        t0 = clock()
        for feed in feeds:
            run(feed)
        t1 = clock()
        latencies.append(t1 - t0)
        i += per_query
        if t1 >= end and len(latencies) >= min_count:
            return latencies


def bare_offline(backend, batches, duration_ms, warmup, min_count):
    """Inferences per second of a tight loop."""
    _warm(backend, batches, warmup)
    run = runner(backend)
    n = len(batches)
    clock = time.perf_counter_ns
    t_start = clock()
    end = t_start + int(duration_ms * 1e6)
    i = 0
    while True:
        run(batches[i % n])
        i += 1
        t1 = clock()
        if t1 >= end and i >= min_count:
            return i / ((t1 - t_start) / 1e9)


def bare_server(backend, batches, duration_ms, warmup, min_count, qps, seed):
    """Poisson arrivals at ``qps``: sleep until each arrival (run at once when behind), time arrival ->
    completion (ns): the latency a minimal hand-written server loop would report."""
    _warm(backend, batches, warmup)
    run = runner(backend)
    n = len(batches)
    rng = random.Random(seed)
    clock = time.perf_counter_ns
    count = max(min_count, int(qps * duration_ms / 1000.0))
    t = clock() + 1_000_000
    latencies = []
    for i in range(count):
        t += int(rng.expovariate(qps) * 1e9)
        wait = t - clock()
        if wait > 200_000:
            time.sleep((wait - 200_000) / 1e9)
        while clock() < t:
            pass
        run(batches[i % n])
        latencies.append(clock() - t)
    return latencies


# --------------------------------------------------------------------------- farm side


def farm_test(backend, scenario, duration_ms, warmup, min_count, log_dir, **extra):
    cfg = {"min_duration_ms": int(duration_ms), "min_query_count": min_count}
    cfg.update(extra)
    return loadgen_driver.run_test(
        backend,
        scenario,
        batch_size=1,
        log_dir=log_dir,
        loadgen_cfg=cfg,
        sample_count=SAMPLE_COUNT,
        seed=SEED,
        warmup_queries=warmup,
    )


def pct(farm, bare):
    return (farm - bare) / bare * 100.0


def measure(scenario, side, backend, batches, args, qps, log_dir, round_no):
    """One side of one scenario in one round: a dict of figures."""
    dur, warm, mc, spq = args.duration_ms, args.warmup, args.min_count, args.samples_per_query
    if backend.name == "emulated":
        backend.scenario = scenario  # Offline paces to fps_mt, set equal to 1 / latency here
        backend.prepare(batches)
    if scenario == "MultiStream":
        dur = dur * 2  # fewer, longer queries
    elif scenario == "Server":
        dur = dur * 3  # few arrivals per second at a light load
    if side == "bare":
        if scenario == "Offline":
            return {"ips": bare_offline(backend, batches, dur, warm, mc)}
        if scenario == "Server":
            lat = bare_server(backend, batches, dur, warm, mc, qps, SEED + round_no)
        else:
            lat = bare_stream(backend, batches, dur, warm, mc, spq if scenario == "MultiStream" else 1)
        s = stats.summarize(lat)
        return {"p50": s["p50"] / 1e6, "mean": s["mean"] / 1e6, "n": len(lat)}
    extra = {}
    if scenario == "MultiStream":
        extra = {"multi_stream_samples_per_query": spq}
    elif scenario == "Server":
        extra = {"server_target_qps": qps, "server_search_probes": 1, "server_target_latency_ms": 60000.0}
    res = farm_test(backend, scenario, dur, warm, mc, log_dir, **extra)
    out = {"valid": res["result_valid"], "n": res["query_count"]}
    if scenario == "Offline":
        out["ips"] = res["throughput_ips"]
    else:
        out["p50"], out["mean"] = res["latency_ms"]["p50"], res["latency_ms"]["mean"]
        sut = res.get("sut_latency_ms") or {}
        if sut.get("mean") is not None:
            out["lg_minus_sut_us"] = (res["latency_ms"]["mean"] - sut["mean"]) * 1e3
    if scenario == "Server":
        out["completed_qps"] = res["server_search"]["probes"][0]["completed_qps"]
    return out


def paired(scenario, bare, farm):
    if scenario == "Offline":
        return {"d_pct": (1.0 - farm["ips"] / bare["ips"]) * 100.0}
    return {"d_pct": pct(farm["p50"], bare["p50"]), "d_mean_pct": pct(farm["mean"], bare["mean"])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mobilenet_v2", help="zoo model name or path to an .onnx file")
    parser.add_argument(
        "--emulated-ms",
        type=float,
        default=None,
        help="instead of ONNX Runtime: the emulated backend, a device taking this many ms per inference",
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--duration-ms", type=int, default=1000, help="per side per round (MultiStream x2, Server x3)"
    )
    parser.add_argument("--threads", type=int, default=None, help="ORT intra-op threads (default: ORT's)")
    parser.add_argument("--warmup", type=int, default=5, help="warmup inferences per side per round")
    parser.add_argument("--min-count", type=int, default=16, help="minimum timed queries per side per round")
    parser.add_argument("--samples-per-query", type=int, default=8, help="MultiStream samples per query")
    parser.add_argument("--server-load", type=float, default=0.3, help="Server offered load (0..1)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)}")

    env = environment.collect()
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    print("harness overhead per scenario: farm (LoadGen) vs bare ONNX Runtime loop, same session")
    print(
        f"date {now} | host {env['hostname']} | cpu {env['cpu_model']} | {env['cpu_count']} cores"
        f" | load {os.getloadavg()[0]:.2f} | python {env['python']} | loadgen {env['loadgen_version']}"
    )
    with tempfile.TemporaryDirectory(prefix="farm-harness-overhead-") as workdir:
        if args.emulated_ms:
            backend = backends.create("emulated")
            backend.configure({"scenario": "SingleStream", "batch_size": 1, "emulation": None})
            backend.load(build_emulated(args.emulated_ms, workdir), 1)
            args.model = f"emulated device, {args.emulated_ms:g} ms per inference"
        else:
            backend = backends.create("onnxruntime_cpu")
            backend.load(build_model(args.model, workdir), args.threads)
        versions = backend.versions()
        shape = resolve_shape(backend.input_shape, 1)
        batches = loadgen_driver.make_batches(shape, backend.input_dtype, SAMPLE_COUNT, SEED)
        service_ms = stats.summarize(bare_stream(backend, batches, 1000, args.warmup, 16))["mean"] / 1e6
        qps = args.server_load * 1000.0 / service_ms
        print(
            f"model {args.model} | onnxruntime {versions['runtime_version']} | threads {args.threads or 'default'}"
            f" | {args.rounds} rounds x {args.duration_ms} ms per side | bare mean {service_ms:.3f} ms"
            f" | Server at {qps:.2f} QPS (offered load {args.server_load}) | MultiStream {args.samples_per_query}"
            " samples/query"
        )
        print("figures: latency p50 ms (Offline: inferences/s); d = paired overhead %")
        rows = {sc: [] for sc in scenarios}
        for r in range(args.rounds):
            order = ("bare", "farm") if r % 2 == 0 else ("farm", "bare")
            line = [f"round {r + 1:>2} {order[0]:>4} first"]
            for sc in scenarios:
                got = {}
                for side in order:
                    log_dir = os.path.join(workdir, f"{sc}-r{r + 1}")
                    got[side] = measure(sc, side, backend, batches, args, qps, log_dir, r)
                row = {"round": r + 1, "first": order[0], "bare": got["bare"], "farm": got["farm"]}
                row.update(paired(sc, got["bare"], got["farm"]))
                rows[sc].append(row)
                key = "ips" if sc == "Offline" else "p50"
                line.append(f"{sc} {got['bare'][key]:.3f}/{got['farm'][key]:.3f} d {row['d_pct']:+.2f}%")
            print(" | ".join(line), flush=True)
        backend.close()

    print()
    summary = {}
    for sc in scenarios:
        d = [row["d_pct"] for row in rows[sc]]
        entry = {
            "overhead_pct": statistics.median(d),
            "range_pct": [min(d), max(d)],
            "goal_pct": GOALS_PCT.get(sc),
        }
        if sc != "Offline":
            entry["overhead_pct_mean"] = statistics.median(row["d_mean_pct"] for row in rows[sc])
            lg_sut = [row["farm"]["lg_minus_sut_us"] for row in rows[sc] if "lg_minus_sut_us" in row["farm"]]
            entry["loadgen_minus_sut_us"] = statistics.median(lg_sut) if lg_sut else None
            entry["bare_p50_ms"] = statistics.median(row["bare"]["p50"] for row in rows[sc])
            entry["farm_p50_ms"] = statistics.median(row["farm"]["p50"] for row in rows[sc])
        else:
            entry["bare_ips"] = statistics.median(row["bare"]["ips"] for row in rows[sc])
            entry["farm_ips"] = statistics.median(row["farm"]["ips"] for row in rows[sc])
        if sc == "Server":
            entry["qps"] = qps
            entry["completed_qps"] = statistics.median(row["farm"]["completed_qps"] for row in rows[sc])
        goal = GOALS_PCT.get(sc)
        entry["verdict"] = (
            "reported" if goal is None else ("PASS" if abs(entry["overhead_pct"]) <= goal else "FAIL")
        )
        summary[sc] = entry
        extra = ""
        if entry.get("overhead_pct_mean") is not None:
            extra += f" mean {entry['overhead_pct_mean']:+.2f} %"
        if entry.get("loadgen_minus_sut_us") is not None:
            extra += f" | LoadGen - SUT callback {entry['loadgen_minus_sut_us']:.1f} us"
        print(
            f"{sc:>12}: overhead {entry['overhead_pct']:+.2f} % (median of {len(d)} paired rounds;"
            f" range {min(d):+.2f} .. {max(d):+.2f}){extra} | goal"
            f" {f'<= {goal:.1f} %' if goal is not None else 'none'} {entry['verdict']}"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "model": args.model,
                    "args": vars(args),
                    "environment": env,
                    "runtime": versions,
                    "service_ms": service_ms,
                    "rows": rows,
                    "summary": summary,
                },
                fh,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
