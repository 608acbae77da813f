"""Funds as a state machine, checked by property: random donations, spendings and contract
payments, block after block, keep receipts >= spending and every split exact.

The blocks run through the engine alone (`prepare_proposal`, `commit`), without consensus,
so that many short chains run quickly.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seoulchain.execution.results import ResultCode
from seoulchain.ledger.types import Transaction
from seoulchain.services import funds
from tests.conftest import EngineChain, make_genesis, make_key

VALIDATOR, ISSUER = make_key(1), make_key(2)
ORGANISER, COLLECTOR, OFFICER, PAYER = make_key(20), make_key(21), make_key(22), make_key(23)
AMOUNT_MAX_KRW = 2**63 - 1
CAMPAIGNS = 2
PAYEES = [f"did:seoul:firm-{index}" for index in range(funds.SUBCONTRACTORS_MAX + 1)]

# Mostly everyday amounts, sometimes near 2^63 so that the totals' bound is reached too.
AMOUNTS = st.one_of(st.integers(1, 10**6), st.integers(1, AMOUNT_MAX_KRW),
                    st.just(AMOUNT_MAX_KRW))
OPERATIONS = st.one_of(
    st.tuples(st.just("donate"), st.integers(1, CAMPAIGNS), AMOUNTS, st.booleans()),
    st.tuples(st.just("spend"), st.integers(1, CAMPAIGNS), AMOUNTS, st.booleans()),
    st.tuples(st.just("pay"), st.integers(1, 2), AMOUNTS, st.booleans()),
)
BLOCKS = st.lists(st.lists(OPERATIONS, min_size=1, max_size=6), min_size=1, max_size=6)


@st.composite
def shares_bp(draw: st.DrawFn) -> list[int]:
    """Return 1 to 16 positive basis-point shares summing to 10,000."""
    count = draw(st.integers(1, funds.SUBCONTRACTORS_MAX + 1))
    cuts = draw(st.lists(st.integers(1, funds.BASIS_POINTS_TOTAL - 1), min_size=count - 1,
                         max_size=count - 1, unique=True))
    bounds = [0, *sorted(cuts), funds.BASIS_POINTS_TOTAL]
    return [high - low for low, high in itertools.pairwise(bounds)]


class FundsChain(EngineChain):
    """An engine over a store, committing each block as proposed (no consensus)."""

    def __init__(self, path: Path):
        genesis = make_genesis(VALIDATOR, ISSUER)
        genesis.roles.update({funds.ORGANISER_ROLE: (ORGANISER.public_key,),
                              funds.COLLECTOR_ROLE: (COLLECTOR.public_key,),
                              funds.CONTRACTING_ROLE: (OFFICER.public_key,),
                              funds.PAYER_ROLE: (PAYER.public_key,)})
        super().__init__(path, genesis, VALIDATOR, "funds")


    def ask(self, name: str, **args: Any) -> Any:
        return self.engine.query("funds", name, args)


def make_pay_args(chain: FundsChain, contract: int, amount_krw: int,
                  tamper: bool) -> dict[str, Any]:
    """A payment with the contract's split, or (tamper) with one won moved between payees."""
    split = chain.ask("split", contract=contract, amount_krw=amount_krw)
    if tamper and len(split) > 1:
        giver = next(part for part in split if part["amount_krw"] > 0)
        taker = next(part for part in split if part is not giver)
        giver["amount_krw"] -= 1
        taker["amount_krw"] += 1
    return {"contract": contract, "amount_krw": amount_krw, "purpose": "invoice",
            "split": split}


class Shadow:
    """What the chain must hold: each campaign's totals, each contract's paid total."""

    def __init__(self) -> None:
        self.received = dict.fromkeys(range(1, CAMPAIGNS + 1), 0)
        self.spent = dict.fromkeys(range(1, CAMPAIGNS + 1), 0)
        self.paid = {1: 0, 2: 0}

    def expect(self, operation: str, number: int, amount_krw: int, tamper: bool,
               payees: int) -> bool:
        """Apply the operation to the model; return whether the chain must accept it."""
        if operation == "donate":
            accepted = self.received[number] + amount_krw <= AMOUNT_MAX_KRW
            self.received[number] += amount_krw if accepted else 0
        elif operation == "spend":
            accepted = self.spent[number] + amount_krw <= self.received[number]
            self.spent[number] += amount_krw if accepted else 0
        else:
            accepted = self.paid[number] + amount_krw <= AMOUNT_MAX_KRW and not (
                tamper and payees > 1)
            self.paid[number] += amount_krw if accepted else 0
        return accepted


def check_campaigns(chain: FundsChain, shadow: Shadow) -> None:
    """Receipts >= spending in every campaign, in its record and in each history entry."""
    for number in range(1, CAMPAIGNS + 1):
        record = chain.ask("campaign", campaign=number)
        assert 0 <= record["spent_krw"] <= record["received_krw"] <= AMOUNT_MAX_KRW
        assert (record["received_krw"], record["spent_krw"]) == (
            shadow.received[number], shadow.spent[number])
        assert record["balance_krw"] == record["received_krw"] - record["spent_krw"]
        entries = chain.ask("history", campaign=number, limit=funds.PAGE_ENTRIES_MAX)
        assert len(entries) == record["entries"] == record["donations"] + record["spendings"]
        received = spent = 0
        for entry in reversed(entries):
            received += entry["amount_krw"] if entry["kind"] == "donation" else 0
            spent += entry["amount_krw"] if entry["kind"] == "spending" else 0
            assert (entry["received_krw"], entry["spent_krw"]) == (received, spent)
            assert 0 <= entry["balance_krw"] == received - spent
        assert (received, spent) == (record["received_krw"], record["spent_krw"])


def check_contracts(chain: FundsChain, shadow: Shadow) -> None:
    """Every payment's split sums exactly to it and follows the shares; totals agree."""
    for number in (1, 2):
        record = chain.ask("contract", contract=number)
        assert record["paid_krw"] == shadow.paid[number]
        payments = chain.ask("payments", contract=number, limit=funds.PAGE_ENTRIES_MAX)
        per_payee = [0] * len(record["shares"])
        for payment in payments:
            parts = payment["split"]
            assert sum(part["amount_krw"] for part in parts) == payment["amount_krw"]
            assert [part["payee"] for part in parts] == [s["payee"] for s in record["shares"]]
            for index, (part, share) in enumerate(zip(parts, record["shares"], strict=True)):
                floor = payment["amount_krw"] * share["share_bp"] // funds.BASIS_POINTS_TOTAL
                remainder = part["amount_krw"] - floor  # the prime's (index 0) alone
                assert remainder == 0 or (index == 0 and 0 < remainder < len(parts))
                per_payee[index] += part["amount_krw"]
        assert per_payee == [share["paid_krw"] for share in record["shares"]]
        assert sum(per_payee) == record["paid_krw"]


@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(contracts=st.tuples(shares_bp(), shares_bp()), blocks=BLOCKS)
def test_funds_keep_receipts_above_spending_and_splits_exact(
        contracts: tuple[list[int], list[int]],
        blocks: list[list[tuple[str, int, int, bool]]]) -> None:
    """funds property: at every height spent <= received in each campaign (record and
    history agree), and every accepted payment is split exactly by its contract."""
    with tempfile.TemporaryDirectory() as directory:
        chain = FundsChain(Path(directory) / "chain.sqlite")
        try:
            setup = [chain.sign(ORGANISER, "register_campaign",
                                {"purpose": f"campaign {n}", "target_krw": 10**9})
                     for n in range(CAMPAIGNS)]
            setup += [chain.sign(OFFICER, "register_contract", {
                "title": "works", "prime": {"payee": PAYEES[0], "share_bp": shares[0]},
                "subcontractors": [{"payee": payee, "share_bp": bp}
                                   for payee, bp in zip(PAYEES[1:], shares[1:], strict=False)]})
                for shares in contracts]
            assert all(r.code == ResultCode.OK for r in chain.run_block(setup))
            shadow = Shadow()
            for block in blocks:
                txs, expected = [], []
                for operation, number, amount_krw, tamper in block:
                    payees = len(contracts[number - 1]) if operation == "pay" else 0
                    expected.append(shadow.expect(operation, number, amount_krw, tamper,
                                                  payees))
                    txs.append(make_tx(chain, operation, number, amount_krw, tamper))
                results = chain.run_block(txs)
                assert [r.code == ResultCode.OK for r in results] == expected, [
                    r.log for r in results]
                check_campaigns(chain, shadow)
                check_contracts(chain, shadow)
        finally:
            chain.store.close()


def make_tx(chain: FundsChain, operation: str, number: int, amount_krw: int,
            tamper: bool) -> Transaction:
    if operation == "donate":
        args = {"campaign": number, "amount_krw": amount_krw, "purpose": "gift"}
        if tamper:
            args["donor"] = "did:seoul:citizen-1"
        return chain.sign(COLLECTOR, "donate", args)
    if operation == "spend":
        return chain.sign(ORGANISER, "spend", {"campaign": number, "amount_krw": amount_krw,
                                               "purpose": "supplies", "payee": PAYEES[1]})
    return chain.sign(PAYER, "pay", make_pay_args(chain, number, amount_krw, tamper))


@settings(max_examples=300, deadline=None, database=None)
@given(shares=shares_bp(), amount_krw=st.integers(1, AMOUNT_MAX_KRW))
def test_compute_split_is_exact_and_gives_the_remainder_to_the_prime(
        shares: list[int], amount_krw: int) -> None:
    """A split's parts are whole won, sum to the payment, and each is the floor of its share
    but the prime's, which adds the remainder (less than one won per payee)."""
    parts = funds.compute_split([{"payee": PAYEES[i], "share_bp": bp}
                                 for i, bp in enumerate(shares)], amount_krw)
    assert sum(part["amount_krw"] for part in parts) == amount_krw
    floors = [amount_krw * bp // funds.BASIS_POINTS_TOTAL for bp in shares]
    assert [part["amount_krw"] for part in parts[1:]] == floors[1:]
    assert 0 <= parts[0]["amount_krw"] - floors[0] < len(shares)
