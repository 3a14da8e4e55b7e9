"""The DPU model on architectures and boards it has never seen: leave-one-architecture-out and
leave-one-board-out over the published Vitis AI Model Zoo table (shared/data/published_dpu_perf_zoo.csv).

For each architecture family (resnet_v1, resnet_v2, vgg, mobilenet_v1, mobilenet_v2, inception_v1) the
parameters are refitted on every other family's rows and the held-out family is predicted; the same per
board. Prints the per-family and per-board median |error| of fps_st and fps_mt, the overall held-out figure,
and the in-sample figure (fit on everything) for contrast; "before" is the shipped parameters.

    PYTHONPATH=. .venv/bin/python bench/dpu_loao.py [--csv PATH] [--iterations 150] [--jobs 2]
                                                    [--json out.json] [--write-params]

``--write-params`` prints the in-sample fit and the held-out table as Python for farm/perfmodel/params.py.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import statistics
import time
from datetime import date

from farm.perfmodel.calibration import evaluate, fit
from farm.perfmodel.params import CALIBRATED, Params
from farm.perfmodel.published import family_of, read_zoo_csv, zoo_csv_path, zoo_published_rows

GOALS = {"fps_st": 15.0, "fps_mt": 20.0}
METRICS = ("fps_st", "fps_mt")
_ROWS = None
_ARGS = None


def _errors(results, metric):
    return [e for r in results if (e := r.error_pct(metric)) is not None]


def _med(errs):
    return round(statistics.median(abs(e) for e in errs), 1) if errs else None


def _fold(job):
    kind, held = job
    key = (lambda r: family_of(r.model)) if kind == "family" else (lambda r: r.board)
    train = [r for r in _ROWS if key(r) != held]
    test = [r for r in _ROWS if key(r) == held]
    p = fit(CALIBRATED, iterations=_ARGS.iterations, rows=train, robust=True)
    return kind, held, p, evaluate(p, test)


def _init(rows, args):
    global _ROWS, _ARGS
    _ROWS, _ARGS = rows, args


def _table(title, groups):
    print(f"\n{title}")
    print(f"  {'':<14} {'fps_st':>8} {'n':>4} {'fps_mt':>8} {'n':>4}")
    out = {}
    for name, results in groups.items():
        st, mt = _errors(results, "fps_st"), _errors(results, "fps_mt")
        out[name] = {"fps_st": _med(st), "fps_mt": _med(mt), "n_st": len(st), "n_mt": len(mt)}
        print(f"  {name:<14} {_fmt(_med(st)):>8} {len(st):>4} {_fmt(_med(mt)):>8} {len(mt):>4}")
    return out


def _fmt(v):
    return "-" if v is None else f"{v:.1f}%"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", default=None)
    ap.add_argument("--iterations", type=int, default=150)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", default=None)
    ap.add_argument("--write-params", action="store_true")
    args = ap.parse_args()
    t0 = time.time()
    path = args.csv or zoo_csv_path()
    if path is None:
        raise SystemExit("published_dpu_perf_zoo.csv not found: pass --csv or set FARM_DPU_ZOO_CSV")
    rows, coverage = zoo_published_rows(read_zoo_csv(path))
    print(
        f"coverage: {coverage['rows_used']} of {coverage['rows_total']} rows ({coverage['rows_unpruned']} "
        f"unpruned) -> {coverage['configurations']} configurations; {len(coverage['architectures'])} "
        f"architectures in {len(coverage['families'])} families; boards {', '.join(coverage['boards'])}"
    )
    print("  left out:", coverage["skipped"])
    doc: dict = {"date": date.today().isoformat(), "machine": platform.node(), "coverage": coverage}

    before = evaluate(CALIBRATED, rows)  # also builds every plan (cached) before the workers fork
    fams = sorted({family_of(r.row.model) for r in before})
    boards = sorted({r.row.board for r in before})
    doc["before_per_family"] = _table(
        "before (shipped parameters) per family",
        {f: [r for r in before if family_of(r.row.model) == f] for f in fams},
    )
    doc["before_per_board"] = _table(
        "before per board", {b: [r for r in before if r.row.board == b] for b in boards}
    )
    doc["before_overall"] = _table("before overall", {"all": before})["all"]

    jobs = [("family", f) for f in fams] + [("board", b) for b in boards] + [("all", None)]
    with multiprocessing.get_context("fork").Pool(args.jobs, _init, (rows, args)) as pool:
        folds = pool.map(_fold, jobs)
    by_family = {held: res for kind, held, _, res in folds if kind == "family"}
    by_board = {held: res for kind, held, _, res in folds if kind == "board"}
    insample_params = next(p for kind, _, p, _ in folds if kind == "all")
    insample = evaluate(insample_params, rows)
    doc["loao_per_family"] = _table("held out: leave-one-architecture-family-out", by_family)
    loao_all = [r for res in by_family.values() for r in res]
    doc["loao_overall"] = _table("held out (families) overall", {"all": loao_all})["all"]
    doc["lobo_per_board"] = _table("held out: leave-one-board-out", by_board)
    lobo_all = [r for res in by_board.values() for r in res]
    doc["lobo_overall"] = _table("held out (boards) overall", {"all": lobo_all})["all"]
    doc["insample_overall"] = _table("in-sample (fit on every row)", {"all": insample})["all"]
    doc["insample_params"] = insample_params.as_dict()
    doc["rows"] = [
        {**r.as_dict(), "family": family_of(r.row.model), "held_out_by": "family"} for r in loao_all
    ]
    ok = all((doc["loao_overall"][m] or 1e9) <= g for m, g in GOALS.items())
    print(
        f"\ngoal on held-out architectures: fps_st <= {GOALS['fps_st']}%, fps_mt <= {GOALS['fps_mt']}%:",
        "MET" if ok else "MISSED",
    )
    print("in-sample parameters:", insample_params.as_dict())
    doc["seconds"] = round(time.time() - t0, 1)
    print(f"{doc['seconds']} s")
    if args.write_params:
        _print_params(insample_params, doc)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=1, default=str)
    return 0


def _print_params(p: Params, doc: dict) -> None:
    r3 = lambda v: float(f"{v:.3g}")  # noqa: E731
    print("\nCALIBRATED = Params(")
    print(f"    conv_eff={ {k: r3(v) for k, v in p.conv_eff.items()} },")
    print(f"    dw_eff={r3(p.dw_eff)},\n    mem_eff={r3(p.mem_eff)},")
    print(f"    mem_eff_ip={ {k: r3(v) for k, v in p.mem_eff_ip.items()} },")
    print(f"    layer_overhead_cycles={round(p.layer_overhead_cycles)}.0,")
    print(
        f"    call_overhead_us={p.call_overhead_us},\n    host_cycles_per_elem={r3(p.host_cycles_per_elem)},\n)"
    )
    print("HELD_OUT_PER_BOARD =", {b: (v["fps_st"], v["fps_mt"]) for b, v in doc["lobo_per_board"].items()})
    print("HELD_OUT_PER_FAMILY =", {f: (v["fps_st"], v["fps_mt"]) for f, v in doc["loao_per_family"].items()})
    print("HELD_OUT_OVERALL =", (doc["loao_overall"]["fps_st"], doc["loao_overall"]["fps_mt"]))


if __name__ == "__main__":
    raise SystemExit(main())
