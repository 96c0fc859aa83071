"""open_browser: Debian's Chromium under its ChromeDriver, never a download, a one-line error when missing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from seg.collector.browser import INSTALL_HINT, BrowserError, browser_paths, open_browser
from tests.collector.engine_pages import require_chromium
from tests.collector.loopback import Reply, serve


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """Chromium writes under $HOME/.config and $HOME/.cache."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_missing_chromium_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("SEG_CHROMIUM", str(tmp_path / "no-chromium"))
    with pytest.raises(BrowserError) as caught, open_browser():
        pass
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(tmp_path / "no-chromium"))
    assert "chromium and chromium-driver" in message and "make test" in message and "SEG_CHROMIUM" in message


def test_missing_or_unexecutable_chromedriver_is_refused_before_selenium(monkeypatch, tmp_path):
    driver = tmp_path / "chromedriver"
    driver.write_text("not a program")  # exists, not executable
    monkeypatch.setenv("SEG_CHROMEDRIVER", str(driver))
    monkeypatch.delenv("SE_OFFLINE", raising=False)
    with pytest.raises(BrowserError, match="ChromeDriver not found") as caught:
        browser_paths()
    assert INSTALL_HINT in str(caught.value) and "SEG_CHROMEDRIVER" in str(caught.value)
    assert "SE_OFFLINE" not in os.environ


def test_a_browser_that_will_not_start_is_one_line_and_leaves_no_profile(monkeypatch, tmp_path):
    require_chromium()
    monkeypatch.setenv("SEG_CHROMIUM", "/bin/false")
    monkeypatch.setenv("SE_OFFLINE", "false")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(BrowserError, match="Chromium would not start") as caught, open_browser():
        pass
    assert "\n" not in str(caught.value) and "For documentation" not in str(caught.value)
    assert os.environ["SE_OFFLINE"] == "false"  # restored, not left at "true"
    assert not list(tmp_path.glob("seg-chromium-*"))  # the temporary profile went with the failed start


def test_headless_chromium_loads_a_loopback_page_and_cleans_up(monkeypatch, tmp_path):
    require_chromium()
    monkeypatch.delenv("SE_OFFLINE", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    page = b"<html><body><img class='x' data-src='/a.png'><p id='p'>hello</p></body></html>"
    with serve({"/": Reply(page)}) as server, open_browser() as driver:
        assert os.environ.get("SE_OFFLINE") is None  # only set while the driver starts
        profiles = list(tmp_path.glob("seg-chromium-*"))
        assert len(profiles) == 1
        driver.get(server.url + "/")
        assert driver.execute_script("return document.getElementById('p').textContent") == "hello"
        assert driver.capabilities["browserName"] in ("chrome", "chromium")
        agent = driver.execute_script("return navigator.userAgent")
        assert "HeadlessChrome" in agent
    assert not profiles[0].exists()
    assert "/" in [path for path, _ in server.requests]


def test_chromium_path_comes_from_the_environment(monkeypatch, tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    driver = tmp_path / "chromedriver"
    driver.write_text("#!/bin/sh\n")
    driver.chmod(0o755)
    monkeypatch.setenv("SEG_CHROMIUM", str(fake))
    monkeypatch.setenv("SEG_CHROMEDRIVER", str(driver))
    assert browser_paths() == (Path(fake), Path(driver))
