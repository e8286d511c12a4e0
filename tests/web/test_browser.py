"""End to end in headless Chromium: sign in, verify scans, trace, resolve an exception, request
and download an export that passes ``dscsa verify-export``; a screenshot of each page.

The service runs for real (aiohttp AppRunner on a free 127.0.0.1 port, SQLite in a temporary
folder) on its own event loop in a thread, since Selenium's calls block. Screenshots go to
``$DSCSA_SCREENSHOTS`` (``DSCSA_SCREENSHOTS=docs/screenshots`` refreshes the README's), else to
a temporary folder.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from service.settings import Settings
from tests.web.accessibility import accessibility_problems
from tests.web.site import PACK, PACK_GTIN, build_app, capture_scenario, site_settings

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
LAPTOP = (1280, 860)
TABLET = (820, 1180)

T = TypeVar("T")

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(
        "needs Debian's chromium and chromium-driver: run .ci/install-browser",
        allow_module_level=True,
    )


class LiveSite:
    """The service on a real socket, served from an event loop in a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.app = build_app(settings)
        self._runner = web.AppRunner(self.app)
        self.url = ""

    def call(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=60)

    async def _start(self) -> str:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()
        self.url = self.call(self._start())

    def stop(self) -> None:
        self.call(self._runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    live = LiveSite(site_settings(tmp_path_factory.mktemp("site")))
    live.start()
    token = live.settings.operator_token_path.read_text().strip()
    live.call(capture_scenario(live.url, token))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("DSCSA_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, downloads: Path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('profile')}")
    options.add_argument(f"--window-size={LAPTOP[0]},{LAPTOP[1]}")
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    yield driver
    driver.quit()


def wait_for(driver: WebDriver, css: str, seconds: float = 10) -> WebElement:
    located: WebElement = WebDriverWait(driver, seconds).until(
        expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css))
    )
    return located


def shoot(driver: WebDriver, folder: Path, name: str, size: tuple[int, int] = LAPTOP) -> Path:
    """A screenshot of the whole page at this width, after the page passes the accessibility
    checks at that width; the window is put back afterwards."""
    driver.set_window_size(*size)
    assert accessibility_problems(driver) == []
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(size[0], max(size[1], int(height) + 140))
    path = folder / f"{name}.png"
    assert driver.save_screenshot(str(path))
    driver.set_window_size(*LAPTOP)
    return path


def sign_in(driver: WebDriver, site: LiveSite, token: str) -> None:
    driver.get(f"{site.url}/ui/sign-in")
    if "/ui/sign-in" not in driver.current_url:
        return  # still signed in from an earlier test
    field = wait_for(driver, "#token")
    field.clear()
    field.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(driver, 10).until(lambda d: "/ui/sign-in" not in d.current_url)


def operator_token(site: LiveSite) -> str:
    return site.settings.operator_token_path.read_text().strip()


def scan(driver: WebDriver, data: str) -> WebElement:
    field = wait_for(driver, "#scan")
    field.clear()
    field.send_keys(data)
    field.submit()
    return wait_for(driver, "#verdict")


def test_sign_in(browser: WebDriver, site: LiveSite, shots: Path) -> None:
    browser.get(f"{site.url}/ui/trace")
    wait_for(browser, "#token").send_keys("not-a-token")
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    assert "not known" in wait_for(browser, "#signin-error").text
    shoot(browser, shots, "sign-in")
    field = browser.find_element(By.ID, "token")
    field.clear()
    field.send_keys(operator_token(site))
    field.submit()
    WebDriverWait(browser, 10).until(lambda d: "/ui/sign-in" not in d.current_url)
    # Asked for the trace page before signing in: that is where sign-in leads.
    assert browser.current_url.endswith("/ui/trace")
    cookie = browser.get_cookie("dscsa_session")
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert operator_token(site) not in cookie["value"]


def test_verify_scans(browser: WebDriver, site: LiveSite, shots: Path) -> None:
    sign_in(browser, site, operator_token(site))
    browser.get(f"{site.url}/ui/verify")
    dispensed = scan(browser, f"https://id.gs1.org/01/{PACK_GTIN}/10/LOT2026A/21/1001?17=280331")
    assert "Not verified" in dispensed.text
    assert "dispensed" in dispensed.text
    # A keyboard-wedge scanner sends GS as Ctrl+]; the page keeps it as a separator.
    field = wait_for(browser, "#scan")
    field.clear()
    field.send_keys(f"01{PACK_GTIN}1728033110LOT2026A")
    webdriver.ActionChains(browser).key_down("\ue009").send_keys("]").key_up("\ue009").perform()
    field.send_keys("211002")
    field.submit()
    verdict = wait_for(browser, "#verdict")
    assert verdict.get_attribute("class") == "verdict good"
    text = verdict.text
    assert "Verified" in text
    assert "Epcistra" in text
    assert "100mg" in text
    assert "LOT2026A" in text
    assert "2028-03-31" in text
    shoot(browser, shots, "verify")
    shoot(browser, shots, "verify-tablet", TABLET)


def test_trace_from_the_verdict(browser: WebDriver, site: LiveSite, shots: Path) -> None:
    sign_in(browser, site, operator_token(site))
    browser.get(f"{site.url}/ui/verify")
    scan(browser, f"(01){PACK_GTIN}(21)1002(10)LOT2026A(17)280331")
    browser.find_element(By.LINK_TEXT, "See this package's history").click()
    timeline = wait_for(browser, ".timeline")
    assert f"{PACK}.1002" in browser.find_element(By.ID, "state-title").text
    steps = [e.text for e in timeline.find_elements(By.CSS_SELECTOR, ".what > strong")]
    assert steps[:2] == ["Commissioned", "Packed"]
    assert "Shipped" in steps
    assert "Received" in steps
    transfer = timeline.find_element(By.CSS_SELECTOR, ".transfer").text
    assert "GS1 Pharma" in transfer
    assert "GS1 Drug Distributor" in transfer
    assert "PO-2026-0042" in transfer
    assert wait_for(browser, "#trace-status").text
    shoot(browser, shots, "trace")


def test_resolve_an_exception(browser: WebDriver, site: LiveSite, shots: Path) -> None:
    sign_in(browser, site, operator_token(site))
    browser.get(f"{site.url}/ui/exceptions")
    Select(wait_for(browser, "#f-type")).select_by_value("received_not_shipped_to_us")
    browser.find_element(By.CSS_SELECTOR, ".filters button").click()
    article = wait_for(browser, "article.exception")
    assert "Received but not shipped to us" in article.text
    shoot(browser, shots, "exceptions")
    exception_id = (article.get_attribute("id") or "").removeprefix("exception-")
    article.find_element(By.TAG_NAME, "textarea").send_keys("Case 2002 was sent on by mistake")
    article.find_element(By.CSS_SELECTOR, ".resolve button").click()
    assert "updated" in wait_for(browser, "#resolved-notice").text
    # The open queue no longer lists it; the resolved one does, with the note.
    assert not browser.find_elements(By.ID, f"exception-{exception_id}")
    Select(wait_for(browser, "#f-status")).select_by_value("resolved")
    browser.find_element(By.CSS_SELECTOR, ".filters button").click()
    resolved = wait_for(browser, f"#exception-{exception_id}")
    assert "Case 2002 was sent on by mistake" in resolved.text


def test_request_download_and_verify_an_export(
    browser: WebDriver, site: LiveSite, shots: Path, downloads: Path
) -> None:
    sign_in(browser, site, operator_token(site))
    browser.get(f"{site.url}/ui/exports")
    Select(wait_for(browser, "#requester_kind")).select_by_value("fda")
    browser.find_element(By.ID, "requester").send_keys("FDA Office of Drug Security")
    browser.find_element(By.ID, "reason").send_keys("Suspect product investigation")
    browser.find_element(By.ID, "incident_number").send_keys("3911-2026-0042")
    Select(browser.find_element(By.ID, "scope_kind")).select_by_value("lot")
    assert not browser.find_element(By.ID, "partner_gln").is_displayed()  # only lot fields
    browser.find_element(By.ID, "gtin").send_keys(PACK_GTIN)
    browser.find_element(By.ID, "lot").send_keys("LOT2026A")
    browser.find_element(By.CSS_SELECTOR, ".export-form button[type=submit]").click()
    download = wait_for(browser, "a.button[download]", seconds=30)
    row = browser.find_element(By.CSS_SELECTOR, "table.exports tbody tr")
    assert "FDA Office of Drug Security" in row.text
    assert "lot LOT2026A" in row.text
    shoot(browser, shots, "exports")
    download.click()
    bundle = _downloaded(downloads)
    checked = subprocess.run(
        [sys.executable, "-m", "service", "verify-export", str(bundle)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _downloaded(folder: Path, seconds: float = 15) -> Path:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done = [p for p in folder.glob("*.zip") if p.stat().st_size > 0]
        if done and not list(folder.glob("*.crdownload")):
            return done[0]
        time.sleep(0.1)
    raise AssertionError(f"no bundle downloaded into {folder}: {os.listdir(folder)}")


def test_dashboard_counts_today(browser: WebDriver, site: LiveSite, shots: Path) -> None:
    sign_in(browser, site, operator_token(site))
    browser.get(f"{site.url}/ui/")
    assert int(wait_for(browser, "#count-verifications").text) >= 3
    assert int(browser.find_element(By.ID, "count-events").text) > 0
    bars = browser.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar")
    assert {b.get_attribute("class") for b in bars} == {"bar events", "bar verifications"}
    shoot(browser, shots, "dashboard")


def test_keyboard_only_sign_out(browser: WebDriver, site: LiveSite) -> None:
    sign_in(browser, site, operator_token(site))
    browser.get(f"{site.url}/ui/exceptions")
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("\ue004")  # Tab: the first stop is the skip link
    assert browser.switch_to.active_element.text == "Skip to content"
    browser.find_element(By.CSS_SELECTOR, ".signout button").send_keys("\ue007")  # Enter
    wait_for(browser, "#token")
    browser.get(f"{site.url}/ui/")
    assert "/ui/sign-in" in browser.current_url
