"""The portal in Chromium against a live four-validator network with the demo's city records
(tests/portal/conftest.py): what a citizen does, and what the network proves to them."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from seoulchain.bench.portal import RENDER_TIMEOUT_MS, time_first_renders
from seoulchain.client.demo import (
    DEMO_CAMPAIGN,
    DEMO_MINTS,
    DEMO_MODELS,
    DEMO_REDEEM_POINTS,
    DEMO_VINS,
)
from seoulchain.client.demo import ISSUED_DOCUMENTS as DEMO_ISSUED
from seoulchain.ledger.genesis import Genesis
from tests.portal.browser import ARTIFACTS, foreign_requests
from tests.portal.conftest import CityNetwork

pytestmark = pytest.mark.e2e

WAIT_MS = 10_000
NARROW = {"width": 390, "height": 844}  # a common phone screen, in CSS pixels
VIN = DEMO_VINS[0]  # registered, inspected twice, repaired and sold in the demo
ISSUED_DOCUMENT = DEMO_ISSUED[2]  # the demo's issued document that stays valid


def get_txs(city: CityNetwork, **filters: str) -> list[dict[str, Any]]:
    """Return the committed txs node 0 lists (newest first), filtered as the API filters."""
    answer = city.get_json("/v1/txs", limit=100, **filters)
    assert answer["next"] is None  # the demo's txs fit in one page
    return answer["items"]


def query(city: CityNetwork, service: str, name: str, **args: str) -> Any:
    return city.get_json(f"/v1/services/{service}/queries/{name}", **args)["result"]


@pytest.fixture
def page(browser: object, city: CityNetwork) -> Iterator[object]:
    """A page in a fresh context, in English; every request it makes must go to node 0."""
    context = browser.new_context(locale="en-GB", accept_downloads=True)
    opened = context.new_page()
    requested: list[str] = []
    errors: list[str] = []
    opened.on("request", lambda request: requested.append(request.url))
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert requested and foreign_requests(requested, city.url) == []
    assert errors == []


def open_route(page: object, city: CityNetwork, route: str = "", query: str = "") -> None:
    page.goto(f"{city.portal}{query}#{route}")
    page.wait_for_selector("body[data-ready]", timeout=WAIT_MS)


def screenshot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_follow_a_tx_from_the_overview_to_a_block_signed_by_several_agencies(
        page: object, city: CityNetwork) -> None:
    """The newest tx, then its block: the commit shows votes of more than one agency, more
    than two thirds of the voting power, and every validator holds that block (n=4)."""
    newest = get_txs(city)[0]
    open_route(page, city, "/")
    link = page.locator(f'main a[href="#/tx/{newest["hash"]}"]').first
    link.wait_for(timeout=WAIT_MS)
    screenshot(page, "overview")
    link.click()
    page.wait_for_selector("main .sentence", timeout=WAIT_MS)
    main = page.inner_text("main")
    assert f"called {newest['service']} · {newest['method']}" in main and "Succeeded" in main
    assert newest["hash"] in page.inner_text("main pre")  # the raw view beside it
    page.locator("main dd a[href^='#/block/']").first.click()
    height = newest["height"]
    page.wait_for_selector(f"main h1:has-text('Block {height}')", timeout=WAIT_MS)
    assert page.locator(f"[data-list='block-{height}-txs'] "
                        f"a[href='#/tx/{newest['hash']}']").count() == 1
    cells = page.locator(f"[data-list='block-{height}-signatures'] tbody td:first-child")
    agencies = [cell.strip() for cell in cells.all_inner_texts()]
    powers = {validator.name: validator.power for validator in
              Genesis.load(city.home / "genesis.json").validators.validators}
    assert len(set(agencies)) == len(agencies) > 1 and set(agencies) <= set(powers), agencies
    signed, total = sum(powers[agency] for agency in agencies), sum(powers.values())
    assert 3 * signed > 2 * total
    assert f"together they hold {signed} of {total}" in page.inner_text("main")
    block_ids = {httpx.get(f"{url}/v1/blocks/{height}", timeout=10).json()["block_id"]
                 for url in city.urls}
    assert len(block_ids) == 1 and block_ids <= set(page.inner_text("main").split())
    page.reload()  # the route is a permalink
    page.wait_for_selector(f"main h1:has-text('Block {height}')", timeout=WAIT_MS)
    screenshot(page, "block")


def test_an_inspection_tx_is_decoded_for_people(page: object, city: CityNetwork) -> None:
    entries = query(city, "vehicle", "history", vin=VIN)["entries"]
    inspection = next(entry for entry in entries if entry["kind"] == "inspection")
    open_route(page, city, f"/tx/{inspection['tx']}")
    page.wait_for_selector("main .sentence", timeout=WAIT_MS)
    main = page.inner_text("main")
    # The signer is named as the agency whose key it is (Mapo-gu inspects in the demo).
    assert "mapo-gu called vehicle · inspect" in main and VIN in main and "Succeeded" in main
    assert f"{inspection['odometer_km']:,}" in main
    screenshot(page, "tx")
    assert "vehicle.inspected" in main  # the result's event


def test_search_a_vin_shows_its_history_and_other_searches_land(page: object,
                                                                 city: CityNetwork) -> None:
    history = query(city, "vehicle", "history", vin=VIN)
    open_route(page, city, "/")
    page.fill("#search input", VIN.lower())
    page.press("#search input", "Enter")
    page.wait_for_selector(f"[data-list='vehicle-{VIN}-history'] tbody tr", timeout=WAIT_MS)
    assert page.evaluate("location.hash") == f"#/vehicle/{VIN}"
    rows = page.locator(f"[data-list='vehicle-{VIN}-history'] tbody tr")
    assert rows.count() == len(history["entries"]) >= 4  # registered, inspected, repaired
    kinds = page.inner_text(f"[data-list='vehicle-{VIN}-history'] tbody")
    assert "Registered" in kinds and DEMO_MODELS[0] in kinds
    odometer = history["vehicle"]["odometer_km"]
    assert f"{odometer:,}" in page.inner_text("main")  # the last odometer reading
    screenshot(page, "vehicle")
    page.fill("#search input", "not a thing")
    page.press("#search input", "Enter")
    page.wait_for_selector("#search-message:not([hidden])", timeout=WAIT_MS)
    assert "Nothing found for “not a thing”" in page.inner_text("#search-message")
    page.fill("#search input", "3")
    page.press("#search input", "Enter")
    page.wait_for_selector("main h1:has-text('Block 3')", timeout=WAIT_MS)
    did = json.loads((city.docs / "identity" / "dids.json").read_text())["citizen-1"]
    page.fill("#search input", did)
    page.press("#search input", "Enter")
    page.wait_for_selector("main h2:has-text('DID document')", timeout=WAIT_MS)
    assert page.evaluate("decodeURIComponent(location.hash)") == f"#/did/{did}"
    assert f'"id": "{did}"' in page.inner_text("main pre")
    page.reload()
    page.wait_for_selector("main h2:has-text('DID document')", timeout=WAIT_MS)
    page.fill("#search input", get_txs(city, service="mileage", method="mint")[0]["hash"])
    page.press("#search input", "Enter")
    page.wait_for_selector("main .sentence:has-text('mileage · mint')", timeout=WAIT_MS)


def test_switch_language_and_keep_it(page: object, city: CityNetwork) -> None:
    open_route(page, city, "/vehicle/" + VIN, "?lang=ko")
    page.wait_for_selector("main table", timeout=WAIT_MS)
    assert page.evaluate("document.documentElement.lang") == "ko"
    assert page.inner_text("main h1") == "자동차 이력"
    assert "등록" in page.inner_text(f"[data-list='vehicle-{VIN}-history'] tbody")
    assert page.get_attribute("#search input", "placeholder").startswith("블록 높이")
    screenshot(page, "vehicle-ko")
    page.click("button[data-lang='en']")
    page.wait_for_selector("main h1:has-text('Vehicle history')", timeout=WAIT_MS)
    assert page.get_attribute("button[data-lang='en']", "aria-pressed") == "true"
    page.goto(f"{city.portal}#/vehicle/{VIN}")  # the choice outlives the page
    page.wait_for_selector("main h1:has-text('Vehicle history')", timeout=WAIT_MS)


def test_a_phone_screen_needs_no_sideways_scrolling(browser: object, city: CityNetwork) -> None:
    context = browser.new_context(viewport=NARROW, locale="ko-KR", is_mobile=True,
                                  has_touch=True)
    phone = context.new_page()
    requested: list[str] = []
    phone.on("request", lambda request: requested.append(request.url))
    register = get_txs(city, service="vehicle", method="register")[0]
    routes = {"phone-overview": "/", "phone-tx": f"/tx/{register['hash']}",
              "phone-block": f"/block/{register['height']}",
              "phone-vehicle": f"/vehicle/{VIN}", "phone-validators": "/validators"}
    for name, route in routes.items():
        open_route(phone, city, route)
        phone.wait_for_selector("main h1", timeout=WAIT_MS)
        phone.wait_for_timeout(300)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= NARROW["width"], (route, width)
        screenshot(phone, name)
    context.close()
    assert foreign_requests(requested, city.url) == []


def test_filter_and_export_the_transactions(page: object, city: CityNetwork) -> None:
    everything, vehicle = get_txs(city), get_txs(city, service="vehicle")
    methods = [item["method"] for item in vehicle]
    open_route(page, city, "/txs")
    page.wait_for_selector("[data-list='transactions'] tbody tr", timeout=WAIT_MS)
    assert page.locator("[data-list='transactions'] tbody tr").count() == len(everything)
    page.select_option("select[name='service']", "vehicle")
    page.click("[data-list='transactions'] button[type='submit']")
    page.wait_for_function("location.hash === '#/txs?service=vehicle'", timeout=WAIT_MS)
    shown = f"text={len(vehicle)} of {len(vehicle)} shown"
    page.wait_for_selector(shown, timeout=WAIT_MS)
    with page.expect_download() as csv_download:
        page.click("[data-list='transactions'] [data-export='csv']")
    rows = list(csv.DictReader(io.StringIO(Path(csv_download.value.path()).read_text())))
    assert [row["method"] for row in rows] == methods and "register" in methods
    assert {row["service"] for row in rows} == {"vehicle"} and rows[0]["status"] == "ok"
    with page.expect_download() as json_download:
        page.click("[data-list='transactions'] [data-export='json']")
    exported = json.loads(Path(json_download.value.path()).read_text())
    assert [item["method"] for item in exported] == methods
    page.reload()  # the filter is part of the permalink
    page.wait_for_selector(shown, timeout=WAIT_MS)
    assert page.evaluate("""async () => {
        const { toCsv } = await import("./table.js");
        return toCsv([{ name: "a" }], [{ a: "=1+1" }, { a: 'say "hi", ok' }]);
    }""") == "a\r\n'=1+1\r\n\"say \"\"hi\"\", ok\"\r\n"


def test_service_pages_read_the_services_the_node_runs(page: object, city: CityNetwork) -> None:
    services = {item["name"] for item in city.get_json("/v1/services")["services"]}
    open_route(page, city, "/mileage")
    page.wait_for_selector("main .stats", timeout=WAIT_MS)
    minted = sum(amount for _, _, amount, _ in DEMO_MINTS)
    stats = page.inner_text("main .stats")
    assert f"{minted:,}\nIssued" in stats
    assert f"{minted - DEMO_REDEEM_POINTS:,}\nOutstanding" in stats
    assert page.is_hidden("nav a[data-service='vote']") == ("vote" not in services)
    issued = hashlib.sha256((city.docs / ISSUED_DOCUMENT[0]).read_bytes()).hexdigest()
    open_route(page, city, f"/document/{issued}")
    page.wait_for_selector("main .verdict", timeout=WAIT_MS)
    assert page.inner_text("main .verdict") == "Valid"
    assert ISSUED_DOCUMENT[1] in page.inner_text("main")
    assert page.locator("main a[href='verify.html']").count() == 1
    open_route(page, city, f"/document/{'ab' * 32}")
    page.wait_for_selector("main .notice", timeout=WAIT_MS)
    assert "No agency has issued" in page.inner_text("main .notice")
    open_route(page, city, "/funds")
    page.wait_for_selector("[data-list='funds-campaigns'] a[href='#/funds/campaign/1']",
                           timeout=WAIT_MS)
    assert DEMO_CAMPAIGN in page.inner_text("[data-list='funds-campaigns']")
    open_route(page, city, "/funds/campaign/1")
    page.wait_for_selector("main dl", timeout=WAIT_MS)
    assert DEMO_CAMPAIGN in page.inner_text("main")
    open_route(page, city, "/validators")
    page.wait_for_selector("[data-list='validators'] tbody tr", timeout=WAIT_MS)
    listed = page.inner_text("[data-list='validators']")
    validators = Genesis.load(city.home / "genesis.json").validators.validators
    assert page.locator("[data-list='validators'] tbody tr").count() == len(validators)
    assert all(validator.name in listed for validator in validators)
    screenshot(page, "validators")


def test_first_render_is_measured_in_chromium(browser: object, city: CityNetwork) -> None:
    renders, paints, requests = time_first_renders(browser, city.portal, 2)
    assert len(renders) == 2 and all(0 < value < RENDER_TIMEOUT_MS for value in renders)
    assert paints and paints[0] <= renders[-1]
    assert requests > 10  # the page's files and its API reads


def test_a_rate_limited_read_waits_and_retries(page: object, city: CityNetwork) -> None:
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
    open_route(page, city, "/")
    page.wait_for_selector("main .stats .stat", timeout=WAIT_MS)
    assert len(refused) == 1 and time.monotonic() - refused[0] >= 1.0
    assert page.locator("main .notice.error").count() == 0
    shown_height = page.inner_text("main .stats .stat .value >> nth=0")
    assert int(shown_height.replace(",", "")) >= city.height
