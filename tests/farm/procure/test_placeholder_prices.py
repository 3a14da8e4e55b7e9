"""Every board type has a price with a source and a date; types the project has no source for carry a
placeholder that a user must set, and every output says when one was used (issue 12, input 2)."""

from __future__ import annotations

from farm.config import Settings
from farm.db.session import session_scope
from farm.perfmodel.target import load_catalog
from farm.procure import decide, workload
from farm.procure.report import render_html, text_report
from tests.farm.procure.store import NOW, add_run


def test_every_board_type_has_a_sourced_dated_price() -> None:
    catalog = load_catalog()
    for name, bt in catalog.items():
        assert bt.price is not None, f"{name} has no price: procurement would rule it out"
        assert bt.price.source and bt.price.date, f"{name}: a price needs its source and date"
    seed = {"zcu104": 3500, "u50": 8000, "vck190": 12000}  # the seed design's figures: not placeholders
    for name, usd in seed.items():
        assert catalog[name].price.list_usd == usd and not catalog[name].price.placeholder
    for name in ("cpu", "gpu"):  # no project source: placeholders, and their source says to set one
        assert catalog[name].price.placeholder and "--costs" in catalog[name].price.source


def test_a_placeholder_priced_cpu_is_listed_and_the_placeholder_reported(farm_env: Settings) -> None:
    """A measured cpu with a power reading is a candidate now (it used to be ruled out for "no price"); the
    table, the JSON and the HTML report say its price is a placeholder."""
    db = farm_env.db_url
    add_run(db, target="cpu", scenario="Offline", metrics={"throughput_ips": 300.0, "power_w": 35.0})
    w = workload("mobilenet_v2", precisions=["int8"], offline_ips=400, boards=["cpu"])
    with session_scope(db) as s:
        d = decide(s, w, catalog=load_catalog(), now=NOW, draws=200)
    (c,) = d.candidates
    assert c.board_type == "cpu" and c.source == "measured" and c.boards_needed == 2  # 300 x 0.7 = 210/board
    assert c.capex_usd == 2 * 3000 and c.placeholders_used
    assert any(p.startswith("cpu list price $3,000") for p in d.assumptions["placeholders_used"])
    price = d.assumptions["prices"]["cpu"]
    assert price["placeholder"] and price["date"] and "--costs" in price["source"]
    assert "placeholder prices used" in text_report(d) and "cpu list price $3,000" in text_report(d)
    assert "cpu list price $3,000" in render_html(d)
