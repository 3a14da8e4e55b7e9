"""A real browser on a running `farm dashboard`: headless Chromium (Debian's chromium + chromium-driver)
opens every page on 127.0.0.1, waits for it to render, finds no Streamlit error element, and saves a
screenshot under the test's tmp dir."""

from __future__ import annotations

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
from tests.dashboard.conftest import SWEEP_ID

# URL path (+ shared filters) -> the page's title; Overview, the default page, lives at "/"
PAGES = {
    "": "Overview",
    "compare?model=resnet18&precision=int8&batch_size=1&scenario=SingleStream&emulated=1": "Compare targets",
    "run": "Run detail",
    "trends?target=zcu104&metric=latency_ms_p50": "Trends",
    f"sweep?sweep={SWEEP_ID}": "Sweep detail",
    "fleet": "Fleet",
    "compare?model=no-such-model": "Compare targets",  # an unknown filter value: a warning, not an error
}


@pytest.fixture
def dashboard_url(seeded_db: str, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "FARM_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
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
        "--window-size=1400,1800",
    ):
        options.add_argument(arg)
    options.binary_location = chromium
    d = webdriver.Chrome(service=Service(driver), options=options)  # an explicit driver: nothing downloaded
    d.set_page_load_timeout(60)
    yield d
    d.quit()


def test_every_page_in_a_real_browser(dashboard_url: str, browser, tmp_path: Path) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shots = tmp_path / "screenshots"
    shots.mkdir()
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
        shot = shots / f"{n}-{path.split('?')[0] or 'overview'}.png"
        browser.save_screenshot(str(shot))
        assert not errors, f"{path}: {[e.text[:500] for e in errors]}"
        assert not dialogs, f"{path}: {dialogs}"  # e.g. Streamlit's "Page not found"
        assert shot.stat().st_size > 10_000
        if "no-such-model" in path:
            alerts = " ".join(
                e.text for e in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stAlert"]')
            )
            assert "Unknown model 'no-such-model'" in alerts
        else:
            assert browser.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"]'), path
    print(f"screenshots in {shots}")
