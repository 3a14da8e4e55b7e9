"""Time the dashboard on a big database: each page's queries (goal < 300 ms) and each page's render
(goal < 2 s, a full AppTest run of the page script: queries, pandas, charts, widgets).

    .venv/bin/python bench/dashboard_seed.py --db sqlite:////tmp/dash.db --runs 100000
    .venv/bin/python bench/dashboard_perf.py --db sqlite:////tmp/dash.db --db postgresql+psycopg://...

Queries are timed the way a page runs them (one session per call, as dashboard/data.fetch does), with the
page's default selection; the median and the worst of --repeat runs are printed. Renders: one cold run
first (imports, caches), then the median and worst of --renders runs. With --browser N, each page is also
loaded N times in headless Chromium from a real `farm dashboard`: a fresh load of its URL (Streamlit's
JavaScript boot included) and a switch to it from the sidebar, each until the page is drawn (see time_browser).
The render goal is checked against the AppTest run and the in-app switch.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from support import ROOT  # before farm: puts the checkout on sys.path

from farm.db.migrate import ensure_schema
from farm.db.models import RunRow
from farm.db.session import dispose_engines, redact, session_scope
from farm.queries.compare import CompareError, compare_targets, sweeps_for_model
from farm.queries.fleet import board_events, fleet_list, health_summary
from farm.queries.runs import (
    fingerprints,
    latest_runs,
    run_detail,
    selection_options,
    trend,
)
from farm.queries.sweeps import (
    latest_comparable,
    recent_failures,
    recent_sweeps,
    sweep_choices,
    sweep_header,
    sweep_jobs,
)

PAGES = ("overview", "compare", "run_detail", "trends", "sweep_detail", "fleet")
QUERY_GOAL_MS, RENDER_GOAL_S = 300.0, 2.0


def call(url: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    with session_scope(url) as s:
        return fn(s, *args, **kwargs)


def default_selection(options: list[dict[str, Any]]) -> dict[str, Any]:
    """What Compare and Trends show first: the first model, int8, the smallest batch, SingleStream."""
    rows = options
    chosen: dict[str, Any] = {}
    for key, preferred in (
        ("model", None),
        ("precision", "int8"),
        ("batch_size", None),
        ("scenario", "SingleStream"),
    ):
        values = sorted({r[key] for r in rows})
        chosen[key] = preferred if preferred in values else values[0]
        rows = [r for r in rows if r[key] == chosen[key]]
    chosen["target"] = sorted({r["target"] for r in rows})[0]
    return chosen


def _inventory() -> Any:
    """The lab the dashboard reads (FARM_LAB); None when it cannot be read (the page says so)."""
    from farm.config import load_settings
    from farm.inventory import load_inventory

    try:
        return load_inventory(load_settings().inventory_dir)
    except Exception:
        return None


def page_queries(url: str, page: str) -> None:
    """The queries `page` runs on its first load."""
    if page == "overview":  # dashboard/views/overview.py: the latest comparison first, then sweeps, fleet
        pick = call(url, latest_comparable)
        if pick is not None:
            with contextlib.suppress(CompareError):
                call(
                    url,
                    compare_targets,
                    model=pick["model"],
                    scenario=pick["scenario"],
                    batch_size=pick["batch_size"],
                    sweep_id=pick["sweep_id"],
                )
        sweeps = call(url, recent_sweeps, 20)
        call(url, recent_failures, [w["sweep_id"] for w in sweeps])
        call(url, fleet_list, _inventory())
    elif page == "compare":  # dashboard/views/compare.py: the page's own three queries
        sel = default_selection(call(url, selection_options))
        call(url, sweeps_for_model, sel["model"], sel["scenario"], sel["batch_size"])
        with contextlib.suppress(CompareError):  # the page says why; the query time still counts
            call(
                url,
                compare_targets,
                model=sel["model"],
                scenario=sel["scenario"],
                batch_size=sel["batch_size"],
                include_emulated=True,
            )
    elif page == "run_detail":
        recent = call(url, latest_runs, 200)
        call(url, run_detail, recent[0]["run_id"])
    elif page == "trends":
        sel = default_selection(call(url, selection_options))
        groups = call(url, fingerprints, **sel)
        call(url, trend, groups[0]["fingerprint"], "latency_ms_p90")
    elif page == "sweep_detail":
        choices = call(url, sweep_choices, 500)
        call(url, sweep_header, choices[0]["sweep_id"])
        call(url, sweep_jobs, choices[0]["sweep_id"])
    elif page == "fleet":  # as `farm fleet list` sees it (dashboard/views/fleet.py)
        call(url, fleet_list, _inventory())
        call(url, health_summary, 7.0)
        call(url, board_events, None, 500)


def time_queries(url: str, page: str, repeat: int) -> list[float]:
    page_queries(url, page)  # warm: connection pool, statement caches
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        page_queries(url, page)
        out.append((time.perf_counter() - started) * 1000)
    return out


def time_render(url: str, page: str, renders: int) -> tuple[float, list[float], list[str]]:
    from streamlit.testing.v1 import AppTest

    os.environ["FARM_DB_URL"] = url
    script = str(ROOT / "dashboard" / "views" / f"{page}.py")
    times, problems = [], []
    for i in range(renders + 1):
        at = AppTest.from_file(script, default_timeout=60)
        started = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - started)
        if i == 0:
            # an exception, or the page's own "cannot read the database" line (red notes about failed jobs or
            # bad boards are content, not problems)
            problems = [e.value for e in at.exception] + [e.value for e in at.error if "database" in e.value]
    return times[0], times[1:], problems


BROWSER_PAGES = {  # page -> (URL path, title)
    "overview": ("", "Overview"),  # the default page's URL is the app's root
    "compare": ("compare", "Compare targets"),
    "run_detail": ("run", "Run detail"),
    "trends": ("trends", "Trends"),
    "sweep_detail": ("sweep", "Sweep detail"),
    "fleet": ("fleet", "Fleet"),
}


def time_browser(url: str, loads: int) -> dict[str, dict[str, list[float]]]:
    """Headless Chromium against a real `farm dashboard` on a free loopback port. Per page: "load" = a
    fresh navigation to its URL (Streamlit's JavaScript boots, opens its websocket, runs the script, draws);
    "switch" = a click on its sidebar link from the page before (what a user does once the app is open).
    Both end when the page's title is shown, its script has finished and nothing is still loading."""
    import shutil
    import signal
    import socket
    import subprocess
    import urllib.request

    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = [sys.executable, "-m", "farm.cli.main", "dashboard", "--port", str(port), "--db", url]
    server = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    options = webdriver.ChromeOptions()
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-dev-shm-usage", "--window-size=1400,1800"):  # fmt: skip
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium") or "chromium"
    driver = None

    def finished(title: str):
        return lambda d: (
            any(h.text == title for h in d.find_elements(By.TAG_NAME, "h1"))
            and d.find_elements(By.CSS_SELECTOR, '[data-test-script-state="notRunning"]')
            and not d.find_elements(By.CSS_SELECTOR, '[data-testid="stSkeleton"]')
        )

    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
        wait = WebDriverWait(
            driver, 60, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,)
        )
        out: dict[str, dict[str, list[float]]] = {page: {"load": [], "switch": []} for page in BROWSER_PAGES}
        for round_ in range(loads + 1):  # round 0 warms the server's imports and the browser's cache
            for page, (path, title) in BROWSER_PAGES.items():
                driver.get("about:blank")
                started = time.perf_counter()
                driver.get(f"{base}/{path}")
                wait.until(finished(title))
                if round_:
                    out[page]["load"].append(time.perf_counter() - started)
            for page, (_path, title) in BROWSER_PAGES.items():
                links = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNavLink"]')
                link = next(a for a in links if a.text.strip().splitlines()[-1] == title.split(" targets")[0])
                started = time.perf_counter()
                link.click()
                wait.until(finished(title))
                if round_:
                    out[page]["switch"].append(time.perf_counter() - started)
        return out
    finally:
        if driver is not None:
            driver.quit()
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)


def bench(url: str, repeat: int, renders: int, browser_loads: int = 0) -> list[dict[str, Any]]:
    ensure_schema(url)
    with session_scope(url) as s:
        runs = s.scalar(select(func.count()).select_from(RunRow))
    print(f"\n{redact(url)}: {runs:,} runs")
    browser = time_browser(url, browser_loads) if browser_loads else {}
    print(
        f"{'page':<14}{'queries ms (median / worst)':>30}{'render s (median / worst)':>28}{'cold s':>9}"
        + (f"{'browser load s':>18}{'switch s':>16}" if browser else "")
    )
    out = []
    for page in PAGES:
        q = time_queries(url, page, repeat)
        cold, r, problems = time_render(url, page, renders)
        row = {
            "page": page,
            "query_ms_median": statistics.median(q),
            "query_ms_max": max(q),
            "render_s_median": statistics.median(r),
            "render_s_max": max(r),
            "render_s_cold": cold,
            "problems": problems,
        }
        if browser:
            for kind in ("load", "switch"):
                row[f"browser_{kind}_s_median"] = statistics.median(browser[page][kind])
                row[f"browser_{kind}_s_max"] = max(browser[page][kind])
        out.append(row)
        worst_render = max(row["render_s_max"], row.get("browser_switch_s_max", 0.0))
        flag = "" if row["query_ms_max"] < QUERY_GOAL_MS and worst_render < RENDER_GOAL_S else "  OVER GOAL"
        print(
            f"{page:<14}{row['query_ms_median']:>18.1f} / {row['query_ms_max']:<9.1f}"
            f"{row['render_s_median']:>16.2f} / {row['render_s_max']:<9.2f}{cold:>7.2f}"
            + (
                f"{row['browser_load_s_median']:>10.2f} / {row['browser_load_s_max']:<5.2f}"
                f"{row['browser_switch_s_median']:>8.2f} / {row['browser_switch_s_max']:<5.2f}"
                if browser
                else ""
            )
            + flag
        )
        for p in problems:
            print(f"    problem on the page: {p[:200]}")
    dispose_engines()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", action="append", required=True, help="a seeded database URL (repeatable)")
    parser.add_argument("--repeat", type=int, default=10, help="query timings per page")
    parser.add_argument("--renders", type=int, default=3, help="warm renders per page")
    parser.add_argument(
        "--browser",
        type=int,
        default=0,
        metavar="N",
        help="also time N loads of each page in headless Chromium",
    )
    args = parser.parse_args()
    for url in args.db:
        bench(url, args.repeat, args.renders, args.browser)


if __name__ == "__main__":
    main()
