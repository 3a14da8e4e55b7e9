"""`farm compare --model M`: FPGA vs GPU vs CPU on one consistent selection, each figure with its interval,
each FPGA ratio with an interval and a verdict, flags and the source on every row (docs/compare.md)."""

from __future__ import annotations

import csv
import io
import json
import sys
from typing import Any

import click

from farm.cli.common import EXIT_BAD_INPUT, db_option, format_option, handle_errors, settings_for, wide_option
from farm.cli.render import Column, layout, short_flags

#: Columns of the per-target table: metric -> header (the catalog's short names).
SHOWN = {
    "latency_ms_p50": "p50 ms",
    "latency_ms_p99": "p99 ms",
    "throughput_ips": "inf/s",
    "power_w": "W",
    "inferences_per_joule": "inf/J",
    "energy_mj_per_inference": "mJ/inf",
    "latency_jitter_ms": "jitter ms",
}


@click.command("compare")
@click.option("--model", required=True, help="The model, as the runs store it (resnet18).")
@click.option(
    "--precision",
    "precisions",
    multiple=True,
    help="Compare at these precisions (repeatable). Default: each target at its best available one.",
)
@click.option(
    "--scenario", default=None, help="LoadGen scenario (default: SingleStream, else the first run)."
)
@click.option("--batch", "batch_size", type=int, default=None, help="Compiled batch size (default: 1).")
@click.option("--sweep", "sweep_id", default=None, help="Pin one sweep (id or unique prefix).")
@click.option("--measured-only", is_flag=True, help="Leave emulated results out.")
@click.option(
    "--include-time-scaled",
    is_flag=True,
    help="Also compare runs from a lab at --time-scale < 1 (flagged time-scaled: left out by default).",
)
@format_option("table", "json", "csv", more="csv: long form, one line per target and metric, then ratios.")
@wide_option
@db_option
@handle_errors
def compare(
    model: str,
    precisions: tuple[str, ...],
    scenario: str | None,
    batch_size: int | None,
    sweep_id: str | None,
    measured_only: bool,
    include_time_scaled: bool,
    fmt: str,
    wide: bool,
    db_url: str | None,
) -> None:
    """Compare every board type that ran a model: medians with 95 % intervals over repeats, FPGA speedup,
    perf/W and energy ratios over each CPU and GPU baseline with a verdict (faster / slower / not
    distinguishable).

    Example: farm compare --model resnet18 --scenario SingleStream
    """
    from farm.db.session import session_scope
    from farm.queries.compare import CompareError, compare_targets

    settings = settings_for(db_url)
    try:
        with session_scope(settings.db_url) as s:
            result = compare_targets(
                s,
                model,
                precisions=tuple(dict.fromkeys(precisions)),
                scenario=scenario,
                batch_size=batch_size,
                sweep_id=sweep_id,
                include_emulated=not measured_only,
                include_time_scaled=include_time_scaled,
            )
    except CompareError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(EXIT_BAD_INPUT)
    doc = result.to_json()
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2, default=str))
    elif fmt == "csv":
        click.echo(render_csv(doc), nl=False)
    else:
        click.echo(render_table(doc, wide=wide))


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    a = abs(v)
    return f"{v:,.0f}" if a >= 1000 else f"{v:.1f}" if a >= 100 else f"{v:.2f}" if a >= 1 else f"{v:.3g}"


def _cell(iv: dict[str, Any] | None) -> str:
    if not iv or iv["median"] is None:
        return "-"
    if iv["low"] is None:
        return _num(iv["median"])
    return f"{_num(iv['median'])} [{_num(iv['low'])}, {_num(iv['high'])}]"


def _valid(v: bool | None) -> str:
    return {True: "yes", False: "INVALID", None: "?"}[v]


def _accuracy(acc: dict[str, Any]) -> str:
    return f"{acc['value']:.3f} {acc['label']}" if acc["value"] is not None else acc["label"]


def target_columns(mixed: bool) -> list[Column]:
    """The per-target table. When it is wider than 120 columns the sweep goes first (unless the selection
    is mixed: then it is what the reader must see), then the figures a reader needs least."""
    return [
        Column("target", "target"),
        Column("family", "family", drop=5),
        Column("precision", "prec"),
        Column("source", "source"),
        Column("sweep_id", "sweep", fmt=lambda v: v[:8], drop=0 if mixed else 9),
        Column("runs", "runs"),
        Column("valid", "valid", fmt=_valid),
        *(
            Column(f"m:{m}", header, fmt=_cell, align="right", drop=DROP.get(m, 0))
            for m, header in SHOWN.items()
        ),
        Column("accuracy", "accuracy", fmt=_accuracy, drop=7),
        Column("flags", "flags", fmt=short_flags),
    ]


#: Left out first when the target table is too wide (higher first): the reciprocal, then the rest.
DROP = {"latency_jitter_ms": 8, "energy_mj_per_inference": 6, "inferences_per_joule": 4, "latency_ms_p99": 3,
        "power_w": 2}  # fmt: skip

RATIO_COLUMNS = [
    Column("fpga_label", "fpga"),
    Column("baseline_label", "baseline"),
    Column("metric", "ratio"),
    Column("value", "value [95% interval]", align="right"),
    Column("verdict", "verdict"),
]

WINNER_COLUMNS = [
    Column("label", "metric"),
    Column("winner", "winner"),
    Column("shown", "value", align="right"),
    Column("runner_up", "runner-up"),
    Column("margin", "by", fmt=lambda v: "-" if v is None else f"{v:.2f}x", align="right"),
    Column("verdict", "verdict"),
]


def render_table(doc: dict[str, Any], wide: bool = False) -> str:
    """The comparison for a terminal: the selection, targets, ratios with verdicts and warnings, winners,
    in the tables every command uses (farm/cli/render.py); each flag whole below the targets."""
    sel = doc["selection"]
    sweeps = ", ".join(f"{w['name']} ({w['sweep_id'][:8]})" for w in sel["sweeps"])
    lines = [
        f"{sel['model']} {sel['scenario']} batch {sel['batch_size']}: {sel['precision_rule']}; "
        f"{sel['sweep_rule']}: {sweeps}",
        f"intervals: {sel['interval']['level']:.0%} bootstrap ({sel['interval']['draws']} draws, seed "
        f"{sel['interval']['seed']}) over repeats, or over one run's latency samples",
    ]
    if sel["mixed"]:
        lines.insert(0, "MIXED SELECTION: the targets come from different sweeps (see the sweep column)")
    if sel.get("excluded_time_scaled_runs"):
        lines.append(
            f"left out: {sel['excluded_time_scaled_runs']} runs from a time-scaled lab (flagged time-scaled; "
            "--include-time-scaled shows them)"
        )
    rows = [{**t, **{f"m:{m}": iv for m, iv in t["metrics"].items()}} for t in doc["targets"]]
    lines += [
        "",
        "targets (median [95% interval]; source measured / emulated on every row):",
        *layout(rows, target_columns(sel["mixed"]), wide=wide).lines(),
    ]
    for t in doc["targets"]:  # each flag whole: the table shows its name only
        lines += [f"  ! {t['target']} {t['precision']}: {f}" for f in t["flags"]]
    if doc["ratios"]:
        lines += ["", "FPGA over baseline (above 1: the FPGA is better):"]
        rrows = [
            {**r, "value": _cell({"median": r["ratio"], "low": r["low"], "high": r["high"]}) + "x"}
            for r in doc["ratios"]
        ]
        grid = layout(rrows, RATIO_COLUMNS, wide=wide)
        lines.append(grid.header)
        pairs: dict[tuple[str, str], list[int]] = {}
        for i, r in enumerate(doc["ratios"]):
            pairs.setdefault((r["fpga_label"], r["baseline_label"]), []).append(i)
        for members in pairs.values():  # what holds for the whole pair is said once, after its rows
            common = [w for w in doc["ratios"][members[0]]["warnings"]
                      if all(w in doc["ratios"][i]["warnings"] for i in members)]  # fmt: skip
            for i in members:
                lines += grid.rows[i]
                lines += [f"    ! {w}" for w in doc["ratios"][i]["warnings"] if w not in common]
            lines += [f"  ! {w}" for w in common]
        lines += [grid.note] if grid.note else []
    else:
        lines += ["", "no ratios: they need an FPGA target and a CPU or GPU baseline in this selection"]
    if doc["winners"]:
        wrows = [{**w, "shown": f"{_num(w['value'])} {w['unit']}"} for w in doc["winners"]]
        lines += ["", "which wins:", *layout(wrows, WINNER_COLUMNS, wide=wide).lines()]
    return "\n".join(lines)


CSV_FIELDS = ["kind", "target", "precision", "source", "sweep_id", "baseline", "metric", "value", "low", "high",
              "verdict", "valid", "flags", "warnings"]  # fmt: skip


def render_csv(doc: dict[str, Any]) -> str:
    """Long form: one line per target and metric, then one per ratio; the selection in the first line."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    w.writeheader()
    sel = doc["selection"]
    w.writerow({"kind": "selection", "metric": "mixed" if sel["mixed"] else "one sweep",
                "sweep_id": " ".join(x["sweep_id"] for x in sel["sweeps"])})  # fmt: skip
    for t in doc["targets"]:
        for name, iv in t["metrics"].items():
            w.writerow({"kind": "target", "target": t["target"], "precision": t["precision"],
                        "source": t["source"], "sweep_id": t["sweep_id"], "metric": name, "value": iv["median"],
                        "low": iv["low"], "high": iv["high"], "valid": t["valid"], "flags": "; ".join(t["flags"])})  # fmt: skip
        acc = t["accuracy"]
        if acc["metric"]:
            w.writerow({"kind": "accuracy", "target": t["target"], "precision": t["precision"],
                        "source": t["source"], "sweep_id": t["sweep_id"], "metric": acc["metric"],
                        "value": acc["value"]})  # fmt: skip
    for r in doc["ratios"]:
        w.writerow({"kind": "ratio", "target": r["fpga_label"], "baseline": r["baseline_label"],
                    "metric": r["metric"], "value": r["ratio"], "low": r["low"], "high": r["high"],
                    "verdict": r["verdict"], "warnings": "; ".join(r["warnings"])})  # fmt: skip
    return buf.getvalue()
