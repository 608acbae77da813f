"""`seoulchain bench portal`: how soon the node's portal shows its overview in Chromium.

Theory of operation: a fresh one-validator network (bench/network.py, a real `seoulchain
start` process) gets a few committed notary anchors so the overview has blocks and
transactions to show. Then, `runs` times, a new browser context (an empty cache, as a
citizen's first visit) opens `/portal/` and waits until the overview is drawn: the portal
sets `performance.mark("portal-ready")` once its first page has rendered with the node's
data (status, latest blocks, latest transactions). Two figures per run, both from the
navigation start, read from the page's own Performance API:

- first contentful paint: the browser first paints text (the header);
- first render: the overview is complete (the `portal-ready` mark).

The browser is Debian's chromium (/usr/bin/chromium, scripts/install-chromium) driven by
Playwright; it is never downloaded. Browser and node share this machine and loopback.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from seoulchain.bench.ledger import build_anchor
from seoulchain.bench.loadgen import compute_percentile
from seoulchain.bench.network import NODE_START_TIMEOUT_S, LocalNetwork
from seoulchain.errors import LocalError

CHROMIUM = Path("/usr/bin/chromium")
# The switches the portal's tests use too: no background traffic, no GPU in containers.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking",
                 "--disable-component-update", "--disable-gpu", "--no-first-run",
                 "--disable-sync"]
# Anchors committed before measuring: enough to fill the overview's latest-txs list.
SEED_TXS = 12
# How long one page may take to render before the run is called failed.
RENDER_TIMEOUT_MS = 30_000
# Runs the command accepts: each is a cold page load of a second or less.
RUNS_MAX = 1000
# Seconds a seed transaction may take to commit.
COMMIT_WAIT_S = 30.0
Progress = Callable[[str], None]

READ_TIMINGS_JS = """() => ({
  ready_ms: performance.getEntriesByName("portal-ready")[0]?.startTime ?? null,
  paint_ms: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null,
})"""


@dataclass
class PortalBenchResult:
    """The figures of one `bench portal` run, in milliseconds from navigation start."""

    runs: int
    first_render_ms_p50: float | None
    first_render_ms_p95: float | None
    first_render_ms_max: float | None
    first_paint_ms_p50: float | None
    requests_per_load: int
    chromium: str
    cores: int
    load_average: list[float]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def measure_portal_first_render(portal_url: str, runs: int
                                ) -> tuple[list[float], list[float], int, str]:
    """Open `portal_url` `runs` times in Chromium, each in a fresh context; return the
    sorted first render and first paint times (ms), the requests one load made before
    its first render, and the browser's version."""
    if not CHROMIUM.exists():
        raise LocalError(f"{CHROMIUM} is missing: run ./scripts/install-chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise LocalError("bench portal needs playwright: pip install 'seoulchain[portal]'") \
            from exc
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                             args=CHROMIUM_ARGS)
        try:
            renders, paints, requests = time_first_renders(browser, portal_url, runs)
            return renders, paints, requests, browser.version
        finally:
            browser.close()


def time_first_renders(browser: Any, portal_url: str, runs: int
                       ) -> tuple[list[float], list[float], int]:
    """Return the sorted first render and first paint times (ms) of `runs` cold loads of
    `portal_url` in a running Playwright `browser`, and the requests of the last load."""
    from playwright.sync_api import Error as PlaywrightError

    renders, paints, requested = [], [], 0
    for _ in range(runs):
        context = browser.new_context()
        page = context.new_page()
        urls: list[str] = []
        page.on("request", lambda request, urls=urls: urls.append(request.url))
        try:
            page.goto(portal_url)
            page.wait_for_selector("body[data-ready]", timeout=RENDER_TIMEOUT_MS)
            timings = page.evaluate(READ_TIMINGS_JS)
            requested = len(urls)
        except PlaywrightError as exc:
            raise LocalError(f"the portal did not render: {exc}") from exc
        finally:
            context.close()
        renders.append(timings["ready_ms"])
        if timings["paint_ms"] is not None:
            paints.append(timings["paint_ms"])
    return sorted(renders), sorted(paints), requested


def run_portal_bench(runs: int = 20, progress: Progress = lambda text: None
                     ) -> PortalBenchResult:
    """Start a one-validator network with a few txs and time the portal's first render."""
    if not 1 <= runs <= RUNS_MAX:
        raise LocalError(f"runs is 1..{RUNS_MAX}, not {runs}")
    with tempfile.TemporaryDirectory(prefix="seoulchain-bench-portal-") as scratch, \
            LocalNetwork.create(Path(scratch) / "net", 1, issuers=1) as network:
        network.start_all()
        network.wait_until(lambda: network.get_height(0) is not None, NODE_START_TIMEOUT_S,
                           "the node's API")
        progress(f"seeding {SEED_TXS} committed transactions")
        seed_anchors(network)
        progress(f"opening the portal {runs} times in Chromium")
        renders, paints, requests, version = measure_portal_first_render(
            f"{network.urls[0]}/portal/", runs)
    return PortalBenchResult(
        runs, round_ms(compute_percentile(renders, 0.50)),
        round_ms(compute_percentile(renders, 0.95)), round_ms(renders[-1]),
        round_ms(compute_percentile(paints, 0.50)), requests, version,
        len(os.sched_getaffinity(0)), [round(value, 2) for value in os.getloadavg()])


def round_ms(value: float | None) -> float | None:
    """Return a time to a tenth of a millisecond (the Performance API's own resolution)."""
    return None if value is None else round(value, 1)


def seed_anchors(network: LocalNetwork) -> None:
    """Commit `SEED_TXS` notary anchors from the network's issuer."""
    client, key = network.clients[0], network.issuers[0]
    raws = [build_anchor(key, network.chain_id, nonce, None).encode()
            for nonce in range(1, SEED_TXS + 1)]
    results = client.submit_batch(raws)
    if any(result["code"] != 0 for result in results):
        raise LocalError(f"the node refused a seed transaction: {results}")
    for result in results:
        client.wait_for_commit(bytes.fromhex(result["hash"]), COMMIT_WAIT_S)
