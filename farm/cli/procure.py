"""`farm procure`: which board type serves a workload cheapest over its lifetime, how many, how sure
(docs/procurement.md); `farm procure sensitivity`: how that answer moves with the assumptions."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from farm.cli.common import EXIT_BAD_INPUT, db_option, format_option, handle_errors, settings_for


def _workload_options(fn: Callable) -> Callable:
    options = [
        click.option("--model", default=None, help="A zoo model name, as the runs store it (mobilenet_v2)."),
        click.option("--precision", "precisions", multiple=True, type=click.Choice(["int8", "fp16", "bf16", "fp32"]),
                     help="Allowed precision (repeatable; default: all)."),
        click.option("--p99-ms", type=float, default=None, help="Server SLA: p99 latency bound (ms), with --qps."),
        click.option("--qps", type=float, default=None, help="Server SLA: queries/s to serve, with --p99-ms."),
        click.option("--offline-ips", type=float, default=None, help="Offline target: images/s to sustain."),
        click.option("--latency-ms", type=float, default=None, help="SingleStream bound: p99 latency (ms)."),
        click.option("--streams", type=int, default=None, help="SingleStream: concurrent streams (default 1)."),
        click.option("--batch", type=int, default=1, show_default=True, help="Compiled batch size of the runs."),
        click.option("--min-top1", type=float, default=None, help="Floor on top-1 accuracy (ratio)."),
        click.option("--min-agreement", type=float, default=None, help="Floor on INT8/FP32 top-1 agreement."),
        click.option("--include-flagged", is_flag=True, help="Use runs flagged noisy-host: / unstable: / time-scaled: too."),
        click.option("--boards", default="all", show_default=True, help="Board types: all, or a comma list."),
        click.option("--costs", "costs_file", type=click.Path(path_type=Path), default=None,
                     help="costs.yaml: prices, power and economics overriding the catalog's."),
        click.option("--electricity", type=float, default=None, help="Electricity $/kWh (default 0.15)."),
        click.option("--pue", type=float, default=None, help="Power usage effectiveness (default 1.0; ~1.4 in a datacenter)."),
        click.option("--lifetime", type=float, default=None, help="Lifetime in years (default 3)."),
        click.option("--discount-rate", type=float, default=None, help="Cost of capital (default 0.05)."),
        click.option("--duty-cycle", type=float, default=None, help="Share of the time the load is served (default 1.0)."),
        click.option("--headroom", type=float, default=None, help="Capacity kept free (default 0.30)."),
        click.option("--spares", default=None, help="Extra boards: a count (2) or a share (10%) (default 0)."),
        click.option("--seed", type=int, default=None, help="Bootstrap seed (default: fixed)."),
        db_option,
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn


def _decide(kw: dict[str, Any], mix: bool = False) -> Any:
    from farm.db.session import session_scope
    from farm.perfmodel.target import load_catalog
    from farm.procure import decide, from_catalog, load_costs, workload
    from farm.procure.uncertainty import SEED

    if not kw["model"]:
        raise click.UsageError("Missing option '--model'.")
    boards = (
        None
        if kw["boards"].strip() in ("", "all")
        else [b.strip() for b in kw["boards"].split(",") if b.strip()]
    )
    w = workload(
        kw["model"], precisions=kw["precisions"] or None, p99_ms=kw["p99_ms"], qps=kw["qps"],
        offline_ips=kw["offline_ips"], latency_ms=kw["latency_ms"], streams=kw["streams"], batch_size=kw["batch"],
        min_top1=kw["min_top1"], min_agreement=kw["min_agreement"], include_flagged=kw["include_flagged"],
        boards=boards,
    )  # fmt: skip
    catalog = load_catalog()
    costs = from_catalog(catalog)
    if kw["costs_file"] is not None:
        costs = load_costs(kw["costs_file"], costs)
    costs = _with_economics(costs, kw)
    settings = settings_for(kw["db_url"])
    with session_scope(settings.db_url) as s:
        return decide(s, w, costs, catalog=catalog, seed=SEED if kw["seed"] is None else kw["seed"], mix=mix)


#: CLI option -> Economics field: an option given overrides the costs file, which overrides the default.
ECONOMICS_OPTIONS = {
    "electricity": "electricity_usd_per_kwh",
    "pue": "pue",
    "lifetime": "lifetime_years",
    "discount_rate": "discount_rate",
    "duty_cycle": "duty_cycle",
    "headroom": "headroom",
}


def _with_economics(costs: Any, kw: dict[str, Any]) -> Any:
    from dataclasses import replace

    from farm.procure.costs import check_economics, parse_spares

    given = {field: kw[opt] for opt, field in ECONOMICS_OPTIONS.items() if kw.get(opt) is not None}
    if kw.get("spares") is not None:
        raw = str(kw["spares"]).strip()
        try:
            count, pct = parse_spares(int(raw) if raw.isdigit() else raw)
        except ValueError:
            raise click.BadParameter(
                f"{raw!r}: a count (2) or a share (10%)", param_hint="--spares"
            ) from None
        given |= {"spares": count, "spares_pct": pct}
    if not given:
        return costs
    costs = replace(costs, economics=replace(costs.economics, **given))
    check_economics(costs.economics)
    return costs


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        click.echo(text)
        return
    try:
        out.write_text(text)
    except OSError as exc:
        raise click.BadParameter(f"cannot write {out}: {exc.strerror or exc}", param_hint="--out") from None
    click.echo(f"wrote {out}", err=True)


@click.group(invoke_without_command=True)
@_workload_options
@format_option("table", "json", "html", more="--out FILE writes it to a file.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write here (html: needed or stdout).",
)
@click.option("--mix", is_flag=True, help="Also the cheapest mix of two board types.")
@click.pass_context
@handle_errors
def procure(ctx: click.Context, fmt: str, out: Path | None, mix: bool, **kw: Any) -> None:
    """Which board type meets a workload cheapest over its lifetime, how many boards, and how sure the farm is.

    Example: farm procure --model mobilenet_v2 --precision int8 --p99-ms 10 --qps 2000
    """
    if ctx.invoked_subcommand is not None:
        return
    decision = _decide(kw, mix=mix)
    if fmt == "json":
        _emit(json.dumps(decision.to_json(), indent=2, default=str), out)
    elif fmt == "html":
        from farm.procure import render_html

        _emit(render_html(decision), out)
    else:
        from farm.procure.report import text_report

        _emit(text_report(decision), out)
    if not decision.candidates:
        click.secho(f"error: {decision.verdict.text}", fg="red", err=True)
        ctx.exit(EXIT_BAD_INPUT)


@procure.command("sensitivity")
@_workload_options
@click.option(
    "--vary",
    type=click.Choice(["electricity", "qps", "lifetime", "headroom"]),
    required=True,
    help="The assumption to vary: electricity $/kWh, the load (qps), the lifetime (years) or the headroom.",
)
@click.option("--values", default=None, help="Comma list of values (default: a range around today's).")
@format_option("table", "json")
@handle_errors
def sensitivity_cmd(vary: str, values: str | None, fmt: str, **kw: Any) -> None:
    """How the ranking changes with electricity $/kWh, the load, the lifetime or the headroom, and the
    break-even points where the cheapest option changes."""
    from farm.procure import sensitivity
    from farm.procure.report import sensitivity_text

    grid = None
    if values:
        try:
            grid = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise click.BadParameter(f"{values!r}: a comma list of numbers", param_hint="--values") from None
    decision = _decide(kw)
    if not decision.candidates:
        click.secho(f"error: {decision.verdict.text}", fg="red", err=True)
        raise SystemExit(EXIT_BAD_INPUT)
    result = sensitivity(decision, vary, grid)
    if fmt == "json":
        click.echo(
            json.dumps({"assumptions": decision.assumptions, **result.to_json()}, indent=2, default=str)
        )
    else:
        click.echo(sensitivity_text(result))
