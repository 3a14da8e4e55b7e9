"""The procurement report: a terminal table, and one self-contained HTML file a person can mail.

Why hand-drawn SVG: a vega-lite page loads its script from a CDN (not self-contained offline) and
matplotlib is not installed; a bar chart with interval whiskers is a few dozen lines of SVG.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from farm.procure.rank import Decision, Sensitivity

COLUMNS = (
    ("rank", "#"),
    ("label", "board (source)"),
    ("capacity", "capacity [90% int.]"),
    ("boards", "boards"),
    ("capex_usd", "capital $"),
    ("energy_usd_per_year", "energy $/yr"),
    ("tco", "TCO $/yr [90% int.]"),
    ("usd_per_million_inferences", "$/M inf"),
    ("inferences_per_joule", "inf/J"),
    ("age", "newest run"),
)


def _n(v: float | None, digits: int = 4) -> str:
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def rows(decision: Decision) -> list[dict[str, str]]:
    out = []
    for c in decision.candidates:
        out.append(
            {
                "rank": str(c.rank),
                "label": c.label,
                "capacity": f"{_n(c.capacity_qps)} [{_n(c.capacity_qps_low)}-{_n(c.capacity_qps_high)}]",
                "boards": f"{c.boards_needed} [{_n(c.boards_needed_low)}-{_n(c.boards_needed_high)}]",
                "capex_usd": _n(c.capex_usd),
                "energy_usd_per_year": _n(c.energy_usd_per_year),
                "tco": f"{_n(c.tco_usd_per_year)} [{_n(c.tco_usd_per_year_low)}-{_n(c.tco_usd_per_year_high)}]",
                "usd_per_million_inferences": _n(c.usd_per_million_inferences, 3),
                "inferences_per_joule": _n(c.inferences_per_joule, 3),
                "age": "predicted" if c.newest_run_age_days is None else f"{c.newest_run_age_days:.1f} d ago",
            }
        )
    return out


def _table(data: list[dict[str, str]], columns: tuple[tuple[str, str], ...]) -> str:
    """The CLI's one table style (farm/cli/render.py: 120 columns, "-", aligned), all columns: a report."""
    from farm.cli.render import table

    return table(data, columns, wide=True)


def text_report(decision: Decision) -> str:
    a = decision.assumptions
    e = a["economics"]
    lines = [
        f"workload: {a['workload']['describe']}",
        f"capacity unit: {decision.candidates[0].capacity_unit if decision.candidates else '-'}; "
        "measured / emulated / predicted figures are labelled and never mixed",
        "",
        _table(rows(decision), COLUMNS),
        "",
        f"verdict: {decision.verdict.text}",
    ]
    if decision.mix:
        parts = " + ".join(f"{n} x {k}" for k, n in decision.mix.parts.items())
        lines.append(
            f"cheapest mix: {parts}: ${decision.mix.tco_usd_per_year:,.0f}/year "
            f"(saves ${decision.mix.saving_usd_per_year:,.0f}/year)"
        )
    if decision.ruled_out:
        lines += ["", "ruled out:"]
        for r in decision.ruled_out:
            what = " ".join(
                x for x in (r.board_type, r.precision, f"({r.source})" if r.source else None) if x
            )
            lines.append(f"  {what}: {r.reason}")
    notes = [(c.label, w) for c in decision.candidates for w in c.warnings]
    if notes:
        lines += ["", "warnings:"] + [f"  {label}: {w}" for label, w in notes]
    if a["placeholders_used"]:
        lines += ["", "placeholder prices used (give quotes with --costs):"]
        lines += [f"  {p}" for p in a["placeholders_used"]]
    lines += [
        "",
        "assumptions: electricity ${electricity_usd_per_kwh}/kWh, PUE {pue}, lifetime {lifetime_years} years, "
        "discount rate {discount_rate}, duty cycle {duty_cycle}, headroom {headroom}, spares {spares} + "
        "{spares_pct}%".format(**e)
        + f"; capital recovery factor {a['capital_recovery_factor']:.4f}; costs file: {a['costs_file'] or 'none'}",
        f"run ids: {', '.join(f'{c.label}: {c.run_ids}' for c in decision.candidates if c.run_ids) or 'none'}",
    ]
    return "\n".join(lines)


def sensitivity_text(result: Sensitivity) -> str:
    labels = sorted({k for r in result.rows for k in r["tco_usd_per_year"]})
    data = []
    for r in result.rows:
        row = {"value": _n(r["value"]), "cheapest": r["cheapest"]}
        row.update({k: _n(r["tco_usd_per_year"][k]) for k in labels})
        data.append(row)
    cols = (("value", result.vary), ("cheapest", "cheapest"), *((k, f"{k} $/yr") for k in labels))
    lines = [_table(data, cols), ""]
    if result.break_even:
        lines += [f"break-even: at {result.vary} = {_n(b['at'])}, cheapest changes {b['from']} -> {b['to']}"
                  for b in result.break_even]  # fmt: skip
    else:
        lines.append(f"the cheapest option does not change over this range of {result.vary}")
    return "\n".join(lines)


def _svg(decision: Decision) -> str:
    """Horizontal bars of TCO per year with the 90 % interval as a whisker, one per candidate."""
    cands = decision.candidates
    if not cands:
        return ""
    top = max(c.tco_usd_per_year_high for c in cands) or 1.0
    left, width, bar, gap = 230, 460, 18, 10
    height = len(cands) * (bar + gap) + 40
    colours = {"measured": "#1f77b4", "emulated": "#ff7f0e", "predicted": "#9467bd"}
    parts = [
        f'<svg width="{left + width + 120}" height="{height}" '
        'role="img" aria-label="TCO per year with 90% intervals">'
    ]
    for i, c in enumerate(cands):
        y = 10 + i * (bar + gap)
        x = lambda v: left + width * v / top  # noqa: E731
        parts.append(
            f'<text x="{left - 8}" y="{y + bar - 4}" text-anchor="end" font-size="12">{escape(c.label)}</text>'
        )
        parts.append(
            f'<rect x="{left}" y="{y}" width="{x(c.tco_usd_per_year) - left:.1f}" height="{bar}" '
            f'fill="{colours.get(c.source, "#888")}"/>'
        )
        mid = y + bar / 2
        parts.append(
            f'<line x1="{x(c.tco_usd_per_year_low):.1f}" y1="{mid}" x2="{x(c.tco_usd_per_year_high):.1f}" '
            f'y2="{mid}" stroke="black" stroke-width="1.5"/>'
        )
        parts.append(
            f'<text x="{x(c.tco_usd_per_year_high) + 6:.1f}" y="{y + bar - 4}" font-size="11">'
            f"${c.tco_usd_per_year:,.0f}</text>"
        )
    parts.append(
        f'<text x="{left}" y="{height - 8}" font-size="11">TCO per year (USD); whisker: 90% interval; '
        "blue measured, orange emulated, purple predicted</text></svg>"
    )
    return "".join(parts)


def _html_table(data: list[dict[str, Any]], columns: tuple[tuple[str, str], ...]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for _, h in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(r.get(k, '')))}</td>" for k, _ in columns) + "</tr>" for r in data
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(decision: Decision, sensitivities: list[Sensitivity] | None = None) -> str:
    """One self-contained page: no script, stylesheet or image is fetched from anywhere."""
    a = decision.assumptions
    ruled = [
        {
            "board": r.board_type,
            "precision": r.precision or "-",
            "source": r.source or "-",
            "reason": r.reason,
        }
        for r in decision.ruled_out
    ]
    warn = [{"label": c.label, "warning": w} for c in decision.candidates for w in c.warnings]
    runs = [
        {"label": c.label, "runs": ", ".join(map(str, c.run_ids)) or "(predicted: no run)"}
        for c in decision.candidates
    ]
    sections = [
        f"<h1>Procurement: {escape(a['workload']['describe'])}</h1>",
        f"<p class=verdict><b>Verdict:</b> {escape(decision.verdict.text)}</p>",
        _html_table(rows(decision), COLUMNS),
        _svg(decision),
    ]
    if decision.mix:
        parts = " + ".join(f"{n} x {k}" for k, n in decision.mix.parts.items())
        sections.append(
            f"<p><b>Cheapest mix:</b> {escape(parts)}: ${decision.mix.tco_usd_per_year:,.0f}/year</p>"
        )
    sections += [
        "<h2>Ruled out</h2>",
        _html_table(
            ruled,
            (("board", "board type"), ("precision", "precision"), ("source", "source"), ("reason", "reason")),
        ),
        "<h2>Warnings</h2>",
        _html_table(warn, (("label", "candidate"), ("warning", "warning"))),
    ]
    for s in sensitivities or []:
        text = sensitivity_text(s)
        sections.append(f"<h2>Sensitivity: {escape(s.vary)}</h2><pre>{escape(text)}</pre>")
    sections += [
        "<h2>Runs used</h2>",
        _html_table(runs, (("label", "candidate"), ("runs", "run ids"))),
        "<h2>Assumptions</h2>",
        f"<pre>{escape(json.dumps(a, indent=2, default=str))}</pre>",
        "<p>Measured, emulated and predicted figures are labelled and never mixed. Formulas and defaults: "
        "docs/procurement.md in the farm's repository.</p>",
    ]
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px;text-align:left}"
        "pre{background:#f6f6f6;padding:1em;font-size:12px;overflow:auto}.verdict{font-size:15px}"
    )
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>farm procure</title>"
        f"<style>{style}</style></head><body>{''.join(sections)}</body></html>\n"
    )
