"""The HTML report's plots: the TCO bars and the Pareto charts (one query's p99 latency against $ per
million inferences and against energy per inference), inline SVG, nothing fetched from anywhere."""

from __future__ import annotations

import re

from farm.config import Settings
from farm.db.session import session_scope
from farm.procure import decide, workload
from farm.procure.report import _frontier, pareto_svg, render_html
from tests.farm.procure.store import NOW, add_run, probe
from tests.farm.procure.test_decide import fake_predictor


def test_the_frontier_keeps_what_nothing_beats_on_both() -> None:
    pts = [(3.0, 7.0, "c"), (1.0, 10.0, "a"), (2.0, 5.0, "b"), (4.0, 1.0, "d"), (5.0, 2.0, "e")]
    assert [p[2] for p in _frontier(pts)] == ["a", "b", "d"]  # c is beaten by b, e by d


def test_the_html_report_has_both_pareto_charts(farm_env: Settings) -> None:
    """zcu104 measured (Server probes and a SingleStream p99 of 4 ms), vck190 and kv260 predicted (1.1 ms
    and 3.5 ms a query, plus their model error): three points on each chart, labelled and coloured by
    source; the options without a one-query p99 are counted, not drawn."""
    db = farm_env.db_url
    add_run(db, target="zcu104", scenario="Server", metrics={"power_w": 20.0},
            probes=[probe(300, 3.0, 0.4), probe(450, 5.0, 0.6), probe(675, 25.0, 0.95)])  # fmt: skip
    add_run(
        db, target="zcu104", scenario="SingleStream", metrics={"latency_ms_p99": 4.0, "throughput_ips": 260}
    )
    w = workload(
        "mobilenet_v2", precisions=["int8"], p99_ms=10, qps=2000, boards=["zcu104", "vck190", "kv260"]
    )
    with session_scope(db) as s:
        d = decide(s, w, predictor=fake_predictor, now=NOW, draws=200)
    assert {c.board_type: c.latency_ms_p99 is not None for c in d.candidates} == {
        "zcu104": True,
        "vck190": True,
        "kv260": True,
    }
    html = render_html(d)
    charts = re.findall(r'<svg class="pareto" data-x="([a-z_]+)".*?</svg>', html, re.S)
    assert charts == ["usd_per_million_inferences", "energy_mj_per_inference"]
    for key in charts:
        svg = pareto_svg(d, key)
        assert svg in html and svg.count("<circle") == 3
        assert "zcu104 int8" in svg and "vck190 int8 (predicted)" in svg and "kv260 int8 (predicted)" in svg
        assert 'fill="#9467bd"' in svg or 'stroke="#9467bd"' in svg  # predicted: purple
        assert "Pareto frontier" in svg and "p99 latency (ms)" in svg
    assert "$ per million inferences" in html and "energy per inference (mJ)" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html
    assert not re.search(r"<(script|link|img)\b", html, re.I)


def test_no_pareto_chart_without_a_one_query_latency(farm_env: Settings) -> None:
    """Server runs only: no SingleStream p99 and no prediction, so the report says why there is no chart."""
    add_run(farm_env.db_url, target="zcu104", scenario="Server", metrics={"power_w": 20.0},
            probes=[probe(300, 3.0, 0.4), probe(450, 5.0, 0.6)])  # fmt: skip
    w = workload("mobilenet_v2", precisions=["int8"], p99_ms=10, qps=2000, boards=["zcu104"])
    with session_scope(farm_env.db_url) as s:
        d = decide(s, w, predictor=fake_predictor, now=NOW, draws=100)
    html = render_html(d)
    assert d.candidates and 'class="pareto"' not in html and "no Pareto chart" in html
