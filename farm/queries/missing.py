"""Which of the catalog's expected metrics a run lacks, and why, where the farm can know it (`farm show`).

A number that is simply absent reads as a bug; most absences have a reason the farm already holds: the
board type has no sensor for it, the sensor took too few samples in a short run (the agent's note), the
scenario does not define it (Offline has no per-query latency), or Server's search found no QPS under
the bound (its note). Pure: it reads a run as `farm.queries.runs.run_detail` returns it and the board
type from the catalog.
"""

from __future__ import annotations

from typing import Any

from farm import metrics
from farm.inventory import BoardType
from farm.workers.agent import protocol

#: Sensor quantity -> the metrics its figures give (farm/services/results.py `power_metrics`).
SENSOR_METRICS = {
    "power": ("power_w", "power_w_peak", "energy_mj_per_inference", "inferences_per_joule"),
    "thermal": ("temp_c_max",),
    "clock": ("clock_mhz_min",),
}
SERVER_METRICS = ("server_qps_max", "server_latency_ms_p99_at_max")
LATENCY_METRICS = tuple(m.name for m in metrics.CATALOG if m.name.startswith("latency_ms_"))


def expected(scenario: str) -> tuple[str, ...]:
    """Every metric the catalog expects of a run in ``scenario``, sensors aside (see :data:`SENSOR_METRICS`)."""
    out = (*LATENCY_METRICS, "throughput_ips")
    return (*out, *SERVER_METRICS) if scenario == "Server" else out


def _sensor_quantities(board_type: BoardType) -> dict[str, list[str]]:
    """quantity -> the type's catalog sensor specs that measure it."""
    out: dict[str, list[str]] = {}
    for spec in board_type.sensors:
        kind = protocol.sensor_kind(spec)
        for quantity in kind.provides if kind is not None else ():
            out.setdefault(quantity, []).append(spec)
    return out


def missing(run: dict[str, Any], board_type: BoardType | None) -> list[dict[str, Any]]:
    """``[{"metrics": [...], "reason": str}]``: the expected metrics ``run`` did not store, grouped by
    reason. ``board_type`` is the run's type from the catalog (None when the catalog no longer has it)."""
    have = {m["name"] for m in run["metrics"]}
    scenario, target = run["scenario"], run["target"]
    groups: dict[str, list[str]] = {}

    def lacks(names: tuple[str, ...], reason: str) -> None:
        for name in names:
            if name not in have:
                groups.setdefault(reason, []).append(name)

    if scenario == "Offline":
        lacks(
            LATENCY_METRICS,
            "Offline has no per-query latency: its one query's completion times are offline_completion_ms_*",
        )
        lacks(("throughput_ips",), "not reported by the agent")
    else:
        lacks((*LATENCY_METRICS, "throughput_ips"), "not reported by the agent")
    if scenario == "Server":
        env = ((run.get("provenance") or {}).get("environment")) or {}
        search = env.get("server_search") or {}
        lacks(SERVER_METRICS, search.get("note") or "the run has no Server search record")

    traces = run.get("traces") or {}
    if board_type is None:
        for quantity, names in SENSOR_METRICS.items():
            if not (traces.get(quantity) or {}).get("values"):
                lacks(names, f"the catalog has no board type {target!r} to say which sensors it carries")
    else:
        sensors = _sensor_quantities(board_type)
        if run.get("source") == "emulated":
            sensors.setdefault("clock", ["emu_clock"])  # the agent adds the emulated clock (harness.py)
        for quantity, names in SENSOR_METRICS.items():
            if quantity not in sensors:
                carried = ", ".join(board_type.sensors) or "none"
                lacks(names, f"no {quantity} sensor on the {target} board type (sensors: {carried})")
                continue
            note = (traces.get(quantity) or {}).get("note")
            if note:
                lacks(names, f"{'/'.join(sensors[quantity])}: {note}")
            elif quantity not in traces:
                lacks(
                    names, f"{'/'.join(sensors[quantity])} gave no {quantity} figures (see the agent's log)"
                )
            else:
                lacks(names, f"not derived: the {quantity} figures came without what they need")
    return [{"metrics": names, "reason": reason} for reason, names in groups.items()]
