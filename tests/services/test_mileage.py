"""Mileage points: mint within a cap, transfer, redeem at merchants, expire; every refusal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from seoulchain.client.audit import audit_chain
from seoulchain.errors import LocalError
from seoulchain.execution.results import ResultCode
from seoulchain.execution.service import MethodSpec, load_services
from seoulchain.ledger.store import BlockStore
from seoulchain.services.mileage import (
    LOTS_PER_ACCOUNT_MAX,
    MileageService,
    add_lot,
    take_points,
)
from tests.conftest import LocalChain, make_key
from tests.services.mileage_helpers import ask, make_mileage_chain, send, set_param

ALICE, BOB, SHOP, STRANGER = make_key(30), make_key(31), make_key(32), make_key(33)


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[LocalChain]:
    local = make_mileage_chain(tmp_path)
    yield local
    local.store.close()


def mint(chain: LocalChain, to: bytes, amount: int, key: object = None) -> str:
    result = send(chain, key, "mint", to=to, amount=amount, reason="volunteered at Mapo library")
    return f"{result.code.name}: {result.log}"


def register_shop(chain: LocalChain) -> None:
    result = send(chain, None, "register_merchant", merchant=SHOP.public_key,
                  name="Mangwon market bakery")
    assert result.code == ResultCode.OK, result.log


def check_args(chain: LocalChain, method: str, key: object = None, **args: object) -> object:
    """Check a transaction as the mempool does; return the check."""
    return chain.engine.check_tx(chain.make_tx(key, service="mileage", method=method,
                                               args=args).encode())


def test_mint_transfer_redeem_story_with_queries_and_events(chain: LocalChain) -> None:
    register_shop(chain)
    minted = send(chain, None, "mint", to=ALICE.public_key, amount=500,
                  reason="joined the Han river clean-up")
    assert minted.code == ResultCode.OK, minted.log
    assert [event.kind for event in minted.events] == ["mileage.minted"]
    assert minted.events[0].attributes["expires_at"] == 2 + 5 * 365 * 86_400
    sent = send(chain, ALICE, "transfer", to=BOB.public_key, amount=200)
    assert sent.code == ResultCode.OK, sent.log
    redeemed = send(chain, BOB, "redeem", merchant=SHOP.public_key, amount=150)
    assert redeemed.code == ResultCode.OK, redeemed.log
    assert redeemed.events[0].attributes == {"holder": BOB.public_key,
                                             "merchant": SHOP.public_key, "amount": 150}
    assert ask(chain, "supply") == {"minted": 500, "burned": 150, "expired": 0,
                                    "outstanding": 350}
    alice = ask(chain, "account", account=ALICE.public_key, height=chain.engine.height)
    assert (alice["balance"], alice["spendable"], alice["lapsed"]) == (300, 300, 0)
    bob = ask(chain, "account", account=BOB.public_key)
    assert bob["balance"] == 50
    expires_at = alice["lots"][0]["expires_at"]
    assert alice["lots"] == [{"expires_at": expires_at, "amount": 300}]
    assert bob["lots"] == [{"expires_at": expires_at, "amount": 50}]
    history = ask(chain, "history", account=BOB.public_key)
    assert [(entry["kind"], entry["amount"], entry["balance"]) for entry in history] == [
        ("redeemed", 150, 50), ("received", 200, 200)]
    assert history[1]["counterparty"] == ALICE.public_key
    assert ask(chain, "history", account=BOB.public_key, before=2, limit=5) == history[1:]
    assert ask(chain, "merchant", merchant=SHOP.public_key)["redeemed"] == 150
    assert ask(chain, "minter", minter=chain.issuer.public_key)["minted"] == 500
    assert ask(chain, "account", account=STRANGER.public_key) is None


def test_transferred_points_keep_their_expiry_and_are_spent_soonest_first(
        chain: LocalChain) -> None:
    assert mint(chain, ALICE.public_key, 10).startswith("OK")
    assert mint(chain, ALICE.public_key, 10).startswith("OK")
    first, second = (lot["expires_at"] for lot in
                     ask(chain, "account", account=ALICE.public_key)["lots"])
    assert second == first + 1
    assert send(chain, ALICE, "transfer", to=BOB.public_key, amount=15).code == ResultCode.OK
    assert ask(chain, "account", account=BOB.public_key)["lots"] == [
        {"expires_at": first, "amount": 10}, {"expires_at": second, "amount": 5}]
    assert ask(chain, "account", account=ALICE.public_key)["lots"] == [
        {"expires_at": second, "amount": 5}]


def test_mint_without_the_minter_role_is_refused(chain: LocalChain) -> None:
    check = check_args(chain, "mint", STRANGER, to=ALICE.public_key, amount=5,
                       reason="helped at the ward office")
    assert check.code == ResultCode.UNAUTHORIZED
    assert "mileage.minter" in check.log
    registrar = check_args(chain, "register_merchant", STRANGER, merchant=SHOP.public_key,
                           name="a shop")
    assert registrar.code == ResultCode.UNAUTHORIZED


def test_mint_above_the_cap_per_period_is_refused_until_the_next_period(
        chain: LocalChain) -> None:
    set_param(chain, "mileage.period_blocks", 10)   # height 1
    set_param(chain, "mileage.cap_per_period", 100)  # height 2
    assert mint(chain, ALICE.public_key, 60).startswith("OK")  # height 3, period 0
    refused = mint(chain, BOB.public_key, 41)
    assert refused == ("REFUSED: minting 41 points would bring this minter's points in the "
                       "period of heights 0 to 9 to 101, above the cap of 100 "
                       "(mileage.cap_per_period)")
    assert ask(chain, "account", account=BOB.public_key) is None
    assert ask(chain, "minter", minter=chain.issuer.public_key)["minted"] == 60
    assert mint(chain, BOB.public_key, 40).startswith("OK")
    assert mint(chain, BOB.public_key, 1).startswith("REFUSED")
    while chain.engine.height < 9:
        chain.commit()
    assert mint(chain, BOB.public_key, 100).startswith("OK")  # height 10, period 1
    assert ask(chain, "supply")["minted"] == 200


def test_overspend_and_double_spend_are_refused(chain: LocalChain) -> None:
    register_shop(chain)
    mint(chain, ALICE.public_key, 100)
    over = send(chain, ALICE, "transfer", to=BOB.public_key, amount=101)
    assert (over.code, over.log) == (ResultCode.REFUSED, "the account holds 100 unexpired "
                                                         "points, fewer than the 101 asked")
    assert send(chain, ALICE, "redeem", merchant=SHOP.public_key, amount=101).code == \
        ResultCode.REFUSED
    assert send(chain, STRANGER, "transfer", to=BOB.public_key, amount=1).code == \
        ResultCode.REFUSED
    # Both spend the whole balance in one block: only the first goes through.
    both = chain.commit(
        chain.make_tx(ALICE, service="mileage", method="transfer",
                      args={"to": BOB.public_key, "amount": 100}),
        chain.make_tx(ALICE, service="mileage", method="redeem",
                      args={"merchant": SHOP.public_key, "amount": 100}))
    assert [result.code for result in both.execution.results] == [ResultCode.OK,
                                                                  ResultCode.REFUSED]
    assert ask(chain, "supply") == {"minted": 100, "burned": 0, "expired": 0,
                                    "outstanding": 100}
    assert ask(chain, "account", account=ALICE.public_key)["balance"] == 0


@pytest.mark.parametrize(("amount", "message"), [
    (-5, "amount: Input should be greater than or equal to 1"),
    (0, "amount: Input should be greater than or equal to 1"),
    (2**63, "amount: Input should be less than or equal to 9223372036854775807"),
    (True, "amount: Input should be a valid integer"),
    ("10", "amount: Input should be a valid integer"),
])
@pytest.mark.parametrize("method", ["mint", "transfer", "redeem"])
def test_amounts_that_are_not_positive_64_bit_integers_are_refused(
        chain: LocalChain, method: str, amount: object, message: str) -> None:
    args = {"to": BOB.public_key, "reason": "helped"} if method == "mint" else (
        {"to": BOB.public_key} if method == "transfer" else {"merchant": SHOP.public_key})
    raw = chain.make_tx(service="mileage", method=method,
                        args={**args, "amount": amount}).encode()
    check = chain.engine.check_tx(raw)
    assert check.code == ResultCode.BAD_ARGS
    assert message in check.log
    # A proposer that includes it anyway: every node records the same refusal, no writes.
    execution = chain.engine.execute_block(1, chain.clock_ms + 1000, [raw], strict=True)
    assert (execution.results[0].code, execution.results[0].log) == (check.code, check.log)
    assert not any(key.startswith(b"mileage/") for key in execution.writes)


def test_a_float_amount_cannot_be_signed_nor_sent(chain: LocalChain) -> None:
    with pytest.raises(LocalError, match="type float is not allowed"):
        chain.make_tx(ALICE, service="mileage", method="transfer",
                      args={"to": BOB.public_key, "amount": 1.5})
    # The same bytes with a CBOR float where the integer was: refused before any service runs.
    raw = chain.make_tx(ALICE, service="mileage", method="transfer",
                        args={"to": BOB.public_key, "amount": 0x01234567}).encode()
    assert raw.count(bytes.fromhex("1a01234567")) == 1
    forged = raw.replace(bytes.fromhex("1a01234567"), bytes.fromhex("fa3fc00000"))  # 1.5
    check = chain.engine.check_tx(forged)
    assert check.code == ResultCode.MALFORMED, check.log
    execution = chain.engine.execute_block(1, chain.clock_ms + 1000, [forged], strict=False)
    assert not any(key.startswith(b"mileage/") for key in execution.writes)


def test_a_reason_with_personal_data_is_refused(chain: LocalChain) -> None:
    check = check_args(chain, "mint", to=ALICE.public_key, amount=5,
                       reason="call 010-1234-5678 to confirm")
    assert check.code == ResultCode.BAD_ARGS and "reason: holds what looks like a phone" in \
        check.log


def test_redeem_only_at_a_registered_merchant(chain: LocalChain) -> None:
    mint(chain, ALICE.public_key, 100)
    unknown = send(chain, ALICE, "redeem", merchant=SHOP.public_key, amount=10)
    assert unknown.log == f"{SHOP.public_key.hex()} is not a registered merchant"
    register_shop(chain)
    again = send(chain, None, "register_merchant", merchant=SHOP.public_key, name="again")
    assert "already registered" in again.log
    assert send(chain, ALICE, "redeem", merchant=SHOP.public_key, amount=10).code == \
        ResultCode.OK
    gone = send(chain, None, "deregister_merchant", merchant=SHOP.public_key,
                reason="closed the shop")
    assert gone.code == ResultCode.OK and gone.events[0].kind == "mileage.merchant_deregistered"
    assert send(chain, ALICE, "redeem", merchant=SHOP.public_key, amount=10).code == \
        ResultCode.REFUSED
    record = ask(chain, "merchant", merchant=SHOP.public_key)
    assert (record["active"], record["redeemed"]) == (False, 10)
    assert send(chain, None, "deregister_merchant", merchant=SHOP.public_key,
                reason="twice").code == ResultCode.REFUSED


def test_points_stop_counting_at_expiry_and_are_expired_lazily_or_by_anyone(
        chain: LocalChain) -> None:
    set_param(chain, "mileage.expiry_blocks", 3)  # height 1
    mint(chain, ALICE.public_key, 70)              # height 2: expires at 5
    mint(chain, BOB.public_key, 30)                # height 3: expires at 6
    chain.commit()                                 # height 4: still counts
    assert ask(chain, "account", account=ALICE.public_key, height=5)["spendable"] == 0
    # Height 5: Alice's points no longer count; the refused transfer keeps nothing.
    late = send(chain, ALICE, "transfer", to=BOB.public_key, amount=1)
    assert late.log == "the account holds 0 unexpired points, fewer than the 1 asked"
    assert ask(chain, "account", account=ALICE.public_key)["balance"] == 70
    # Anyone may expire them (height 6): the supply counts them expired.
    expired = send(chain, STRANGER, "expire", account=ALICE.public_key)
    assert expired.code == ResultCode.OK, expired.log
    assert expired.events[0].attributes == {"account": ALICE.public_key, "amount": 70}
    nothing = send(chain, STRANGER, "expire", account=ALICE.public_key)
    assert nothing.log.endswith("holds no expired points at height 7")
    assert send(chain, STRANGER, "expire", account=STRANGER.public_key).code == \
        ResultCode.REFUSED
    # Touching Bob's account by a mint expires his lapsed lot first (height 9).
    minted = send(chain, None, "mint", to=BOB.public_key, amount=5, reason="survey")
    assert [event.kind for event in minted.events] == ["mileage.expired", "mileage.minted"]
    assert ask(chain, "supply") == {"minted": 105, "burned": 0, "expired": 100,
                                    "outstanding": 5}
    assert ask(chain, "history", account=BOB.public_key, limit=2)[1]["kind"] == "expired"


def test_lots_past_the_cap_merge_into_the_nearest_taking_the_earlier_expiry() -> None:
    lots: list[list[int]] = []
    for index in range(LOTS_PER_ACCOUNT_MAX):
        add_lot(lots, 100 + 10 * index, 1)
    add_lot(lots, 100 + 10 * 5 + 3, 7)  # nearer the lot at 150: joins it, at 150
    add_lot(lots, 100 + 10 * 5 + 8, 2)  # nearer the lot at 160: it now expires at 158
    assert len(lots) == LOTS_PER_ACCOUNT_MAX
    assert lots[5] == [150, 8] and lots[6] == [158, 3]
    add_lot(lots, 50, 4)                # before all: the first lot now expires at 50
    assert lots[0] == [50, 5] and sum(amount for _, amount in lots) == 64 + 13
    assert take_points(lots, 6) == [[50, 5], [110, 1]]


def test_audit_checks_the_supply_invariant_after_replay(chain: LocalChain) -> None:
    register_shop(chain)
    mint(chain, ALICE.public_key, 100)
    send(chain, ALICE, "transfer", to=BOB.public_key, amount=40)
    send(chain, BOB, "redeem", merchant=SHOP.public_key, amount=10)
    assert audit_chain(chain.genesis, chain.store, load_services()).ok


def test_audit_names_a_service_whose_state_breaks_the_supply_invariant(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = MileageService.methods["redeem"]

    def leaky_redeem(self: MileageService, ctx: object, args: object) -> None:
        """Redeem, but forget to count the burn in the supply."""
        supply = ctx.state.get(b"supply")  # type: ignore[attr-defined]
        original.handler(self, ctx, args)
        ctx.state.set(b"supply", supply)  # type: ignore[attr-defined]

    monkeypatch.setitem(MileageService.methods, "redeem",
                        MethodSpec("redeem", original.args, original.roles, leaky_redeem))
    chain = make_mileage_chain(tmp_path)
    register_shop(chain)
    mint(chain, ALICE.public_key, 100)
    assert send(chain, ALICE, "redeem", merchant=SHOP.public_key, amount=30).code == \
        ResultCode.OK
    chain.store.close()
    store = BlockStore(chain.path)
    try:
        report = audit_chain(chain.genesis, store, load_services())
    finally:
        store.close()
    assert not report.ok and report.bad_height == 3
    assert report.failure == ("service 'mileage' breaks its invariants: the balances sum to "
                              "70, not the outstanding supply 100")
