"""Headless Chromium for web image search, started through Selenium 4 with the system's own binaries.

seg never lets Selenium download anything: the ChromeDriver path is always given to the ``Service`` (Selenium Manager
only runs when it is missing) and ``SE_OFFLINE=true`` is set while the driver starts, as a safety net. The binaries are
Debian's ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``, ``/usr/bin/chromedriver``; ``make test``
installs them), or the paths in ``SEG_CHROMIUM`` and ``SEG_CHROMEDRIVER``.

Each browser gets a fresh temporary profile (``--user-data-dir``), removed when it closes, so no cookies, consent
answers or history leak from one run into the next. Background networking (component updates, sync, QUIC) is off: the
only requests the browser makes are the pages it is told to open and what they load. Chromium still writes under
``$HOME/.config`` and ``$HOME/.cache``; tests point ``HOME`` at a temporary folder.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from seg.errors import SegError

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

logger = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: Flags that work as root on a closed network (see REAL-COMPONENTS.md); ``--headless=new`` is added when headless.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
)
INSTALL_HINT = (
    "install Debian's chromium and chromium-driver (`apt-get install chromium chromium-driver`; `make test` does it)"
)


class BrowserError(SegError):
    """Chromium or ChromeDriver is missing or would not start."""


def browser_paths() -> tuple[Path, Path]:
    """The Chromium and ChromeDriver executables: ``SEG_CHROMIUM`` / ``SEG_CHROMEDRIVER`` or Debian's paths.

    Raises:
        BrowserError: one of them is missing or not executable.
    """
    chromium = Path(os.environ.get("SEG_CHROMIUM") or CHROMIUM)
    chromedriver = Path(os.environ.get("SEG_CHROMEDRIVER") or CHROMEDRIVER)
    for path, name, variable in (
        (chromium, "Chromium", "SEG_CHROMIUM"),
        (chromedriver, "ChromeDriver", "SEG_CHROMEDRIVER"),
    ):
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise BrowserError(f"{name} not found: {INSTALL_HINT}, or set {variable}", path=path)
    return chromium, chromedriver


@contextmanager
def open_browser(
    *,
    headless: bool = True,
    window_size: tuple[int, int] = (1280, 1024),
    page_load_timeout: float = 30.0,
    language: str = "en-US",
) -> Iterator[WebDriver]:
    """Start Chromium under ChromeDriver and quit it (and delete its temporary profile) when the block ends.

    Args:
        headless: no window (the default); ``False`` shows the browser, which needs a display.
        window_size: the window's width and height in pixels (result pages lay out more items in a wider window).
        page_load_timeout: seconds a page may take to load before the driver gives up.
        language: the browser's UI language, which engines use to pick the language of their pages.

    Yields:
        a Selenium ``WebDriver``.

    Raises:
        BrowserError: selenium is not installed, a binary is missing, or the browser would not start.
    """
    chromium, chromedriver = browser_paths()
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        raise BrowserError("selenium is not installed: pip install 'selenium>=4.20'") from e

    profile = Path(tempfile.mkdtemp(prefix="seg-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    if headless:
        options.add_argument("--headless=new")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={window_size[0]},{window_size[1]}")
    options.add_argument(f"--lang={language}")
    options.add_argument(f"--user-data-dir={profile}")
    try:
        with _offline_selenium():
            try:
                driver = webdriver.Chrome(service=Service(str(chromedriver)), options=options)
            except WebDriverException as e:
                raise BrowserError(f"Chromium would not start: {_reason(e)}", path=chromium) from e
        logger.debug("started %s under %s (profile %s)", chromium, chromedriver, profile)
        try:
            driver.set_page_load_timeout(page_load_timeout)
            yield driver
        finally:
            try:
                driver.quit()
            except WebDriverException as e:  # the browser already died; its profile still goes
                logger.debug("quitting Chromium failed: %s", e)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@contextmanager
def _offline_selenium() -> Iterator[None]:
    """``SE_OFFLINE=true`` for the duration of the block, then the variable as it was."""
    before = os.environ.get("SE_OFFLINE")
    os.environ["SE_OFFLINE"] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("SE_OFFLINE", None)
        else:
            os.environ["SE_OFFLINE"] = before


def _reason(error: Exception) -> str:
    """The first line of a WebDriver error, without Selenium's pointer to its troubleshooting pages."""
    text = (getattr(error, "msg", None) or str(error)).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line.split("; For documentation")[0]
