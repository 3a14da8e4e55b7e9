"""A real browser on a running `farm dashboard`: headless Chromium (Debian's chromium + chromium-driver)
opens every page on 127.0.0.1 at 1366x768 and at 1920x1080, waits for it to render, finds no Streamlit error
element, saves a screenshot of the first screen (under the test's tmp dir, and under FARM_SCREENSHOTS_DIR
when that is set: look at them), and checks what a reader sees first:

- Overview and Compare: the "which wins" figures are on the first screen, before the progress bars;
- Overview: no progress bar is red (a finished sweep with failures counts its failures apart);
- Fleet: a board the lab file no longer lists (after `farm lab down`) is offline, not idle;
- Trends: the change since the first point says better or worse, a flagged run is called out;
- Run detail: the note on the trace axes (power from 0, no exaggerated wiggles).
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.dashboard.conftest import SWEEP_ID, write_lab

SIZES = ((1366, 768), (1920, 1080))
# URL path (+ shared filters) -> the page's title; Overview, the default page, lives at "/"
PAGES = {
    "": "Overview",
    "compare?model=resnet18&precision=int8&batch_size=1&scenario=SingleStream&emulated=1": "Compare targets",
    "run": "Run detail",
    "trends?target=vck190&metric=latency_ms_p50": "Trends",  # its latest run is flagged
    "alerts": "Alerts",
    "procurement": "Procurement",
    f"sweep?sweep={SWEEP_ID}": "Sweep detail",
    "fleet": "Fleet",
    "compare?model=no-such-model": "Compare targets",  # an unknown filter value: a warning, not an error
}


@pytest.fixture
def dashboard_url(seeded_db: str, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    # The lab as after `farm lab down` of the lab that held zcu104-01: the database still has the board.
    lab = write_lab(tmp_path / "lab-after-down.yaml", ["cpu", "vck190"])
    env = {
        **os.environ,
        "FARM_DATA_DIR": str(tmp_path / "data"),
        "FARM_LAB": str(lab),
        "PYTHONUNBUFFERED": "1",
    }
    log = (tmp_path / "dashboard.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "farm.cli.main", "dashboard", "--port", str(port), "--db", seeded_db],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as resp:
                if resp.read().strip() == b"ok":
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"farm dashboard did not start: {(tmp_path / 'dashboard.log').read_text()[-2000:]}")
        time.sleep(0.2)
    yield url
    os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and anything it started
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    log.close()


@pytest.fixture
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.fail("chromium and chromium-driver are not installed (make test installs them)")
    options = webdriver.ChromeOptions()
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    options.binary_location = chromium
    d = webdriver.Chrome(service=Service(driver), options=options)  # an explicit driver: nothing downloaded
    d.set_page_load_timeout(60)
    yield d
    d.quit()


def texts(browser, css: str) -> str:
    from selenium.webdriver.common.by import By

    return " ".join(e.text for e in browser.find_elements(By.CSS_SELECTOR, css))


def first_screen(browser, css: str) -> None:
    """The element is wholly inside the first screen (the viewport before any scrolling)."""
    from selenium.webdriver.common.by import By

    el = browser.find_element(By.CSS_SELECTOR, css)
    viewport = browser.execute_script("return window.innerHeight")
    top, height = el.location["y"], el.size["height"]
    assert height > 40 and top + height <= viewport, f"{css}: y {top} + {height} > the first {viewport} px"


def red_and_blue_pixels(png: bytes) -> tuple[int, int]:
    """Pixels of Streamlit's red (its primary colour, #ff4b4b) and of a blue progress bar."""
    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    red = (r > 200) & (g < 120) & (b < 120)
    blue = (b > 180) & (r < 120) & (g > 90) & (g < 180)
    return int(red.sum()), int(blue.sum())


def check_page(browser, path: str, size: tuple[int, int]) -> None:
    """What the page must show at this size (DOM checks; the screenshots are for eyes)."""
    from selenium.webdriver.common.by import By

    page = path.split("?")[0]
    if "no-such-model" in path:
        assert "Unknown model 'no-such-model'" in texts(browser, '[data-testid="stAlert"]')
        return
    if page in ("", "compare"):
        key = ".st-key-overview_winners" if page == "" else ".st-key-compare_winners"
        first_screen(browser, key)  # the answer before any scrolling, at 1366x768 too
        assert "vck190 (emulated)" in texts(browser, key)
    if page == "" and size == SIZES[0]:
        winners = browser.find_element(By.CSS_SELECTOR, ".st-key-overview_winners")
        sweeps = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"]')[0]
        assert winners.location["y"] < sweeps.location["y"], "results lead, progress follows"
        browser.execute_script("arguments[0].scrollIntoView()", sweeps)
        time.sleep(0.3)
        red, blue = red_and_blue_pixels(sweeps.screenshot_as_png)
        assert red == 0 and blue > 100, f"progress bars: {red} red pixels, {blue} blue"
        browser.execute_script("window.scrollTo(0, 0)")
    if page == "fleet":
        metrics = {
            m.find_element(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]').text: m.find_element(
                By.CSS_SELECTOR, '[data-testid="stMetricValue"]'
            ).text
            for m in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]')
        }
        assert metrics.get("offline") == "1" and metrics.get("idle") == "1", metrics  # not 2 idle
        assert "zcu104-01" in texts(browser, '[data-testid="stAlert"]')
    if page == "trends":
        assert "since the first point: better" in texts(browser, '[data-testid="stMetricDelta"]')
        assert "1 run(s) carry flags" in texts(browser, '[data-testid="stCaptionContainer"]')
    if page == "run":
        assert "Power axes start at 0" in texts(browser, '[data-testid="stCaptionContainer"]')
    assert browser.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"]'), path


def test_every_page_in_a_real_browser(dashboard_url: str, browser, tmp_path: Path) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shots = tmp_path / "screenshots"
    shots.mkdir()
    keep = Path(os.environ["FARM_SCREENSHOTS_DIR"]) if os.environ.get("FARM_SCREENSHOTS_DIR") else None
    for width, height in SIZES:
        browser.set_window_size(width, height)
        for n, (path, title) in enumerate(PAGES.items()):
            browser.get(f"{dashboard_url}/{path}")
            # elements are replaced while the page draws: a stale one is looked up again
            wait = WebDriverWait(
                browser, 45, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)
            )
            wait.until(lambda d, t=title: any(h.text == t for h in d.find_elements(By.TAG_NAME, "h1")))
            # the script has finished and every chart has been drawn
            wait.until(
                lambda d: (
                    d.find_elements(By.CSS_SELECTOR, '[data-test-script-state="notRunning"]')
                    and not d.find_elements(By.CSS_SELECTOR, '[data-testid="stSkeleton"]')
                )
            )
            time.sleep(0.5)
            errors = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
            dialogs = [d.text for d in browser.find_elements(By.CSS_SELECTOR, '[role="dialog"]')]
            name = "no-such-model" if "no-such-model" in path else (path.split("?")[0] or "overview")
            shot = shots / f"{width}x{height}-{n}-{name}.png"
            browser.save_screenshot(str(shot))
            if keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
                shutil.copy(shot, keep / shot.name)
            assert not errors, f"{path}: {[e.text[:500] for e in errors]}"
            assert not dialogs, f"{path}: {dialogs}"  # e.g. Streamlit's "Page not found"
            assert shot.stat().st_size > 10_000
            check_page(browser, path, (width, height))
    print(f"screenshots in {shots}" + (f" and {keep}" if keep else ""))
