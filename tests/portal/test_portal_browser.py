"""The portal in Chromium against a live node with city records: what a citizen does."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from seoulchain.bench.portal import RENDER_TIMEOUT_MS, time_first_renders
from tests.portal.browser import ARTIFACTS, foreign_requests, launch_chromium
from tests.portal.seed import DOCUMENT_TEXT, VIN, SeededHome, seed_home

pytestmark = pytest.mark.e2e

START_TIMEOUT_S = 60  # a loaded CI machine imports and opens the node slowly
WAIT_MS = 10_000
NARROW = {"width": 390, "height": 844}  # a common phone screen, in CSS pixels


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveNode:
    """A `seoulchain start` process serving a seeded home on loopback."""

    def __init__(self, seeded: SeededHome, origin: str, process: subprocess.Popen[bytes]):
        self.seeded, self.origin, self.process = seeded, origin, process
        self.portal = f"{origin}/portal/"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNode]:
    port = free_port()
    seeded = seed_home(tmp_path_factory.mktemp("portal") / "home", port)
    process = subprocess.Popen([sys.executable, "-m", "seoulchain", "start", "--home",
                                str(seeded.home.root)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    origin = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            if httpx.get(f"{origin}/v1/status", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"node did not start: {process.stderr.read().decode()}")
        time.sleep(0.2)
    yield LiveNode(seeded, origin, process)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with launch_chromium() as running:
        yield running


@pytest.fixture
def page(browser: object, node: LiveNode) -> Iterator[object]:
    """A page in a fresh context, in English; every request it makes must go to the node."""
    context = browser.new_context(locale="en-GB", accept_downloads=True)
    opened = context.new_page()
    requested: list[str] = []
    errors: list[str] = []
    opened.on("request", lambda request: requested.append(request.url))
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert requested and foreign_requests(requested, node.origin) == []
    assert errors == []


def open_route(page: object, node: LiveNode, route: str = "", query: str = "") -> None:
    page.goto(f"{node.portal}{query}#{route}")
    page.wait_for_selector("body[data-ready]", timeout=WAIT_MS)


def screenshot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_follow_a_tx_from_the_overview_to_its_block(page: object, node: LiveNode) -> None:
    inspect_hash = node.seeded.tx_hashes["inspect"]
    open_route(page, node, "/")
    link = page.locator(f'main a[href="#/tx/{inspect_hash}"]')
    link.wait_for(timeout=WAIT_MS)
    screenshot(page, "overview")
    link.click()
    page.wait_for_selector("main .sentence", timeout=WAIT_MS)
    main = page.inner_text("main")
    assert "called vehicle · inspect" in main and VIN in main and "Succeeded" in main
    assert "vehicle.inspected" in main  # the result's event
    assert inspect_hash in page.inner_text("main pre")  # the raw view beside it
    screenshot(page, "tx")
    page.locator("main dd a[href^='#/block/']").first.click()
    page.wait_for_selector("main h1:has-text('Block 2')", timeout=WAIT_MS)
    signatures = page.locator("[data-list='block-2-signatures'] tbody tr")
    assert signatures.count() == 1
    assert "validator-0" in signatures.first.inner_text()
    assert page.locator(f"[data-list='block-2-txs'] a[href='#/tx/{inspect_hash}']").count() == 1
    page.reload()  # the route is a permalink
    page.wait_for_selector("main h1:has-text('Block 2')", timeout=WAIT_MS)
    screenshot(page, "block")


def test_search_a_vin_shows_its_history_and_other_searches_land(page: object,
                                                                 node: LiveNode) -> None:
    open_route(page, node, "/")
    page.fill("#search input", VIN.lower())
    page.press("#search input", "Enter")
    page.wait_for_selector(f"[data-list='vehicle-{VIN}-history'] tbody tr", timeout=WAIT_MS)
    assert page.evaluate("location.hash") == f"#/vehicle/{VIN}"
    rows = page.locator(f"[data-list='vehicle-{VIN}-history'] tbody tr")
    assert rows.count() == 3
    kinds = page.inner_text(f"[data-list='vehicle-{VIN}-history'] tbody")
    assert "Registered" in kinds and "Kia Ray" in kinds
    assert "21,000" in page.inner_text("main")  # the last odometer reading
    screenshot(page, "vehicle")
    page.fill("#search input", "not a thing")
    page.press("#search input", "Enter")
    page.wait_for_selector("#search-message:not([hidden])", timeout=WAIT_MS)
    assert "Nothing found for “not a thing”" in page.inner_text("#search-message")
    page.fill("#search input", "3")
    page.press("#search input", "Enter")
    page.wait_for_selector("main h1:has-text('Block 3')", timeout=WAIT_MS)
    did = node.seeded.did
    page.fill("#search input", did)
    page.press("#search input", "Enter")
    page.wait_for_selector("main h2:has-text('DID document')", timeout=WAIT_MS)
    assert page.evaluate("decodeURIComponent(location.hash)") == f"#/did/{did}"
    assert f'"id": "{did}"' in page.inner_text("main pre")
    page.reload()
    page.wait_for_selector("main h2:has-text('DID document')", timeout=WAIT_MS)
    page.fill("#search input", node.seeded.tx_hashes["mint"])
    page.press("#search input", "Enter")
    page.wait_for_selector("main .sentence:has-text('mileage · mint')", timeout=WAIT_MS)


def test_switch_language_and_keep_it(page: object, node: LiveNode) -> None:
    open_route(page, node, "/vehicle/" + VIN, "?lang=ko")
    page.wait_for_selector("main table", timeout=WAIT_MS)
    assert page.evaluate("document.documentElement.lang") == "ko"
    assert page.inner_text("main h1") == "자동차 이력"
    assert "등록" in page.inner_text(f"[data-list='vehicle-{VIN}-history'] tbody")
    assert page.get_attribute("#search input", "placeholder").startswith("블록 높이")
    screenshot(page, "vehicle-ko")
    page.click("button[data-lang='en']")
    page.wait_for_selector("main h1:has-text('Vehicle history')", timeout=WAIT_MS)
    assert page.get_attribute("button[data-lang='en']", "aria-pressed") == "true"
    page.goto(f"{node.portal}#/vehicle/{VIN}")  # the choice outlives the page
    page.wait_for_selector("main h1:has-text('Vehicle history')", timeout=WAIT_MS)


def test_a_phone_screen_needs_no_sideways_scrolling(browser: object, node: LiveNode) -> None:
    context = browser.new_context(viewport=NARROW, locale="ko-KR", is_mobile=True,
                                  has_touch=True)
    phone = context.new_page()
    requested: list[str] = []
    phone.on("request", lambda request: requested.append(request.url))
    routes = {"phone-overview": "/", "phone-tx": f"/tx/{node.seeded.tx_hashes['register']}",
              "phone-vehicle": f"/vehicle/{VIN}", "phone-validators": "/validators"}
    for name, route in routes.items():
        open_route(phone, node, route)
        phone.wait_for_selector("main h1", timeout=WAIT_MS)
        phone.wait_for_timeout(300)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= NARROW["width"], (route, width)
        screenshot(phone, name)
    context.close()
    assert foreign_requests(requested, node.origin) == []


def test_filter_and_export_the_transactions(page: object, node: LiveNode) -> None:
    open_route(page, node, "/txs")
    page.wait_for_selector("[data-list='transactions'] tbody tr", timeout=WAIT_MS)
    assert page.locator("[data-list='transactions'] tbody tr").count() == 7
    page.select_option("select[name='service']", "vehicle")
    page.click("[data-list='transactions'] button[type='submit']")
    page.wait_for_function("location.hash === '#/txs?service=vehicle'", timeout=WAIT_MS)
    page.wait_for_selector("text=3 of 3 shown", timeout=WAIT_MS)
    with page.expect_download() as csv_download:
        page.click("[data-list='transactions'] [data-export='csv']")
    rows = list(csv.DictReader(io.StringIO(Path(csv_download.value.path()).read_text())))
    assert [row["method"] for row in rows] == ["repair", "inspect", "register"]
    assert {row["service"] for row in rows} == {"vehicle"} and rows[0]["status"] == "ok"
    with page.expect_download() as json_download:
        page.click("[data-list='transactions'] [data-export='json']")
    exported = json.loads(Path(json_download.value.path()).read_text())
    assert [item["method"] for item in exported] == ["repair", "inspect", "register"]
    page.reload()  # the filter is part of the permalink
    page.wait_for_selector("text=3 of 3 shown", timeout=WAIT_MS)
    assert page.evaluate("""async () => {
        const { toCsv } = await import("./table.js");
        return toCsv([{ name: "a" }], [{ a: "=1+1" }, { a: 'say "hi", ok' }]);
    }""") == "a\r\n'=1+1\r\n\"say \"\"hi\"\", ok\"\r\n"


def test_service_pages_read_the_services_the_node_runs(page: object, node: LiveNode) -> None:
    services = {item["name"] for item in httpx.get(f"{node.origin}/v1/services").json()[
        "services"]}
    open_route(page, node, "/mileage")
    page.wait_for_selector("main .stats", timeout=WAIT_MS)
    assert "500" in page.inner_text("main .stats")
    assert page.is_hidden("nav a[data-service='vote']") == ("vote" not in services)
    open_route(page, node, f"/document/{hashlib.sha256(DOCUMENT_TEXT).hexdigest()}")
    page.wait_for_selector("main .verdict", timeout=WAIT_MS)
    assert page.inner_text("main .verdict") == "Valid"
    assert "building-permit" in page.inner_text("main")
    assert page.locator("main a[href='verify.html']").count() == 1
    open_route(page, node, f"/document/{'ab' * 32}")
    page.wait_for_selector("main .notice", timeout=WAIT_MS)
    assert "No agency has issued" in page.inner_text("main .notice")
    open_route(page, node, "/funds")
    page.wait_for_selector("[data-list='funds-campaigns'] a[href='#/funds/campaign/1']",
                           timeout=WAIT_MS)
    assert "winter shelter" in page.inner_text("[data-list='funds-campaigns']")
    open_route(page, node, "/funds/campaign/1")
    page.wait_for_selector("main dl", timeout=WAIT_MS)
    assert "winter shelter" in page.inner_text("main")
    open_route(page, node, "/validators")
    page.wait_for_selector("[data-list='validators'] tbody tr", timeout=WAIT_MS)
    assert "validator-0" in page.inner_text("[data-list='validators']")
    screenshot(page, "validators")


def test_first_render_is_measured_in_chromium(browser: object, node: LiveNode) -> None:
    renders, paints, requests = time_first_renders(browser, node.portal, 2)
    assert len(renders) == 2 and all(0 < value < RENDER_TIMEOUT_MS for value in renders)
    assert paints and paints[0] <= renders[-1]
    assert requests > 10  # the page's files and its API reads


def test_a_rate_limited_read_waits_and_retries(page: object, node: LiveNode) -> None:
    """A 429 from the node's rate limit delays the page (Retry-After), it does not break it."""
    refused: list[float] = []

    def refuse_once(route: object) -> None:
        if refused:
            route.continue_()
            return
        refused.append(time.monotonic())
        route.fulfill(status=429, headers={"Retry-After": "1"},
                      content_type="application/problem+json",
                      body=json.dumps({"type": "https://seoulchain.dev/problems/rate_limited",
                                       "title": "Rate limited", "status": 429,
                                       "detail": "slow down", "code": "rate_limited"}))

    page.route("**/v1/mempool", refuse_once)
    page.route("**/v1/status", refuse_once)
    open_route(page, node, "/")
    page.wait_for_selector("main .stats .stat", timeout=WAIT_MS)
    assert len(refused) == 1 and time.monotonic() - refused[0] >= 1.0
    assert page.locator("main .notice.error").count() == 0
    shown_height = page.inner_text("main .stats .stat .value >> nth=0")
    assert int(shown_height.replace(",", "")) >= node.seeded.height
