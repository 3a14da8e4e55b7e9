"""Time to plan + predict resnet50 for zcu104 (graph analysis with shape inference, partitioning, the
per-layer model): goal under 1 s. The model is built once outside the timing (building the zoo's random
weights is the zoo's cost, not the planner's); each repeat analyses, plans and predicts from scratch.

    .venv/bin/python bench/dpu_plan_cost.py [--model resnet50] [--board zcu104] [--repeats 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

from farm.perfmodel.api import predict
from farm.perfmodel.target import dpu_target
from farm.zoo.registry import build_zoo_model

GOAL_S = 1.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--board", default="zcu104")
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()

    t0 = time.perf_counter()
    model = build_zoo_model(args.model, 1)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    target = dpu_target(args.board)
    target_s = time.perf_counter() - t0
    predict(model, target)  # warm-up (imports)
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        plan, pred = predict(model, target)
        times.append(time.perf_counter() - t0)
    med, worst = statistics.median(times), max(times)
    print(
        f"model {args.model} ({len(plan.layers)} layers, {plan.subgraphs} subgraph) on {args.board} ({target.arch})"
    )
    print(
        f"  zoo build (not timed below) {build_s * 1e3:.0f} ms; catalog load (first) {target_s * 1e3:.0f} ms"
    )
    print(
        f"  plan + predict over {args.repeats} repeats: median {med * 1e3:.1f} ms, min {min(times) * 1e3:.1f} ms, max {worst * 1e3:.1f} ms"
    )
    print(
        f"  prediction: latency {pred.latency_ms:.2f} ms, fps_st {pred.fps_st:.1f}, fps_mt {pred.fps_mt:.1f}"
    )
    ok = med < GOAL_S
    print(f"goal median < {GOAL_S:.0f} s:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
