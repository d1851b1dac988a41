"""report.html in a real headless Chromium: every image loads, no console errors, sorting and filtering work.

Chromium and ChromeDriver come from Debian's chromium and chromium-driver packages
(.ci/run installs them); the test skips, saying why, only where they cannot be found.
A screenshot is saved to test-artifacts/report.png.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from harness.report import write_reports
from tests.report.test_formats import make_run

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.skip("no Chromium/ChromeDriver here: install Debian's chromium and chromium-driver (as .ci/run does)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1800",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=options)
    yield driver
    driver.quit()


def visible_rows(driver, table_id):
    return [row for row in driver.find_elements("css selector", f"#{table_id} tbody tr") if row.is_displayed()]


def test_report_in_headless_chromium(browser, tmp_path):
    run = make_run(tmp_path)
    paths = write_reports(run, tmp_path)
    browser.get(paths["html"].as_uri())
    # lazy images load when scrolled to: bring each into view, then check they all decoded
    browser.execute_script("document.querySelectorAll('img').forEach(function (i) { i.scrollIntoView(); });")
    deadline = time.time() + 15
    while time.time() < deadline:
        pending = browser.execute_script(
            "return Array.from(document.images).filter(function (i) { return i.getAttribute('src') && !(i.complete && i.naturalWidth > 0); }).length;"
        )
        if pending == 0:
            break
        time.sleep(0.2)
    # the lightbox's <img> has no src until a thumbnail is clicked; every other image must have loaded
    total = browser.execute_script(
        "return Array.from(document.images).filter(function (i) { return i.getAttribute('src'); }).length;"
    )
    assert total >= 12 and pending == 0, f"{pending} of {total} images did not load"
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors

    # the first screen (1400 px wide) says what failed and why, before any table
    browser.execute_script("window.scrollTo(0, 0);")
    failures = browser.find_element("id", "failures")
    assert failures.is_displayed() and failures.location["y"] < 400, failures.location
    assert "broken" in failures.text and "crash" in failures.text and "What failed" in failures.text
    assert browser.execute_script("return document.documentElement.scrollWidth;") <= 1400  # nothing overflows
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "report-failing-1400.png"))
    # passing checks are collapsed; the failing ones are at the top already
    assert not visible_rows(browser, "check-table")
    browser.find_element("css selector", "#checks summary").click()
    assert visible_rows(browser, "check-table")

    # sort the metric table by psnr (ascending, then descending)
    browser.execute_script("window.scrollTo(0, 0);")
    header = browser.find_element("css selector", "#metric-table th[data-metric='psnr']")
    header.click()
    names = [row.get_attribute("data-config") for row in visible_rows(browser, "metric-table")]
    assert names == ["broken", "bf16", "fp32", "crash"], names  # the errored configuration has no value: last
    header.click()
    names = [row.get_attribute("data-config") for row in visible_rows(browser, "metric-table")]
    assert names == ["fp32", "bf16", "broken", "crash"], names

    # filter by configuration name, then by metric
    box = browser.find_element("id", "filter-config")
    box.send_keys("bf1")
    assert [row.get_attribute("data-config") for row in visible_rows(browser, "metric-table")] == ["bf16"]
    assert {row.get_attribute("data-config") for row in visible_rows(browser, "check-table")} == {"bf16"}
    box.clear()
    box.send_keys(" ")
    box.clear()
    browser.execute_script(
        "var i = document.getElementById('filter-config'); i.value = ''; i.dispatchEvent(new Event('input'));"
    )
    select = browser.find_element("id", "filter-metric")
    select.find_element("css selector", "option[value='psnr']").click()
    rows = visible_rows(browser, "check-table")
    assert rows and all(row.get_attribute("data-metric") == "psnr" for row in rows)

    ARTIFACTS.mkdir(exist_ok=True)
    browser.execute_script("window.scrollTo(0, 0);")
    browser.save_screenshot(str(ARTIFACTS / "report.png"))
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000

    # a thumbnail enlarges on click, and Escape closes it
    thumb = browser.find_element("css selector", "img.thumb")
    browser.execute_script("arguments[0].scrollIntoView();", thumb)
    thumb.click()
    assert browser.find_element("id", "lightbox").is_displayed()
    browser.save_screenshot(str(ARTIFACTS / "report-lightbox.png"))
