"""DPU performance model vs the published Vitis AI Model Zoo figures: every row, measured vs predicted
latency_ms / fps_st / fps_mt with % error, then the median absolute error per metric and per board.
Goals: median |error| of fps_st < 15 %, of fps_mt < 20 %.

Also prints predictions for boards the table does not have (pynq-z2, kv260) next to their neighbours,
as a sanity check of how the calibrated parameters carry over.

    .venv/bin/python bench/dpu_calibration.py [--json out.json] [--refit]

``--refit`` re-derives the parameters from the table (Nelder-Mead, about two minutes) and prints them
next to the frozen ones in farm/perfmodel/calibration.py, with the medians they would give.
"""

from __future__ import annotations

import argparse
import json
import statistics

from farm.perfmodel.api import zoo_graph
from farm.perfmodel.calibration import CALIBRATED, METRICS, evaluate, fit, loss, medians
from farm.perfmodel.partition import plan
from farm.perfmodel.perf import predict_plan
from farm.perfmodel.target import dpu_target

GOALS = {"fps_st": 15.0, "fps_mt": 20.0}


def _fmt(v):
    return "-" if v is None else (f"{v:,.2f}" if abs(v) < 1000 else f"{v:,.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", default=None)
    ap.add_argument("--refit", action="store_true")
    args = ap.parse_args()

    results = evaluate()
    print(
        f"{'board':<11} {'dpu':<16} {'model':<13}"
        + "".join(f" | {m:>10} meas {'pred':>9} {'err':>7}" for m in METRICS)
    )
    for r in results:
        line = f"{r.row.board:<11} {r.row.dpu:<16} {r.row.model:<13}"
        for m in METRICS:
            err = r.error_pct(m)
            line += f" | {_fmt(r.measured(m)):>15} {_fmt(r.predicted(m)):>9} {('-' if err is None else f'{err:+.1f}%'):>7}"
        print(line)
    summary = medians(results)
    print("\nmedian |error| %:", summary["overall"])
    for board, meds in summary["per_board"].items():
        print(f"  {board:<11}", meds)
    ok = all(summary["overall"][m] < g for m, g in GOALS.items())
    print(f"goals fps_st < {GOALS['fps_st']}%, fps_mt < {GOALS['fps_mt']}%:", "PASS" if ok else "FAIL")
    print("parameters:", CALIBRATED.as_dict(), f"loss {loss(CALIBRATED):.4f}")

    print("\nboards not in the table (catalog configuration):")
    others = {}
    for model in ("resnet50", "resnet18", "mobilenet_v2", "googlenet"):
        for board in ("pynq-z2", "ultra96-v2", "kv260", "zcu104"):
            t = dpu_target(board)
            p = predict_plan(plan(zoo_graph(model), t.dpu), t)
            others[f"{board}/{model}"] = p.summary() | {"layers": None}
            print(
                f"  {board:<11} {t.arch:<26} {model:<13} latency {p.latency_ms:8.2f} ms  fps_st {p.fps_st:8.1f}  fps_mt {p.fps_mt:8.1f}"
            )
    refit = None
    if args.refit:
        p = fit(CALIBRATED)
        refit = p.as_dict()
        print("\nrefit:", refit, f"loss {loss(p):.4f}", "medians", medians(evaluate(p))["overall"])
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "rows": [r.as_dict() for r in results],
                    "medians": summary,
                    "parameters": CALIBRATED.as_dict(),
                    "others": others,
                    "refit": refit,
                    "median_fps_st": statistics.median(
                        abs(e) for r in results if (e := r.error_pct("fps_st")) is not None
                    ),
                },
                fh,
                indent=1,
                default=str,
            )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
