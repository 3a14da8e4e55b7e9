"""Thermal soak runs (sweep `thermal:`): sustained load with temperature and clock traces, analysed here.

A soak is an ordinary LoadGen test made long (``duration_s`` of board time; on an emulated board that is
``duration_s x time_scale`` wall seconds: farm/services/agent_config.py), run by the unchanged agent with
its sensors sampled on side threads. The farm analyses what comes back (:func:`analyse`), so the agent stays small and Python 3.8,
and a stored soak can be analysed again with other thresholds:

- steady state: windows of ``window_s`` slid over the temperature trace, each with its least-squares slope;
  the soak is steady from the first window after which every window's slope is under
  ``steady_slope_c_per_min``. Reported: time to steady state (that window's start) and the steady
  temperature (the mean from there on). No full window under the threshold: not reached (null, said so).
- throttling: the clock trace below ``CLOCK_DROP`` x nominal (the catalog's accelerator clock, else the
  highest clock seen); without a clock trace, the latency stepping up by ``LATENCY_STEP`` over the first
  window's median. Reported: throttled yes/no, from when, and what showed it.
- latency drift: median latency of the last window vs the first, in percent (windows of
  min(60 s, duration / 4)). A sample's time is its share of the cumulative latency over the run (LoadGen
  issues the next query as one completes; the agent's samples are an even stride over the run).

A board with no temperature sensor (the CPU) gets no steady state and no steady temperature, and a note
that says why: nothing is made up.
"""

from __future__ import annotations

import bisect
import statistics
from typing import Any

from farm.metrics import stored
from farm.sweep.schema import Thermal
from farm.workers.agent.protocol import read, time_scale

CLOCK_DROP = 0.97  # a clock under 97 % of nominal is throttled
LATENCY_STEP = 0.15  # a window's median latency 15 % over the first window's: the latency stepped up
DRIFT_WINDOW_S = 60.0  # first and last minute for the latency drift


def slope_per_s(t: list[float], v: list[float]) -> float:
    """Least-squares slope of v over t."""
    mt, mv = statistics.fmean(t), statistics.fmean(v)
    den = sum((x - mt) ** 2 for x in t)
    return 0.0 if den == 0 else sum((x - mt) * (y - mv) for x, y in zip(t, v, strict=True)) / den


def steady_state(
    t: list[float], v: list[float], window_s: float, threshold_c_per_min: float
) -> dict[str, Any]:
    """{steady, time_to_steady_s, steady_temp_c, window_s, slopes_c_per_min (per window start)}."""
    out: dict[str, Any] = {"steady": False, "time_to_steady_s": None, "steady_temp_c": None}
    if len(t) < 3 or t[-1] - t[0] < window_s:
        out["note"] = f"trace shorter than one {window_s:g} s window: steady state not assessed"
        return out
    slopes: list[tuple[float, float]] = []
    for i, start in enumerate(t):
        if start + window_s > t[-1] + 1e-9:
            break
        end = bisect.bisect_right(t, start + window_s)
        if end - i >= 3:
            slopes.append((start, slope_per_s(t[i:end], v[i:end]) * 60.0))
    steady_from = None
    for start, slope in reversed(slopes):
        if abs(slope) >= threshold_c_per_min:
            break
        steady_from = start
    out["max_abs_slope_c_per_min_last_window"] = round(abs(slopes[-1][1]), 4) if slopes else None
    if steady_from is None:
        out["note"] = (
            f"no steady state: the temperature's slope was still >= {threshold_c_per_min:g} C/min over the "
            f"last {window_s:g} s window"
        )
        return out
    tail = [x for x, ts in zip(v, t, strict=True) if ts >= steady_from]
    out.update(
        steady=True,
        time_to_steady_s=round(steady_from - t[0], 3),
        steady_temp_c=round(statistics.fmean(tail), 3),
    )
    return out


def sample_times(samples_ms: list[float], duration_s: float) -> list[float]:
    """Each sample's time in the run: its share of the cumulative latency, scaled to the run's duration."""
    total = sum(samples_ms)
    acc, out = 0.0, []
    for s in samples_ms:
        acc += s
        out.append(acc / total * duration_s if total else 0.0)
    return out


def latency_profile(samples_ms: list[float], duration_s: float | None) -> dict[str, Any]:
    """{drift_pct, first_median_ms, last_median_ms, window_s, stepped_at_s}."""
    if not samples_ms or not duration_s:
        return {"drift_pct": None, "note": "no latency samples"}
    times = sample_times(samples_ms, duration_s)
    window = min(DRIFT_WINDOW_S, duration_s / 4)
    first = [x for x, t in zip(samples_ms, times, strict=True) if t <= window]
    last = [x for x, t in zip(samples_ms, times, strict=True) if t >= duration_s - window]
    if not first or not last:
        return {"drift_pct": None, "note": "too few latency samples for first and last windows"}
    first_m, last_m = statistics.median(first), statistics.median(last)
    stepped_at = None
    start = 0.0
    while start + window <= duration_s + 1e-9:
        chunk = [x for x, t in zip(samples_ms, times, strict=True) if start <= t < start + window]
        if chunk and statistics.median(chunk) > first_m * (1 + LATENCY_STEP):
            stepped_at = round(start, 3)
            break
        start += window
    return {
        "drift_pct": round((last_m - first_m) / first_m * 100.0, 3) if first_m else None,
        "first_median_ms": round(first_m, 6),
        "last_median_ms": round(last_m, 6),
        "window_s": round(window, 3),
        "stepped_at_s": stepped_at,
    }


def throttling(clock: dict[str, Any] | None, nominal_mhz: float | None, latency: dict[str, Any]) -> dict:
    t, v = list((clock or {}).get("t_s") or []), list((clock or {}).get("values") or [])
    if v:
        nominal = nominal_mhz or max(v)
        below = [(ts, x) for ts, x in zip(t, v, strict=True) if x < CLOCK_DROP * nominal]
        return {
            "throttled": bool(below),
            "throttle_at_s": round(below[0][0] - t[0], 3) if below else None,
            "evidence": "clock",
            "nominal_mhz": nominal,
            "min_mhz": min(v),
        }
    stepped = latency.get("stepped_at_s")
    return {
        "throttled": stepped is not None,
        "throttle_at_s": stepped,
        "evidence": "latency",
        "note": "no clock trace: throttling judged from the latency stepping up "
        f"{LATENCY_STEP:.0%} over the first window",
    }


def analyse(
    traces: dict[str, Any] | None,
    samples_ms: list[float],
    duration_s: float | None,
    nominal_mhz: float | None,
    cfg: Thermal,
) -> dict[str, Any]:
    """The soak's findings, stored as ``runs.traces["soak"]`` (times in board seconds)."""
    traces = traces or {}
    thermal = traces.get("thermal") or {}
    t, v = list(thermal.get("t_s") or []), list(thermal.get("values") or [])
    latency = latency_profile(samples_ms, duration_s)
    out: dict[str, Any] = {
        "duration_s": duration_s,
        "planned_duration_s": cfg.duration_s,
        "window_s": cfg.window_s,
        "steady_slope_c_per_min": cfg.steady_slope_c_per_min,
        "temperature_sensor": thermal.get("sensor") if v else None,
    }
    if v:
        out.update(steady_state(t, v, cfg.window_s, cfg.steady_slope_c_per_min))
        out["temp_c_start"], out["temp_c_max"] = v[0], max(v)
    else:
        out.update(
            steady=None,
            time_to_steady_s=None,
            steady_temp_c=None,
            note="no temperature sensor on this board: no steady state or steady temperature"
            + (f" ({thermal['note']})" if thermal.get("note") else ""),
        )
    out["throttling"] = throttling(traces.get("clock"), nominal_mhz, latency)
    out["latency"] = latency
    return out


def metrics(analysis: dict[str, Any]) -> list[tuple[str, float, str]]:
    """(name, value, unit) of a soak's findings; figures it could not establish are left out."""
    out: list[tuple[str, float, str]] = []
    if analysis.get("time_to_steady_s") is not None:
        out.append(stored("soak_time_to_steady_s", float(analysis["time_to_steady_s"])))
    if analysis.get("steady_temp_c") is not None:
        out.append(stored("soak_steady_temp_c", float(analysis["steady_temp_c"])))
    thr = analysis.get("throttling") or {}
    out.append(stored("soak_throttled", 1.0 if thr.get("throttled") else 0.0))
    if thr.get("throttle_at_s") is not None:
        out.append(stored("soak_throttle_at_s", float(thr["throttle_at_s"])))
    drift = (analysis.get("latency") or {}).get("drift_pct")
    if drift is not None:
        out.append(stored("soak_latency_drift_pct", float(drift)))
    return out


def flags(analysis: dict[str, Any]) -> list[str]:
    thr = analysis.get("throttling") or {}
    if not thr.get("throttled"):
        return []
    at = thr.get("throttle_at_s")
    if thr.get("evidence") == "clock":
        return [
            f"throttled: clock {thr['min_mhz']:g} MHz < nominal {thr['nominal_mhz']:g} MHz from t={at:g} s"
        ]
    return [f"throttled?: latency stepped up >{LATENCY_STEP:.0%} from t={at:g} s (no clock trace)"]


def analyse_run(
    db_url: str,
    sweep_id: str,
    traces: dict[str, Any] | None,
    samples_ms: list[float],
    report: dict[str, Any],
    nominal_mhz: float | None,
) -> dict[str, Any]:
    """:func:`analyse` for a stored soak job: the sweep's `thermal:` settings, the run's board-time
    duration (LoadGen's measured window over the time scale)."""
    from farm.db.models import SweepRow
    from farm.db.session import session_scope

    with session_scope(db_url) as s:
        sweep = s.get(SweepRow, sweep_id)
        raw = (sweep.spec or {}).get("thermal") if sweep is not None else None
    cfg = Thermal.model_validate(raw or {})
    scale = time_scale(report)
    duration = read(report, "duration_s")
    duration_s = float(duration) / scale if isinstance(duration, int | float) and duration > 0 else None
    return analyse(traces, samples_ms, duration_s, nominal_mhz, cfg)
