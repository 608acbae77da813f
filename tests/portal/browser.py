"""Debian's Chromium driven by Playwright for the portal's tests: never a browser download."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from seoulchain.bench.portal import CHROMIUM, CHROMIUM_ARGS

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "portal"
# Schemes a page may load without a network request: a downloaded export, an empty icon.
LOCAL_SCHEMES = ("blob", "data", "about")


def require_chromium() -> None:
    """Skip the calling test when Debian's chromium is not installed."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing: run ./scripts/install-chromium")


@contextmanager
def launch_chromium() -> Iterator[object]:
    """Yield a headless Chromium (Playwright) from /usr/bin/chromium with a fresh profile."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                             args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def foreign_requests(urls: list[str], origin: str) -> list[str]:
    """Return the requested URLs that went anywhere but `origin` (scheme://host:port)."""
    expected = urlsplit(origin)
    return [url for url in urls if urlsplit(url).scheme not in LOCAL_SCHEMES
            and urlsplit(url)[:2] != expected[:2]]
