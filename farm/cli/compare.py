"""`farm compare --model M`: FPGA vs GPU vs CPU on one consistent selection, each figure with its interval,
each FPGA ratio with an interval and a verdict, flags and the source on every row (docs/compare.md)."""

from __future__ import annotations

import csv
import io
import json
import sys
from typing import Any

import click

from farm.cli.common import EXIT_BAD_INPUT, db_option, handle_errors, settings_for

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
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True
)
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
        click.echo(render_table(doc))


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


def _grid(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]


def _valid(v: bool | None) -> str:
    return {True: "yes", False: "INVALID", None: "?"}[v]


def render_table(doc: dict[str, Any]) -> str:
    """The comparison for a terminal: the selection, targets, ratios with verdicts and warnings, winners."""
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
    header = [
        "target",
        "family",
        "prec",
        "source",
        "sweep",
        "runs",
        "valid",
        *SHOWN.values(),
        "accuracy",
        "flags",
    ]
    rows = []
    for t in doc["targets"]:
        acc = t["accuracy"]
        acc_text = f"{acc['value']:.3f} {acc['label']}" if acc["value"] is not None else acc["label"]
        rows.append(
            [
                t["target"],
                t["family"],
                t["precision"],
                t["source"],
                t["sweep_id"][:8],
                str(t["runs"]),
                _valid(t["valid"]),
                *(_cell(t["metrics"].get(m)) for m in SHOWN),
                acc_text,
                "; ".join(t["flags"]) or "-",
            ]  # fmt: skip
        )
    lines += [
        "",
        "targets (median [95% interval]; source measured / emulated on every row):",
        *_grid(header, rows),
    ]
    if doc["ratios"]:
        lines += ["", "FPGA over baseline (above 1: the FPGA is better):"]
        header = ["fpga", "baseline", "ratio", "value [95% interval]", "verdict"]
        rrows = []
        for r in doc["ratios"]:
            cell = _cell({"median": r["ratio"], "low": r["low"], "high": r["high"]})
            rrows.append([r["fpga_label"], r["baseline_label"], r["metric"], cell + "x", r["verdict"]])
        grid = _grid(header, rrows)
        lines.append(grid[0])
        pairs: dict[tuple[str, str], list[int]] = {}
        for i, r in enumerate(doc["ratios"]):
            pairs.setdefault((r["fpga_label"], r["baseline_label"]), []).append(i)
        for members in pairs.values():  # what holds for the whole pair is said once, after its rows
            common = [w for w in doc["ratios"][members[0]]["warnings"]
                      if all(w in doc["ratios"][i]["warnings"] for i in members)]  # fmt: skip
            for i in members:
                lines.append(grid[i + 1])
                lines += [f"    ! {w}" for w in doc["ratios"][i]["warnings"] if w not in common]
            lines += [f"  ! {w}" for w in common]
    else:
        lines += ["", "no ratios: they need an FPGA target and a CPU or GPU baseline in this selection"]
    if doc["winners"]:
        lines += ["", "which wins:"]
        for w in doc["winners"]:
            margin = "" if w["margin"] is None else f" by {w['margin']:.2f}x over {w['runner_up']}"
            lines.append(
                f"  {w['label']:<22} {w['winner']} ({_num(w['value'])} {w['unit']}){margin}: {w['verdict']}"
            )
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
