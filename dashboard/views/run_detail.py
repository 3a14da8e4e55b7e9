"""Run detail: one run's latency distribution, power / temperature / clock traces, provenance, and LoadGen's
logs as downloads (the files LoadGen wrote, for an MLPerf-style review)."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from farm import metrics as catalog
from farm.dashboard import charts, filters, ui
from farm.dashboard.data import fetch
from farm.queries.runs import LOADGEN_LOGS, latest_runs, loadgen_logs, run_detail

st.title("Run detail")

recent = fetch(latest_runs, 200)
if not recent:
    ui.empty(ui.NO_DATA)

wanted = filters.int_param("run", "run id")
run = fetch(run_detail, wanted) if wanted is not None else None
if wanted is not None and run is None:
    st.warning(f"There is no run {wanted}; showing the latest run instead.")
if run is None:
    run = fetch(run_detail, recent[0]["run_id"])
    assert run is not None
st.query_params["run"] = str(run["run_id"])

with st.expander("Choose another run (the 200 latest; any run id also works in the URL as ?run=ID)"):
    rows = [{"run": ui.run_link(r["run_id"]), **r} for r in recent]
    ui.table(rows, "latest_runs", column_config={"run": ui.RUN_LINK}, height=300)

emulated = run["source"] == "emulated"
label = f"{run['target']} (emulated)" if emulated else run["target"]
st.subheader(
    f"Run {run['run_id']}: {run['model']} {run['precision']} batch {run['batch_size']} "
    f"{run['scenario']} on {label}"
)
if emulated:
    st.warning(
        f"Emulated result (model {run['emulation_model'] or 'unknown'}). " + ui.EMULATED_NOTE, icon="⚠️"
    )
if run["flags"]:
    st.warning("Flagged for a second look: " + "; ".join(map(str, run["flags"])))
if run["result_valid"] is False:
    st.error("LoadGen marked this result INVALID (its run did not meet the scenario's requirements).")
started = f"{run['started_at'][:19].replace('T', ' ')} UTC" if run["started_at"] else "unknown"
st.markdown(
    f"Board `{run['board']}` · sweep [{run['sweep_id'][:8]}]({ui.sweep_link(run['sweep_id'])}) · "
    f"repeat {run['repeat']} · started {started} · fingerprint `{run['fingerprint'][:12]}`"
)

left, right = st.columns([3, 2])
with left:
    if run["samples_ms"]:
        st.altair_chart(
            charts.histogram(
                run["samples_ms"], title=f"Latency distribution ({len(run['samples_ms'])} samples)"
            )
        )
    else:
        st.info("This run stored no latency samples (runs.samples_ms is empty).")
with right:
    if run["metrics"]:
        metrics = pd.DataFrame(run["metrics"])
        metrics["source"] = metrics["source"].replace({"emulated": "emulated ⚠"})
        metrics.insert(1, "label", metrics["name"].map(catalog.label))
        metrics["better"] = metrics["name"].map(lambda n: m.better if (m := catalog.find(n)) else "")
        ui.table(metrics, f"run_{run['run_id']}_metrics")
    else:
        st.info("This run stored no metrics.")

# trace -> title, and the unit when the trace names none (the catalog's unit of what it measures)
TRACES = tuple(
    (key, title, catalog.get(name).unit_label)
    for key, title, name in (
        ("power", "Power", "power_w"),
        ("thermal", "Temperature", "temp_c_max"),
        ("clock", "Clock", "clock_mhz_min"),
    )
)
traces = run["traces"]
present = [(k, t, u) for k, t, u in TRACES if (traces.get(k) or {}).get("values")]
if present:
    width = {1: 560, 2: 400, 3: 280}.get(len(present), 240)
    panels, ranges = [], []
    for key, title, unit in present:
        values = [float(v) for v in traces[key]["values"]]
        unit = {"C": "°C"}.get(traces[key].get("unit") or unit, traces[key].get("unit") or unit)
        panels.append(
            charts.trace(
                traces[key].get("t_s") or list(range(len(values))),
                values,
                title=title,
                subtitle=" · ".join(
                    [traces[key].get("sensor") or "sensor", *(["emulated"] if emulated else [])]
                ),
                y_title=unit,
                zero=key == "power",  # a 0.2 W wiggle on 5 W is 4 %, not the chart's height
                width=width,
            )
        )
        lo, hi = min(values), max(values)
        if lo == hi:
            ranges.append(f"{title.lower()} {ui.number(lo)} {unit} throughout")
        else:
            spread = f", a {(hi - lo) / abs(hi) * 100:.1f} % spread" if hi else ""
            ranges.append(f"{title.lower()} {ui.number(lo)} to {ui.number(hi)} {unit}{spread}")
    st.altair_chart(alt.hconcat(*panels), width="content")  # one Vega view for all the traces
    st.caption(
        "Power axes start at 0; temperature and clock axes span at least "
        f"{charts.TRACE_MIN_SPAN:.0%} of the reading, so a small wiggle looks small. In this run: "
        + "; ".join(ranges)
        + "."
    )
missing = [t.lower() for k, t, _u in TRACES if not (traces.get(k) or {}).get("values")]
if missing:
    st.caption(f"No {', '.join(missing)} trace for this run (the board has no such sensor, or it was off).")

st.subheader("Provenance")
prov = run["provenance"]
if prov is None:
    st.warning("This run has no provenance record: it is not comparable with other runs.")
else:
    environment = prov.pop("environment", None)
    compiled = run.get("compile") or {}
    facts = {
        "artifact": run["artifact_key"],
        # where the artifact was built: local, a compile host, or a container image (with its digest)
        "compiled by": " on ".join(x for x in (compiled.get("runner"), compiled.get("host")) if x) or None,
        "compile image": compiled.get("image"),
        "job": run["job_id"],
        "created_at": run["created_at"],
        "finished_at": run["finished_at"],
        **prov,
    }
    ui.table([{"field": k, "value": "" if v is None else str(v)} for k, v in facts.items()], "provenance")
    if environment:
        with st.expander("Environment reported by the agent"):
            st.json(environment)
    if run["noise"]:
        with st.expander("Host noise check before the run"):
            st.json(run["noise"])

st.subheader("LoadGen logs")
logs = fetch(loadgen_logs, run["run_id"])
if not logs:
    st.info("This run has no LoadGen logs stored (its agent sent none, or it predates them).")
for kind, name in LOADGEN_LOGS.items():
    log = logs.get(kind)
    if log is not None:
        st.download_button(
            f"Download {name} ({log['size_bytes']:,} bytes)",
            log["content"],
            file_name=name,
            mime="text/plain",
            key=f"log_{kind}",
            on_click="ignore",
        )
