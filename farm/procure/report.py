"""The procurement report: a terminal table, and one self-contained HTML file a person can mail.

Why hand-drawn SVG: a vega-lite page loads its script from a CDN (not self-contained offline) and
matplotlib is not installed; a bar chart with interval whiskers, and the Pareto scatter of one query's p99
latency against $ per million inferences and against energy per inference, are a few dozen lines of SVG.
"""

from __future__ import annotations

import json
import math
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
SOURCE_COLOURS = {"measured": "#1f77b4", "emulated": "#ff7f0e", "predicted": "#9467bd"}


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
            f'fill="{SOURCE_COLOURS.get(c.source, "#888")}"/>'
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


def _frontier(points: list[tuple[float, float, Any]]) -> list[tuple[float, float, Any]]:
    """The Pareto frontier of (x, y, item) where lower is better on both: by x, each point with a lower y
    than every cheaper one."""
    out: list[tuple[float, float, Any]] = []
    for x, y, item in sorted(points, key=lambda p: (p[0], p[1])):
        if not out or y < out[-1][1]:
            out.append((x, y, item))
    return out


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        return [10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]
    step = 10 ** math.floor(math.log10((hi - lo) or hi or 1.0))
    while (hi - lo) / step > 6:
        step *= 2
    while (hi - lo) / step < 3:
        step /= 2
    first = math.floor(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 2) if first + i * step <= hi * 1.0001]


def pareto_svg(decision: Decision, x_key: str = "usd_per_million_inferences") -> str:
    """A scatter of one query's p99 latency (y) against $ per million inferences (x_key
    "usd_per_million_inferences") or energy per inference in mJ ("energy_mj_per_inference"), one point per
    candidate coloured by source, the Pareto frontier (no other option both cheaper and faster) joined by a
    line and its points filled. x is logarithmic when the options span more than a factor of 10."""
    titles = {
        "usd_per_million_inferences": "$ per million inferences",
        "energy_mj_per_inference": "energy per inference (mJ)",
    }

    def x_of(c: Any) -> float | None:
        if x_key == "energy_mj_per_inference":
            return 1000.0 / c.inferences_per_joule if c.inferences_per_joule else None
        return getattr(c, x_key)

    pts = [(x_of(c), c.latency_ms_p99, c) for c in decision.candidates]
    pts = [(x, y, c) for x, y, c in pts if x is not None and y is not None and x > 0 and y > 0]
    if not pts:
        return ""
    left, top, width, height = 70, 30, 520, 260
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    log = max(xs) / min(xs) > 10
    if log:
        x_lo, x_hi = 10 ** math.floor(math.log10(min(xs))), 10 ** math.ceil(math.log10(max(xs)))
    else:
        pad = (max(xs) - min(xs)) * 0.1 or max(xs) * 0.1
        x_lo, x_hi = max(0.0, min(xs) - pad), max(xs) + pad
    y_lo, y_hi = 0.0, max(ys) * 1.15

    def sx(v: float) -> float:
        f = (
            (math.log10(v) - math.log10(x_lo)) / (math.log10(x_hi) - math.log10(x_lo))
            if log
            else ((v - x_lo) / ((x_hi - x_lo) or 1.0))
        )
        return left + width * f

    def sy(v: float) -> float:
        return top + height - height * (v - y_lo) / ((y_hi - y_lo) or 1.0)

    title = f"Pareto: one query's p99 latency against {titles[x_key]}"
    parts = [
        f'<svg class="pareto" data-x="{x_key}" width="{left + width + 180}" height="{top + height + 60}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="none" stroke="#999"/>',
    ]
    for v in _ticks(x_lo, x_hi, log):
        if x_lo <= v <= x_hi:
            parts.append(
                f'<line x1="{sx(v):.1f}" y1="{top + height}" x2="{sx(v):.1f}" y2="{top + height + 4}" '
                'stroke="#999"/>'
            )
            parts.append(
                f'<text x="{sx(v):.1f}" y="{top + height + 16}" font-size="10" text-anchor="middle">'
                f"{_n(v, 3)}</text>"
            )
    for v in _ticks(y_lo, y_hi, False):
        parts.append(f'<line x1="{left - 4}" y1="{sy(v):.1f}" x2="{left}" y2="{sy(v):.1f}" stroke="#999"/>')
        parts.append(
            f'<text x="{left - 6}" y="{sy(v) + 3:.1f}" font-size="10" text-anchor="end">{_n(v, 3)}</text>'
        )
    parts.append(
        f'<text x="{left + width / 2}" y="{top + height + 34}" font-size="11" text-anchor="middle">'
        f"{escape(titles[x_key])}{' (log scale)' if log else ''}</text>"
    )
    parts.append(
        f'<text x="16" y="{top + height / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 16 {top + height / 2})">one query\'s p99 latency (ms)</text>'
    )
    front = _frontier(pts)
    if len(front) > 1:
        line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y, _ in front)
        parts.append(
            f'<polyline class="frontier" points="{line}" fill="none" stroke="#2ca02c" stroke-width="1.5" '
            'stroke-dasharray="4 3"/>'
        )
    on_front = {id(c) for _, _, c in front}
    for x, y, c in pts:
        colour = SOURCE_COLOURS.get(c.source, "#888")
        fill = colour if id(c) in on_front else "white"
        parts.append(
            f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="5" fill="{fill}" stroke="{colour}" stroke-width="2">'
            f"<title>{escape(c.label)}: {_n(y, 3)} ms, {_n(x, 3)} {escape(titles[x_key])}</title></circle>"
        )
        parts.append(f'<text x="{sx(x) + 8:.1f}" y="{sy(y) + 4:.1f}" font-size="11">{escape(c.label)}</text>')
    left_out = len(decision.candidates) - len(pts)
    note = "filled, on the dashed line: the Pareto frontier (no other option is both cheaper and faster); "
    note += "blue measured, orange emulated, purple predicted"
    if left_out:
        note += f"; {left_out} option(s) without a one-query p99 not shown"
    parts.append(f'<text x="{left}" y="{top + height + 52}" font-size="11">{escape(note)}</text></svg>')
    return "".join(parts)


def _pareto_section(decision: Decision) -> list[str]:
    charts = [pareto_svg(decision, k) for k in ("usd_per_million_inferences", "energy_mj_per_inference")]
    charts = [c for c in charts if c]
    if not decision.candidates:
        return []
    if not charts:
        return [
            "<h2>Pareto</h2><p>No option has a one-query p99 latency (no SingleStream run and no "
            "prediction): no Pareto chart.</p>"
        ]
    return ["<h2>Pareto: latency against cost and energy</h2>", *charts]


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
        *_pareto_section(decision),
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
