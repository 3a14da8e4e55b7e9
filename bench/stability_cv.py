"""Run-to-run spread of the CPU baseline: the coefficient of variation of SingleStream p90 latency over N
repeats, measured through the farm as a user runs it (an embedded farm in a temporary folder, the real
agent and LoadGen on this machine's CPU).

    .venv/bin/python bench/stability_cv.py [--model mobilenet_v2|resnet18|path.onnx] [--repeats 5]
        [--duration-ms 2000] [--stability] [--json out.json]

Prints each repeat's p50/p90/p99 and its host noise verdict, then the CV (sample standard deviation / mean)
of p90, p50 and throughput. With --stability the sweep uses `stability: {cv_threshold_pct: 3.5,
min_repeats: 3, max_repeats: N}` instead of a fixed count and the output says how many repeats it took.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
from pathlib import Path

import support  # noqa: F401 - before farm: puts the checkout on sys.path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--duration-ms", type=int, default=2000)
    parser.add_argument("--stability", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="farm-stability-cv-") as tmp:
        os.environ["FARM_DATA_DIR"] = tmp
        os.environ.pop("FARM_DB_URL", None)
        os.environ.pop("FARM_BROKER_URL", None)
        os.environ.pop("FARM_LAB", None)
        from farm.celery_app import app, configure
        from farm.config import load_settings
        from farm.db.migrate import ensure_schema
        from farm.db.session import session_scope
        from farm.queries.runs import results
        from farm.services.stability import cv_pct
        from farm.services.submit import submit_sweep, wait_for

        configure(app)
        settings = load_settings()
        ensure_schema(settings.db_url)
        model = (
            f"  - name: user\n    onnx: {Path(args.model).resolve()}\n"
            if os.path.isfile(args.model)
            else f"  - {args.model}\n"
        )
        repeat_line = (
            f"stability: {{cv_threshold_pct: 3.5, min_repeats: 3, max_repeats: {args.repeats}}}"
            if args.stability
            else f"repeats: {args.repeats}"
        )
        sweep = Path(tmp) / "sweep.yaml"
        sweep.write_text(
            f"name: stability-cv\nmodels:\n{model}precisions: [fp32]\ntargets: [cpu]\n"
            f"scenarios: [SingleStream]\n{repeat_line}\n"
            f"loadgen:\n  min_duration_ms: {args.duration_ms}\n  min_query_count: 64\n"
        )
        sub = submit_sweep(settings, sweep)
        summary = wait_for(settings, sub, lambda _: None)
        if summary["state"] != "done":
            raise SystemExit(f"sweep failed: {summary['failed']}")
        with session_scope(settings.db_url) as s:
            rows = results(s, sub.sweep_id)
        p90 = [r["latency_ms_p90"] for r in rows]
        p50 = [r["latency_ms_p50"] for r in rows]
        ips = [r["throughput_ips"] for r in rows]
        for r in rows:
            print(
                f"repeat {r['repeat']}: p50 {r['latency_ms_p50']:.3f} ms  p90 {r['latency_ms_p90']:.3f} ms  "
                f"p99 {r['latency_ms_p99']:.3f} ms  {r['throughput_ips']:.1f} inf/s  noise {r['noise_verdict']}"
            )
        out = {
            "model": args.model,
            "repeats": len(rows),
            "duration_ms": args.duration_ms,
            "mode": "stability" if args.stability else "fixed",
            "cv_p90_pct": round(cv_pct(p90), 3),
            "cv_p50_pct": round(cv_pct(p50), 3),
            "cv_throughput_pct": round(cv_pct(ips), 3),
            "p90_ms": [round(v, 4) for v in p90],
            "p90_median_ms": round(statistics.median(p90), 4),
            "noise_verdicts": [r["noise_verdict"] for r in rows],
            "flags": sorted({f for r in rows for f in r["flags"]}),
            "cpu": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "load_1m_before": os.getloadavg()[0],
        }
        print(
            f"CV over {len(rows)} repeats: p90 {out['cv_p90_pct']:.2f} %, p50 {out['cv_p50_pct']:.2f} %, "
            f"throughput {out['cv_throughput_pct']:.2f} %"
        )
        for flag in out["flags"]:
            print(f"flag: {flag}")
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
