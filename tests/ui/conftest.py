"""A served system with its web UI, and a headless Chromium (Debian's `chromium` and `chromium-driver`,
driven by Selenium) to look at it as a person does."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from support.processes import Child
from support.ui import TOKEN, Ui


@pytest.fixture(scope="session")
def served_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    """Workers, the feed, and a token for actions."""
    yield from _serve(tmp_path_factory.mktemp("ui"), "--workers", "4", "--http-token", TOKEN)


@pytest.fixture(scope="session")
def tokenless_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    """No token: the UI only reads."""
    yield from _serve(tmp_path_factory.mktemp("ui-tokenless"), "--no-feed")


def _serve(folder: Path, *extra: str) -> Iterator[Ui]:
    args = ["serve", "--state-dir", str(folder / ".aether"), "--http", "127.0.0.1:0", *extra]
    child = Child("serve", args, folder / "logs")
    try:
        web = asyncio.run(child.start("web UI on")).split("web UI on ", 1)[1].strip()
        nats = re.search(r"serving on (\S+)", child.log_path.read_text())
        assert nats is not None, child.tail()
        yield Ui(web, nats.group(1))
    finally:
        child.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    """In CI (`CI` set, as `.ci/run` is run) a missing browser fails the tests; on a developer's machine
    without one the browser tests are skipped, saying what to install, and the rest of the suite runs."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        missing = "the browser tests need Debian's browser: apt-get install chromium chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800"):
        options.add_argument(argument)
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    try:
        yield chrome
    finally:
        chrome.quit()
