"""A real browser for the project's HTML pages: Playwright driving the system's chromium (Debian's
``chromium`` package; Playwright's own browser download is never used). The browser tests
(tests/test_pages.py) and the README screenshots (``python -m raft.testing screenshots docs``) use
the same launch and the same screenshot code.

    with browser() as b:                      # raises BrowserMissing naming what is missing
        page = b.new_page(viewport=VIEWPORT)
        page.goto(path.as_uri())
        screenshot(page, "docs/viewer.png")
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # without these chromium keeps calling out (a closed network floods)
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 900}


class BrowserMissing(RuntimeError):
    """Playwright or chromium is not installed (the message says which and how to install it)."""


def chromium_path() -> str | None:
    """RAFT_CHROMIUM, else ``chromium`` on PATH, else /usr/bin/chromium; None when none is there."""
    for path in (os.environ.get("RAFT_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if path and Path(path).is_file() and os.access(path, os.X_OK):
            return path
    return None


@contextmanager
def browser() -> Iterator[Any]:
    """One headless chromium (a Playwright ``Browser``), closed at the end."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise BrowserMissing("playwright is not installed (pip install playwright; the dev extra has it)") from None
    executable = chromium_path()
    if executable is None:
        raise BrowserMissing("chromium is not installed (apt-get install chromium, or set RAFT_CHROMIUM)")
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


def screenshot(page: Any, path: str | Path, full_page: bool = True) -> Path:
    """A PNG of the page (the whole page, or the viewport); checked to be a real, non-blank PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=full_page)
    png = path.read_bytes()
    if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) <= 5000:
        raise RuntimeError(f"{path}: the screenshot is not a PNG of a page ({len(png)} bytes)")
    return path
