"""The report's index.html in a real headless Chromium: every image loads, nothing overflows, the page is not blank.

Needs chromium and chromedriver (Debian packages; `make test` installs them) and selenium. Selenium is given
both binaries explicitly, so selenium-manager never looks for (or downloads) a driver.

Run: python -m pytest tests/eval/report/test_report_browser.py -q
"""

from __future__ import annotations

import io
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from eval.report import write_report
from tests.eval.report.sample_run import make_report_data

PAGE_WIDTH = 1280
NARROW_WIDTH = 700  # images must shrink to fit, never scroll sideways


def _missing(what: str) -> None:
    message = f"{what} not found; `make test` installs chromium, chromium-driver and selenium"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def driver(tmp_path):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not browser or not chromedriver:
        _missing("chromium" if not browser else "chromedriver")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={PAGE_WIDTH},1000"):
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    chrome = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


def test_report_renders_in_chromium(driver, tmp_path):
    index = write_report(tmp_path / "report", make_report_data())
    driver.get(index.as_uri())

    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]);"
    )
    assert len(images) == 5
    broken = [src for src, complete, width in images if not (complete and width > 0)]
    assert not broken, f"images that did not load: {broken}"

    driver.set_window_size(NARROW_WIDTH, 1000)
    overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth;")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at {NARROW_WIDTH}px"

    driver.set_window_size(PAGE_WIDTH, 1000)
    shot = np.asarray(Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")).reshape(-1, 3)
    colours, counts = np.unique(shot, axis=0, return_counts=True)
    assert len(colours) > 100, f"only {len(colours)} colours on screen"
    assert counts.max() / counts.sum() < 0.99, "the screenshot is nearly one colour"
