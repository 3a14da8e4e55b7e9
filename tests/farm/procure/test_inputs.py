"""Bad questions and bad costs files: one located message each (ProcureError / CostsError: exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.errors import InventoryError
from farm.inventory import Catalog
from farm.perfmodel.target import load_catalog
from farm.procure import CostsError, ProcureError, from_catalog, load_costs, workload


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"p99_ms": 10, "qps": 0}, "--qps", "positive"),
        (
            {"p99_ms": 10, "qps": 2000, "offline_ips": 100},
            "--p99-ms/--qps/--offline-ips/--latency-ms",
            "exactly one",
        ),
        ({}, "--p99-ms/--qps/--offline-ips/--latency-ms", "exactly one"),
        ({"qps": 2000}, "--p99-ms", "both"),
        ({"offline_ips": 100, "streams": 2}, "--streams", "SingleStream"),
        ({"latency_ms": 5, "streams": 0}, "--streams", ">= 1"),
        ({"latency_ms": 5, "min_top1": 1.5}, "--min-top1", "ratio"),
        ({"latency_ms": 5, "precisions": ["int4"]}, "--precision", "int4"),
    ],
)
def test_bad_workloads_name_the_option(kwargs: dict, field: str, words: str) -> None:
    with pytest.raises(ProcureError) as err:
        workload("mobilenet_v2", **kwargs)
    assert err.value.field == field and words in str(err.value)


def test_workload_kinds() -> None:
    assert workload("m", latency_ms=5, streams=3).demand == 3
    assert workload("m", offline_ips=900).capacity_unit == "images/s"


def _costs(tmp_path: Path, text: str):
    path = tmp_path / "costs.yaml"
    path.write_text(text)
    return load_costs(path, from_catalog(load_catalog()))


def test_costs_file_overrides_and_labels(tmp_path: Path) -> None:
    c = _costs(tmp_path, "economics:\n  electricity_usd_per_kwh: 0.3\n  spares: '10%'\n"
               "board_types:\n  kv260:\n    list_usd: 300\n    source: quote 2026-11\n")  # fmt: skip
    assert c.economics.electricity_usd_per_kwh == 0.3 and c.economics.spares_pct == 10
    k = c.boards["kv260"]
    assert (
        k.list_usd == 300 and not k.placeholder and k.source == "quote 2026-11" and k.origin == "costs file"
    )
    assert c.boards["pynq-z2"].placeholder  # untouched: still the catalog's placeholder
    assert c.boards["pynq-z2"].placeholders()[0].startswith("pynq-z2 list price $199")


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        (
            "board_types:\n  u50:\n    list_usd: -5\n",
            3,
            "board_types.u50.list_usd",
            "greater than or equal to 0",
        ),
        ("board_types:\n  zcu105:\n    list_usd: 5\n", 2, "board_types.zcu105", "unknown board type"),
        ("economics:\n  pue: 0.5\n", 2, "economics.pue", "greater than or equal to 1"),
        ("economics:\n  headroom: 1\n", 2, "economics.headroom", "less than 1"),
        ("economics:\n  spares: lots\n", 2, "economics.spares", "percent"),
        ("economics:\n  colour: red\n", 2, "economics.colour", "unknown key 'colour'"),
        ("- 1\n", 1, None, "mapping"),
    ],
)
def test_bad_costs_file_is_located(
    tmp_path: Path, text: str, line: int, field: str | None, words: str
) -> None:
    with pytest.raises(CostsError) as err:
        _costs(tmp_path, text)
    e = err.value
    assert e.line == line and e.field == field and words in str(e) and str(e).startswith(str(tmp_path))


def test_catalog_price_block_keeps_list_price_readable() -> None:
    types = load_catalog()
    assert types["zcu104"].list_price_usd == 3500 and types["zcu104"].price.source == "seed design"
    assert types["u50"].price.host_share_usd > 0 and types["pynq-z2"].price.placeholder
    old = Catalog.model_validate({"board_types": {"x": {"family": "fpga", "toolchain": "t", "backend": "b",
                                                        "list_price_usd": 10}}})  # fmt: skip
    assert old.board_types["x"].list_price_usd == 10 and old.board_types["x"].price is None
    assert from_catalog(old.board_types).boards["x"].placeholder  # an unsourced figure is a placeholder


def test_catalog_price_disagreement_is_refused(tmp_path: Path) -> None:
    from farm.inventory import load_inventory

    (tmp_path / "board-types.yaml").write_text(
        "board_types:\n  x:\n    family: fpga\n    toolchain: t\n    backend: b\n    list_price_usd: 10\n"
        "    price: {list_usd: 20}\n"
    )
    (tmp_path / "local.yaml").write_text("boards:\n  - {name: x-0, type: x}\n")
    with pytest.raises(InventoryError, match="disagree") as err:
        load_inventory(tmp_path, "local.yaml")
    assert err.value.line == 2 and err.value.field == "board_types.x"  # the board type it is in
