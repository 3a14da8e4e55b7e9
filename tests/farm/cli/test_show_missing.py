"""`farm show`'s "missing:" section: the catalog's expected metrics a run lacks, with the reason the farm
knows (no sensor on the board type, a run too short for the sensor, Offline, Server's search)."""

from __future__ import annotations

from typing import Any

from farm.config import load_settings
from farm.inventory import BoardType, load_inventory
from farm.queries.missing import LATENCY_METRICS, SENSOR_METRICS, missing


def _types() -> dict[str, BoardType]:
    return dict(load_inventory(load_settings().inventory_dir).board_types)


def _run(scenario: str, target: str, names: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "target": target,
        "source": "emulated",
        "metrics": [{"name": n, "value": 1.0, "unit": "", "source": "emulated"} for n in names],
        "traces": {},
        "provenance": None,
        **extra,
    }


def _reasons(groups: list[dict[str, Any]]) -> dict[str, str]:
    return {name: g["reason"] for g in groups for name in g["metrics"]}


SENSED = [
    "power_w",
    "power_w_peak",
    "energy_mj_per_inference",
    "inferences_per_joule",
    "temp_c_max",
    "clock_mhz_min",
]


def test_a_complete_run_misses_nothing() -> None:
    run = _run("SingleStream", "zcu104", [*LATENCY_METRICS, "throughput_ips", *SENSED])
    assert missing(run, _types()["zcu104"]) == []


def test_no_power_sensor_on_the_board_type() -> None:
    """A PYNQ-Z2 without its external meter (the catalog lists `meter`; a lab that has none drops it)."""
    run = _run("SingleStream", "pynq-z2", [*LATENCY_METRICS, "throughput_ips", "temp_c_max", "clock_mhz_min"])
    groups = missing(run, _types()["pynq-z2"].model_copy(update={"sensors": ["thermal_zone"]}))
    assert groups == [
        {
            "metrics": list(SENSOR_METRICS["power"]),
            "reason": "no power sensor on the pynq-z2 board type (sensors: thermal_zone)",
        }
    ]


def test_a_run_too_short_for_the_sensor_gives_the_agents_note() -> None:
    note = "only 3 sample(s) in the 0.900 s measured window, at least 5 needed (sampling every 250 ms)"
    traces = {q: {"values": [], "note": note} for q in ("power", "thermal")}
    run = _run("SingleStream", "u50", [*LATENCY_METRICS, "throughput_ips", "clock_mhz_min"], traces=traces)
    reasons = _reasons(missing(run, _types()["u50"]))
    assert set(reasons) == {*SENSOR_METRICS["power"], "temp_c_max"}
    assert reasons["power_w"] == f"xbutil: {note}" == reasons["temp_c_max"]


def test_offline_has_no_per_query_latency() -> None:
    run = _run("Offline", "zcu104", ["offline_completion_ms_p50", "throughput_ips", *SENSED])
    (group,) = missing(run, _types()["zcu104"])
    assert group["metrics"] == list(LATENCY_METRICS)
    assert group["reason"].startswith("Offline has no per-query latency")


def test_server_without_a_qps_under_the_bound_says_why() -> None:
    note = "no load meets the 10 ms bound: one query takes 48 ms"
    run = _run(
        "Server",
        "pynq-z2",
        [*LATENCY_METRICS, "throughput_ips", "temp_c_max", "clock_mhz_min", "power_w", "power_w_peak"],
        provenance={"environment": {"server_search": {"found": False, "note": note}}},
    )
    reasons = _reasons(missing(run, _types()["pynq-z2"]))
    assert reasons["server_qps_max"] == note == reasons["server_latency_ms_p99_at_max"]
    # power is stored, energy not: what is stored is never "missing", and the sensor is named for the rest
    assert "power_w" not in reasons and reasons["energy_mj_per_inference"].startswith("meter gave no power")


def test_a_type_the_catalog_no_longer_has() -> None:
    run = _run("SingleStream", "gone", [*LATENCY_METRICS, "throughput_ips"])
    reasons = _reasons(missing(run, None))
    assert set(reasons) == set(SENSED) and "no board type 'gone'" in reasons["power_w"]
