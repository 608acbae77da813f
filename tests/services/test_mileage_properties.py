"""Mileage points, property: over any sequence of mints, transfers, redemptions and expiries
across heights and accounts, outstanding = minted - burned - expired = the sum of balances,
no balance is negative, and a spend succeeds exactly when unexpired points cover it.

The service runs as the engine runs it — each operation in a child overlay, merged only if it
succeeds — against an independent model that keeps every minted batch with its expiry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from seoulchain.execution.platform import PARAM_KEY_PREFIX, PLATFORM_NAMESPACE, PlatformAccess
from seoulchain.execution.service import ServiceError, TxContext
from seoulchain.execution.state import Overlay, ServiceState
from seoulchain.services.mileage import (
    SUPPLY_KEY,
    MileageService,
    compute_account_key,
    compute_invariant_problems,
)

ACCOUNTS = [bytes([index]) * 32 for index in range(1, 4)]
MINTERS = [bytes([index]) * 32 for index in range(10, 12)]
MERCHANT = bytes([20]) * 32


class MemoryReader:
    """Committed state held in a dict."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes | None] = {}

    def get_state(self, key: bytes) -> bytes | None:
        return self.data.get(key)


@dataclass
class Model:
    """What the chain should hold: each account's batches [expires_at, amount]."""

    period_blocks: int
    cap: int
    expiry_blocks: int
    batches: dict[bytes, list[list[int]]] = field(default_factory=dict)
    minted_in_period: dict[bytes, tuple[int, int]] = field(default_factory=dict)
    minted: int = 0
    burned: int = 0
    expired: int = 0

    def spendable(self, account: bytes, height: int) -> int:
        return sum(amount for expires_at, amount in self.batches.get(account, [])
                   if expires_at > height)

    def sweep(self, account: bytes, height: int) -> bool:
        """Expire the account's lapsed batches, as touching the account does; True if any."""
        batches = self.batches.get(account, [])
        lapsed = sum(amount for expires_at, amount in batches if expires_at <= height)
        self.batches[account] = [batch for batch in batches if batch[0] > height]
        self.expired += lapsed
        return lapsed > 0

    def spend(self, account: bytes, amount: int, height: int) -> list[list[int]]:
        live = sorted(batch for batch in self.batches.get(account, []) if batch[0] > height)
        taken = []
        for batch in live:
            part = min(batch[1], amount)
            if part:
                taken.append([batch[0], part])
                batch[1] -= part
                amount -= part
        self.batches[account] = [batch for batch in self.batches[account] if batch[1] > 0]
        return taken


class Harness:
    """The mileage service over an in-memory state, one operation per transaction."""

    def __init__(self, period_blocks: int, cap: int, expiry_blocks: int) -> None:
        self.service = MileageService()
        self.reader = MemoryReader()
        self.block = Overlay(self.reader)
        platform = ServiceState(self.block, PLATFORM_NAMESPACE)
        for name, value in (("period_blocks", period_blocks), ("cap_per_period", cap),
                            ("expiry_blocks", expiry_blocks)):
            platform.set(PARAM_KEY_PREFIX + f"mileage.{name}".encode(), value)
        merchant = {"name": "shop", "active": True, "registered_by": MINTERS[0], "height": 0,
                    "redeemed": 0, "deregistered_height": None, "deregistered_reason": None}
        ServiceState(self.block, "mileage").set(b"merchant/" + MERCHANT, merchant)
        self.height = 1

    def run(self, signer: bytes, method: str, **args: Any) -> bool:
        """Apply one transaction; return whether it succeeded."""
        spec = self.service.methods[method]
        tx_state = self.block.child()
        ctx = TxContext(state=ServiceState(tx_state, "mileage"),
                        auth=ServiceState(tx_state, "auth"), signer=signer, height=self.height,
                        time_ms=0, tx_hash=bytes(32), service_name="mileage",
                        platform=PlatformAccess(ServiceState(tx_state, PLATFORM_NAMESPACE),
                                                {"mileage": self.service}, {}, self.height))
        try:
            spec.handler(self.service, ctx, spec.args.model_validate(args))
        except ServiceError:
            return False
        tx_state.merge_into(self.block)
        return True

    def state(self) -> ServiceState:
        return ServiceState(self.block, "mileage")


MINT = st.tuples(st.just("mint"), st.sampled_from(MINTERS), st.sampled_from(ACCOUNTS),
                 st.integers(1, 70))
# Mints and height advances weigh double, so that sequences hold points to spend and expire.
OPERATION = st.one_of(
    st.tuples(st.just("advance"), st.integers(1, 6)),
    st.tuples(st.just("advance"), st.integers(1, 6)),
    MINT,
    MINT,
    st.tuples(st.just("transfer"), st.sampled_from(ACCOUNTS), st.sampled_from(ACCOUNTS),
              st.integers(1, 90)),
    st.tuples(st.just("redeem"), st.sampled_from(ACCOUNTS), st.integers(1, 90)),
    st.tuples(st.just("expire"), st.sampled_from(ACCOUNTS)),
)


def apply(harness: Harness, model: Model, operation: tuple[Any, ...]) -> None:
    """Run one operation on the service and the model; check they agree on its outcome."""
    kind, height = operation[0], harness.height
    if kind == "advance":
        harness.height += operation[1]
    elif kind == "mint":
        _, minter, to, amount = operation
        period = height // model.period_blocks
        used = model.minted_in_period.get(minter, (period, 0))
        used = used if used[0] == period else (period, 0)
        expected = used[1] + amount <= model.cap
        assert harness.run(minter, "mint", to=to, amount=amount, reason="clean-up") == expected
        if expected:
            model.sweep(to, height)
            model.minted_in_period[minter] = (period, used[1] + amount)
            model.batches.setdefault(to, []).append([height + model.expiry_blocks, amount])
            model.minted += amount
    elif kind == "transfer":
        _, sender, to, amount = operation
        expected = sender != to and model.spendable(sender, height) >= amount
        assert harness.run(sender, "transfer", to=to, amount=amount) == expected
        if expected:
            model.sweep(sender, height)
            model.sweep(to, height)
            model.batches.setdefault(to, []).extend(model.spend(sender, amount, height))
    elif kind == "redeem":
        _, holder, amount = operation
        expected = model.spendable(holder, height) >= amount
        assert harness.run(holder, "redeem", merchant=MERCHANT, amount=amount) == expected
        if expected:
            model.sweep(holder, height)
            model.spend(holder, amount, height)
            model.burned += amount
    else:
        account = operation[1]
        assert harness.run(MINTERS[0], "expire", account=account) == model.sweep(account,
                                                                                 height)


def check_agreement(harness: Harness, model: Model) -> None:
    """The service's supply and accounts keep the invariant and match the model."""
    state = harness.state()
    supply = state.get(SUPPLY_KEY) or {"minted": 0, "burned": 0, "expired": 0,
                                       "outstanding": 0}
    accounts = [(key, state.get(compute_account_key(key))) for key in ACCOUNTS]
    held = [(key, account) for key, account in accounts if account is not None]
    assert compute_invariant_problems(supply, held) == []
    assert (supply["minted"], supply["burned"], supply["expired"]) == (
        model.minted, model.burned, model.expired)
    for key, account in held:
        assert account["balance"] >= 0
        spendable = sum(amount for expires_at, amount in account["lots"]
                        if expires_at > harness.height)
        assert spendable == model.spendable(key, harness.height)
    entries = sorted((key[len(b"mileage/"):], value)
                     for key, value in ((key, state.get(key[len(b"mileage/"):]))
                                        for key in harness.block.writes
                                        if key.startswith(b"mileage/")))
    assert harness.service.check_invariants(entries) == []


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(period_blocks=st.integers(1, 8), cap=st.integers(0, 200),
       expiry_blocks=st.integers(1, 8),
       operations=st.lists(OPERATION, min_size=8, max_size=40))
def test_supply_equals_minted_minus_burned_minus_expired_and_no_balance_goes_negative(
        period_blocks: int, cap: int, expiry_blocks: int,
        operations: list[tuple[Any, ...]]) -> None:
    harness = Harness(period_blocks, cap, expiry_blocks)
    model = Model(period_blocks, cap, expiry_blocks)
    for operation in operations:
        apply(harness, model, operation)
        check_agreement(harness, model)
    supply = harness.state().get(SUPPLY_KEY) or {"expired": 0}
    event(f"points expired: {supply['expired'] > 0}")  # shown by --hypothesis-show-statistics
