"""Overview: results first (the latest comparison's winners), then the latest sweeps with their progress
and failures, and the fleet at a glance."""

from __future__ import annotations

from urllib.parse import urlencode

import streamlit as st

from farm.dashboard import ui
from farm.dashboard.data import fetch, inventory
from farm.queries.compare import CompareError, Comparison, compare_targets
from farm.queries.fleet import fleet_list, list_counts
from farm.queries.sweeps import latest_comparable, recent_failures, recent_sweeps

st.title("Overview")

# --- results first: which wins in the newest sweep that ran an FPGA and a CPU or GPU baseline ----------
st.subheader("Latest comparison")
chosen = fetch(latest_comparable)


def comparison(s, pick: dict) -> Comparison | str:
    try:
        return compare_targets(
            s,
            pick["model"],
            scenario=pick["scenario"],
            batch_size=pick["batch_size"],
            sweep_id=pick["sweep_id"],
        )
    except CompareError as exc:
        return str(exc)


if chosen is None:
    st.info(
        "Nothing to compare yet: this section shows which target wins (latency, throughput, perf/W, energy) "
        "in the newest sweep that ran a model on an FPGA and on a CPU or GPU baseline. `farm demo` runs one "
        "(the virtual lab's FPGA boards and this machine's CPU, a few minutes); or `farm submit SWEEP.yaml` "
        "with both kinds of target. Then reload this page."
    )
else:
    result = fetch(comparison, chosen)
    query = {k: chosen[k] for k in ("model", "batch_size", "scenario")} | {"sweep": chosen["sweep_id"]}
    link = f"compare?{urlencode(query)}"
    others = [m for m in chosen["models"] if m != chosen["model"]]
    st.markdown(
        f"**{chosen['model']}** {chosen['scenario']} batch {chosen['batch_size']} in sweep "
        f"[{chosen['name']}]({ui.sweep_link(chosen['sweep_id'])}) of {chosen['created_at'][:16].replace('T', ' ')} "
        f"UTC: {len(chosen['targets'])} targets ({', '.join(chosen['targets'])}). "
        f"[Every figure, interval and ratio in Compare]({link})"
        + (f"; also in this sweep: {', '.join(others)}." if others else ".")
    )
    if isinstance(result, str):
        st.warning(f"This sweep cannot be compared: {result}.")
    elif result.winners:
        emulated = sum(t.source == "emulated" for t in result.targets)
        ui.winners(result.winners, ui.target_labels(result.targets), key="overview_winners")
        if emulated:
            st.caption(
                f"{emulated} of {len(result.targets)} targets are *(emulated)*: the virtual lab's models, "
                "estimates rather than measurements."
            )
    else:
        st.info("No target of this sweep reported a figure to rank (latency, throughput, perf/W, energy).")

# --- the latest sweeps -----------------------------------------------------------------------------
st.subheader("Latest sweeps")
sweeps = fetch(recent_sweeps, 20)
if not sweeps:
    ui.empty("No sweeps yet: run `farm demo`, or `farm submit SWEEP.yaml`, then reload this page.")


def outcome(row: dict) -> str:
    """What happened, in words: a finished sweep with failures says how many, apart from its progress."""
    failed = f", {row['failed']} failed" if row["failed"] else ""
    if row["state"] == "cancelled":
        return f"cancelled{failed}"
    if row["finished"] == row["jobs"]:
        return f"finished{failed}" if row["jobs"] else "no jobs"
    return f"running, {row['finished']}/{row['jobs']} finished{failed}"


def short(at: str | None) -> str | None:
    return at[:16].replace("T", " ") if at else None


table = [
    {
        "name": row["name"],
        "link": ui.sweep_link(row["sweep_id"]),
        "outcome": outcome(row),
        "progress": row["progress"],
        "jobs": row["jobs"],
        "done": row["done"] + row["cached"],
        "failed": row["failed"],
        "running": row["running"],
        "waiting": row["pending"] + row["queued"],
        "created (UTC)": short(row["created_at"]),
        "finished (UTC)": short(row["finished_at"]),
        "labels": row["labels"],
        "sweep_id": row["sweep_id"],
    }
    for row in sweeps
]
ui.table(
    table,
    "sweeps",
    column_config={
        # Progress is how much of the sweep has finished, whatever the outcome: never red. Failures have
        # their own column (and the section below).
        "progress": st.column_config.ProgressColumn(
            "progress",
            min_value=0.0,
            max_value=1.0,
            format="percent",
            color="blue",
            help="Jobs finished (done, cached, failed or cancelled) of all the sweep's jobs",
        ),
        "done": st.column_config.NumberColumn("done", help="Jobs done (or cached)"),
        "failed": st.column_config.NumberColumn("failed", help="Failed jobs: their reasons are listed below"),
        "link": ui.SWEEP_LINK,
        "sweep_id": None,
    },
)

st.subheader("Failures in these sweeps")
failures = fetch(recent_failures, [row["sweep_id"] for row in sweeps])
if failures:
    names = {row["sweep_id"]: row["name"] for row in sweeps}
    ui.table(
        [
            {
                "sweep name": names.get(f["sweep_id"], f["sweep_id"][:8]),
                "link": ui.sweep_link(f["sweep_id"]),
                **{k: v for k, v in f.items() if k != "finished_at"},
                "finished (UTC)": short(f["finished_at"]),
            }
            for f in failures
        ],
        "failures",
        column_config={"link": ui.SWEEP_LINK, "sweep_id": None},
    )
else:
    st.success("No failed jobs in the latest sweeps.")

# --- the fleet, as `farm fleet list` sees it ---------------------------------------------------------
st.subheader("Fleet")
inv, why = inventory()
boards = fetch(fleet_list, inv)
if why:
    st.warning(f"The inventory cannot be read, so no board's state is known: {why}")
counts = list_counts(boards)
if boards:
    for col, (state, n) in zip(st.columns(len(counts)), counts.items(), strict=True):
        col.metric(state, n)
    st.caption("The boards `farm fleet list` shows; the Fleet page has each board, its job and its health.")
else:
    st.caption("No boards yet: they appear once a worker or `farm fleet list` syncs the inventory.")
