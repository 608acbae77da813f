"""Funds service: campaigns whose spending never exceeds receipts, and contract payments
split exactly as the contract says."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from seoulchain.cli import gov as gov_cli
from seoulchain.cli import txs
from seoulchain.cli.main import app
from seoulchain.client.http import NodeClient
from seoulchain.codec.cbor import decode, encode
from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError
from seoulchain.execution.engine import TxCheck
from seoulchain.execution.results import ResultCode, TxResult
from seoulchain.ledger.types import Transaction
from seoulchain.node.home import Home, init_home
from seoulchain.node.node import Node
from seoulchain.services import funds
from tests.cli.test_service_cli import InProcessClient, free_port
from tests.conftest import CHAIN_ID, LocalChain, make_genesis, make_key
from tests.services.gov_helpers import AGENCY_NAMES, make_agency_keys, make_gov_chain, propose

ORGANISER, COLLECTOR, OFFICER, PAYER = make_key(20), make_key(21), make_key(22), make_key(23)
OTHER_ORGANISER, OUTSIDER = make_key(24), make_key(25)
PRIME, SUB_A, SUB_B = "did:seoul:prime-construction", "did:seoul:sub-a", "ab" * 32
AMOUNT_MAX_KRW = 2**63 - 1
# The key holding the role each method requires.
SIGNERS = {"register_campaign": ORGANISER, "donate": COLLECTOR, "spend": ORGANISER,
           "register_contract": OFFICER, "pay": PAYER}


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[LocalChain]:
    """A one-validator chain whose genesis gives each funds role to its own key."""
    validator, issuer = make_key(1), make_key(2)
    genesis = make_genesis(validator, issuer)
    genesis.roles.update({
        funds.ORGANISER_ROLE: (ORGANISER.public_key, OTHER_ORGANISER.public_key),
        funds.COLLECTOR_ROLE: (COLLECTOR.public_key,),
        funds.CONTRACTING_ROLE: (OFFICER.public_key,),
        funds.PAYER_ROLE: (PAYER.public_key,)})
    local = LocalChain(tmp_path / "chain.sqlite", genesis, validator, issuer)
    yield local
    local.store.close()


def send(chain: LocalChain, key: SigningKey, method: str, **args: Any) -> TxResult:
    """Commit one funds transaction signed by `key` and return its result."""
    tx = chain.make_tx(key, service="funds", method=method, args=args)
    committed = chain.commit(tx)
    result = committed.execution.results[0]
    if result.code != ResultCode.OK:
        assert not any(key.startswith(b"funds/") for key in committed.execution.writes)
    return result


def check(chain: LocalChain, key: SigningKey, method: str, **args: Any) -> TxCheck:
    """Check one funds transaction as the mempool does, without using the signer's nonce."""
    tx = chain.make_tx(key, service="funds", method=method, args=args,
                       nonce=chain.nonces.get(key.public_key, 0) + 1)
    return chain.engine.check_tx(tx.encode())


def outcome(result: TxResult) -> str:
    return f"{result.code.name}: {result.log}"


def ask(chain: LocalChain, name: str, **args: Any) -> Any:
    return chain.engine.query("funds", name, args)


def open_campaign(chain: LocalChain, target_krw: int = 10_000_000) -> int:
    result = send(chain, ORGANISER, "register_campaign", purpose="Flood relief, Mapo-gu 2026",
                  target_krw=target_krw)
    assert result.code == ResultCode.OK, result.log
    return result.events[0].attributes["campaign"]


def donate(chain: LocalChain, campaign: int, amount_krw: int, key: SigningKey = COLLECTOR,
           **extra: Any) -> TxResult:
    return send(chain, key, "donate", campaign=campaign, amount_krw=amount_krw,
                purpose="general relief", **extra)


def spend(chain: LocalChain, campaign: int, amount_krw: int,
          key: SigningKey = ORGANISER) -> TxResult:
    return send(chain, key, "spend", campaign=campaign, amount_krw=amount_krw,
                purpose="sandbags", payee="did:seoul:hanil-supplies")


def open_contract(chain: LocalChain) -> int:
    result = send(chain, OFFICER, "register_contract", title="Mapo-gu library roof 2026-117",
                  prime={"payee": PRIME, "share_bp": 5000},
                  subcontractors=[{"payee": SUB_A, "share_bp": 3000},
                                  {"payee": SUB_B, "share_bp": 2000}])
    assert result.code == ResultCode.OK, result.log
    return result.events[0].attributes["contract"]


def pay(chain: LocalChain, contract: int, amount_krw: int, split: list[dict[str, Any]],
        key: SigningKey = PAYER) -> TxResult:
    return send(chain, key, "pay", contract=contract, amount_krw=amount_krw,
                purpose="invoice 2026-07", split=split)


def test_campaign_donations_and_spending_show_balance_and_history(chain: LocalChain) -> None:
    campaign = open_campaign(chain)
    assert donate(chain, campaign, 30_000).code == ResultCode.OK
    opted_in = donate(chain, campaign, 20_000, key=ORGANISER, donor="did:seoul:citizen-77")
    assert opted_in.code == ResultCode.OK
    spent = spend(chain, campaign, 45_000)
    assert spent.code == ResultCode.OK
    assert spent.events[0].kind == "funds.spent"
    assert spent.events[0].attributes["payee"] == "did:seoul:hanil-supplies"
    record = ask(chain, "campaign", campaign=campaign)
    assert (record["organiser"], record["target_krw"]) == (ORGANISER.public_key, 10_000_000)
    assert (record["received_krw"], record["spent_krw"], record["balance_krw"]) == (
        50_000, 45_000, 5_000)
    assert (record["donations"], record["spendings"], record["entries"]) == (2, 1, 3)
    history = ask(chain, "history", campaign=campaign)
    assert [(e["seq"], e["kind"], e["amount_krw"], e["balance_krw"]) for e in history] == [
        (3, "spending", 45_000, 5_000), (2, "donation", 20_000, 50_000),
        (1, "donation", 30_000, 30_000)]
    anonymous, named = history[2], history[1]
    assert anonymous["donor"] is None and anonymous["recorded_by"] == COLLECTOR.public_key
    assert named["donor"] == "did:seoul:citizen-77"
    assert history[0]["payee"] == "did:seoul:hanil-supplies"
    assert ask(chain, "history", campaign=campaign, limit=1, before=3) == [history[1]]
    assert ask(chain, "campaign", campaign=99) is None
    assert ask(chain, "history", campaign=99) is None


def test_spending_above_receipts_is_refused_and_nothing_is_kept(chain: LocalChain) -> None:
    campaign = open_campaign(chain)
    assert "exceeds campaign 1's balance of 0 KRW" in outcome(spend(chain, campaign, 1))
    donate(chain, campaign, 10_000)
    spend(chain, campaign, 4_000)
    refused = spend(chain, campaign, 6_001)
    assert refused.code == ResultCode.REFUSED
    assert refused.log == ("spending 6001 KRW exceeds campaign 1's balance of 6000 KRW "
                           "(received 10000, spent 4000); spending may never exceed receipts")
    assert spend(chain, campaign, 6_000).code == ResultCode.OK
    record = ask(chain, "campaign", campaign=campaign)
    assert (record["spent_krw"], record["balance_krw"], record["entries"]) == (10_000, 0, 3)


def test_who_may_record_what_in_a_campaign(chain: LocalChain) -> None:
    campaign = open_campaign(chain)
    donate(chain, campaign, 10_000)
    assert "only campaign 1's organiser may record its spending" in outcome(
        spend(chain, campaign, 1, key=OTHER_ORGANISER))
    assert "only campaign 1's organiser or a holder of funds.collector" in outcome(
        donate(chain, campaign, 1, key=OTHER_ORGANISER))
    assert check(chain, OUTSIDER, "donate", campaign=campaign, amount_krw=1,
                 purpose="relief").code == ResultCode.UNAUTHORIZED
    assert check(chain, OUTSIDER, "register_campaign", purpose="mine",
                 target_krw=1).code == ResultCode.UNAUTHORIZED
    assert "campaign 7 is not registered" in outcome(donate(chain, 7, 1))
    assert "campaign 7 is not registered" in outcome(spend(chain, 7, 1))


def test_receipts_stay_within_2_63_krw(chain: LocalChain) -> None:
    campaign = open_campaign(chain)
    assert donate(chain, campaign, AMOUNT_MAX_KRW).code == ResultCode.OK
    assert "receipts would exceed 9223372036854775807 KRW" in outcome(
        donate(chain, campaign, 1))
    assert spend(chain, campaign, AMOUNT_MAX_KRW).code == ResultCode.OK


def amount_calls() -> list[tuple[str, dict[str, Any], str]]:
    """Each method taking an amount: (method, its other arguments, the amount's field)."""
    return [
        ("register_campaign", {"purpose": "relief"}, "target_krw"),
        ("donate", {"campaign": 1, "purpose": "relief"}, "amount_krw"),
        ("spend", {"campaign": 1, "purpose": "relief", "payee": PRIME}, "amount_krw"),
        ("pay", {"contract": 1, "purpose": "invoice", "split": [{"payee": PRIME,
                                                                 "amount_krw": 1}]},
         "amount_krw"),
    ]


@pytest.mark.parametrize(("method", "args", "field"), amount_calls())
@pytest.mark.parametrize(("amount", "message"), [
    (-5, "Input should be greater than or equal to 1"),
    (0, "Input should be greater than or equal to 1"),
    (2**63, "Input should be less than or equal to 9223372036854775807"),
    (2**64 - 1, "Input should be less than or equal to 9223372036854775807"),
])
def test_amounts_that_are_not_positive_or_above_2_63_are_refused(
        chain: LocalChain, method: str, args: dict[str, Any], field: str, amount: int,
        message: str) -> None:
    raw = chain.make_tx(SIGNERS[method], service="funds", method=method,
                        args={**args, field: amount}).encode()
    check = chain.engine.check_tx(raw)
    assert check.code == ResultCode.BAD_ARGS
    assert f"{field}: {message}" in check.log
    execution = chain.engine.execute_block(1, chain.clock_ms + 1000, [raw], strict=True)
    assert execution.results[0].code == ResultCode.BAD_ARGS
    assert not any(key.startswith(b"funds/") for key in execution.writes)


@pytest.mark.parametrize(("method", "args", "field"), amount_calls())
@pytest.mark.parametrize("amount", [1.0, 1.5, True, "100"])
def test_an_amount_that_is_a_float_or_not_an_int_is_refused(
        method: str, args: dict[str, Any], field: str, amount: Any) -> None:
    schema = funds.FundsService.methods[method].args
    with pytest.raises(ValidationError, match=field):
        schema.model_validate({**args, field: amount})
    if isinstance(amount, float):  # nor can a transaction carry one: the encoding has none
        with pytest.raises(Exception, match="float"):
            encode({field: amount})


def test_a_float_amount_cannot_be_signed_into_a_transaction() -> None:
    with pytest.raises(Exception, match="float"):
        Transaction.create(ORGANISER, chain_id=CHAIN_ID, nonce=1, expiry_height=10,
                           service="funds", method="donate",
                           args={"campaign": 1, "amount_krw": 0.5, "purpose": "relief"})


@pytest.mark.parametrize(("method", "args", "field"), [
    ("register_campaign", {"purpose": "relief, call 010-1234-5678", "target_krw": 1},
     "purpose"),
    ("donate", {"campaign": 1, "amount_krw": 1, "purpose": "from 850101-1234567"}, "purpose"),
    ("donate", {"campaign": 1, "amount_krw": 1, "purpose": "relief", "donor": "Kim Minsu"},
     "donor"),
    ("spend", {"campaign": 1, "amount_krw": 1, "purpose": "relief", "payee": "Lee Jiwoo"},
     "payee"),
    ("register_contract", {"title": "roof", "prime": {"payee": "did:web:x.example",
                                                      "share_bp": 10_000}}, "prime.payee"),
])
def test_personal_data_and_names_as_parties_are_refused(
        chain: LocalChain, method: str, args: dict[str, Any], field: str) -> None:
    check = chain.engine.check_tx(chain.make_tx(SIGNERS[method], service="funds",
                                                method=method, args=args).encode())
    assert check.code == ResultCode.BAD_ARGS and f"{field}:" in check.log


def test_a_contract_payment_is_split_by_shares_with_the_remainder_to_the_prime(
        chain: LocalChain) -> None:
    contract = open_contract(chain)
    split = ask(chain, "split", contract=contract, amount_krw=1_000_003)
    # 50/30/20 % of 1,000,003 floor to 500,001 + 300,000 + 200,000; the 2 won left go to
    # the prime contractor.
    assert split == [{"payee": PRIME, "amount_krw": 500_003},
                     {"payee": SUB_A, "amount_krw": 300_000},
                     {"payee": SUB_B, "amount_krw": 200_000}]
    paid = pay(chain, contract, 1_000_003, list(reversed(split)))  # any order of payees
    assert paid.code == ResultCode.OK, paid.log
    assert [event.kind for event in paid.events] == ["funds.paid", *["funds.share_paid"] * 3]
    assert [(e.attributes["payee"], e.attributes["amount_krw"]) for e in paid.events[1:]] == [
        (PRIME, 500_003), (SUB_A, 300_000), (SUB_B, 200_000)]
    assert pay(chain, contract, 10, ask(chain, "split", contract=contract,
                                        amount_krw=10)).code == ResultCode.OK
    record = ask(chain, "contract", contract=contract)
    assert [(s["payee"], s["role"], s["share_bp"], s["paid_krw"]) for s in record["shares"]] == [
        (PRIME, "prime", 5000, 500_008), (SUB_A, "subcontractor", 3000, 300_003),
        (SUB_B, "subcontractor", 2000, 200_002)]
    assert (record["paid_krw"], record["payments"], record["officer"]) == (
        1_000_013, 2, OFFICER.public_key)
    payments = ask(chain, "payments", contract=contract)
    assert [p["amount_krw"] for p in payments] == [10, 1_000_003]
    assert payments[1]["payer"] == PAYER.public_key
    assert [p["amount_krw"] for p in payments[1]["split"]] == [500_003, 300_000, 200_000]
    assert ask(chain, "payments", contract=contract, limit=1, before=2) == [payments[1]]
    assert ask(chain, "contract", contract=5) is None
    assert ask(chain, "split", contract=5, amount_krw=1) is None


@pytest.mark.parametrize(("split", "message"), [
    ([(PRIME, 500_001), (SUB_A, 300_001), (SUB_B, 200_001)],
     f"{PRIME} is owed 500003 KRW of this payment, not 500001"),
    ([(PRIME, 500_003), (SUB_A, 300_000)], f"it leaves out {SUB_B}, owed 200000 KRW"),
    ([(PRIME, 500_003), (SUB_A, 300_000), (SUB_B, 200_000), ("did:seoul:ghost", 0)],
     "did:seoul:ghost is not a payee of it"),
    ([(PRIME, 500_003), (SUB_A, 300_000), (SUB_A, 300_000)], f"names payee {SUB_A} twice"),
])
def test_a_payment_whose_split_does_not_match_the_contract_is_refused(
        chain: LocalChain, split: list[tuple[str, int]], message: str) -> None:
    contract = open_contract(chain)
    refused = pay(chain, contract, 1_000_003,
                  [{"payee": payee, "amount_krw": amount} for payee, amount in split])
    assert refused.code == ResultCode.REFUSED and message in refused.log
    record = ask(chain, "contract", contract=contract)
    assert record["paid_krw"] == 0 and record["payments"] == 0
    assert ask(chain, "payments", contract=contract) == []


def test_contract_registration_and_payment_refusals(chain: LocalChain) -> None:
    def register(prime_bp: int, subs: list[tuple[str, int]], key: SigningKey = OFFICER) -> str:
        return outcome(send(chain, key, "register_contract", title="roof",
                            prime={"payee": PRIME, "share_bp": prime_bp},
                            subcontractors=[{"payee": payee, "share_bp": bp}
                                            for payee, bp in subs]))
    assert "shares sum to 9999 basis points; they must sum to exactly 10000" in register(
        4999, [(SUB_A, 5000)])
    assert "sum to 10001" in register(5001, [(SUB_A, 5000)])
    assert "a payee appears twice" in register(5000, [(PRIME, 5000)])
    assert check(chain, PAYER, "register_contract", title="roof",
                 prime={"payee": PRIME, "share_bp": 10_000}).code == ResultCode.UNAUTHORIZED
    assert register(10_000, []).startswith("OK")
    assert "contract 2 is not registered" in outcome(pay(chain, 2, 5, [
        {"payee": PRIME, "amount_krw": 5}]))
    assert check(chain, OFFICER, "pay", contract=1, amount_krw=5, purpose="invoice",
                 split=[{"payee": PRIME, "amount_krw": 5}]).code == ResultCode.UNAUTHORIZED
    assert pay(chain, 1, AMOUNT_MAX_KRW, [{"payee": PRIME, "amount_krw": AMOUNT_MAX_KRW}]
               ).code == ResultCode.OK
    assert "payments would exceed" in outcome(pay(chain, 1, 1, [
        {"payee": PRIME, "amount_krw": 1}]))


def test_campaigns_and_contracts_are_listed_newest_first_in_pages(chain: LocalChain) -> None:
    assert ask(chain, "campaigns") == [] and ask(chain, "contracts") == []
    campaigns = [open_campaign(chain, target_krw=1000 * number) for number in (1, 2, 3)]
    assert donate(chain, campaigns[0], 700).code == ResultCode.OK
    assert spend(chain, campaigns[0], 200).code == ResultCode.OK
    listed = ask(chain, "campaigns")
    assert [item["campaign"] for item in listed] == campaigns[::-1]
    assert listed[-1] == ask(chain, "campaign", campaign=campaigns[0])
    assert listed[-1]["balance_krw"] == 500
    first = ask(chain, "campaigns", limit=2)
    assert [item["campaign"] for item in first] == [3, 2]
    rest = ask(chain, "campaigns", limit=2, before=first[-1]["campaign"])
    assert [item["campaign"] for item in rest] == [1]
    assert ask(chain, "campaigns", before=1) == []
    contracts = [open_contract(chain), open_contract(chain)]
    assert [item["contract"] for item in ask(chain, "contracts")] == contracts[::-1]
    assert ask(chain, "contracts", limit=1, before=2) == [
        ask(chain, "contract", contract=contracts[0])]


@pytest.mark.parametrize("args", [{"limit": 0}, {"limit": funds.PAGE_ENTRIES_MAX + 1},
                                  {"before": 0}, {"limit": "many"}, {"campaign": 1}])
@pytest.mark.parametrize("name", ["campaigns", "contracts"])
def test_list_queries_refuse_pages_out_of_bounds(chain: LocalChain, name: str,
                                                 args: dict[str, Any]) -> None:
    with pytest.raises(LocalError):
        ask(chain, name, **args)


def test_roles_and_the_subcontractor_limit_come_from_governance(tmp_path: Path) -> None:
    gov_chain = make_gov_chain(tmp_path)
    agencies = make_agency_keys()
    officer = make_key(30)

    def passes(kind: str, **fields: Any) -> None:
        assert propose(gov_chain, agencies[0], kind, **fields).code == ResultCode.OK
        number = gov_chain.engine.query("gov", "proposals", {"limit": 1})[0]["id"]
        for key in agencies[1:3]:
            tx = gov_chain.make_tx(key, service="gov", method="approve",
                                   args={"proposal": number})
            assert gov_chain.commit(tx).execution.results[0].code == ResultCode.OK
        assert gov_chain.engine.query("gov", "proposal", {"proposal": number})[
            "status"] == "passed"

    try:
        args = {"title": "roof", "prime": {"payee": PRIME, "share_bp": 5000},
                "subcontractors": [{"payee": SUB_A, "share_bp": 2500},
                                   {"payee": SUB_B, "share_bp": 2500}]}
        assert check(gov_chain, officer, "register_contract",
                     **args).code == ResultCode.UNAUTHORIZED
        passes("grant_role", role=funds.CONTRACTING_ROLE, public_key=officer.public_key)
        passes("set_param", param=funds.SUBCONTRACTORS_PARAM, value=1)
        refused = send(gov_chain, officer, "register_contract", **args)
        assert refused.log == ("the contract names 2 sub-contractors; this chain allows at "
                               "most 1 (funds.subcontractors_max)")
        args["subcontractors"] = [{"payee": SUB_A, "share_bp": 5000}]
        assert send(gov_chain, officer, "register_contract", **args).code == ResultCode.OK
        assert len(AGENCY_NAMES) == 4
    finally:
        gov_chain.store.close()


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    """A one-agency node (k = 1) reached by the CLI in-process."""
    running = Node(init_home(tmp_path / "home", chain_id="funds-cli", api_port=free_port()))

    def open_client(home: Path, url: str | None) -> NodeClient:
        return InProcessClient(running)

    monkeypatch.setattr(txs, "open_client", open_client)
    monkeypatch.setattr(gov_cli, "open_client", open_client)
    yield running
    running.close()


def run_cli(node: Node, *args: str) -> Any:
    return CliRunner().invoke(app, [*args, "--home", str(node.home.root)])


def test_the_generic_cli_runs_a_campaign_and_a_contract_payment(node: Node) -> None:
    operator = Home(node.home.root).load_key("operator").public_key.hex()
    for role in (funds.ORGANISER_ROLE, funds.CONTRACTING_ROLE, funds.PAYER_ROLE):
        granted = run_cli(node, "gov", "propose", "grant_role", f"role={role}",
                          f"public_key={operator}")
        assert granted.exit_code == 0, granted.output
    steps = [
        ["register_campaign", "purpose=Flood relief, Mapo-gu", "target_krw=5000000"],
        ["donate", "campaign=1", "amount_krw=50000", "purpose=relief",
         "donor=did:seoul:citizen-7"],
        ["spend", "campaign=1", "amount_krw=20000", "purpose=sandbags",
         "payee=did:seoul:hanil-supplies"],
        ["register_contract", "title=Library roof 2026-117",
         'prime={"payee": "did:seoul:prime-co", "share_bp": 7000}',
         'subcontractors=[{"payee": "did:seoul:sub-co", "share_bp": 3000}]'],
        ["pay", "contract=1", "amount_krw=1001", "purpose=invoice 7",
         'split=[{"payee": "did:seoul:prime-co", "amount_krw": 701}, '
         '{"payee": "did:seoul:sub-co", "amount_krw": 300}]'],
    ]
    for step in steps:
        done = run_cli(node, "tx", "funds", *step)
        assert done.exit_code == 0, done.output
    overspent = run_cli(node, "tx", "funds", "spend", "campaign=1", "amount_krw=30001",
                        "purpose=more", "payee=did:seoul:hanil-supplies")
    assert overspent.exit_code == 1 and "exceeds campaign 1's balance of 30000 KRW" in (
        " ".join(overspent.stderr.split()))
    height = node.get_height()
    as_float = run_cli(node, "tx", "funds", "donate", "campaign=1", "amount_krw=1.5",
                       "purpose=relief")
    assert as_float.exit_code == 1 and "amount_krw: '1.5' is not an integer" in as_float.stderr
    assert node.get_height() == height and len(node.mempool) == 0
    campaign = json.loads(run_cli(node, "query", "funds", "campaign", "campaign=1",
                                  "--json").stdout)["result"]
    assert (campaign["received_krw"], campaign["spent_krw"], campaign["balance_krw"]) == (
        50_000, 20_000, 30_000)
    split = json.loads(run_cli(node, "query", "funds", "split", "contract=1",
                               "amount_krw=1001", "--json").stdout)["result"]
    assert [part["amount_krw"] for part in split] == [701, 300]
    contract = json.loads(run_cli(node, "query", "funds", "contract", "contract=1",
                                  "--json").stdout)["result"]
    assert [share["paid_krw"] for share in contract["shares"]] == [701, 300]
    node.close()  # a citizen proves the records offline, from the node's store
    for key, field, value in (("campaign/1", "balance", 30_000),
                              ("campaign/1/entry/2", "balance_krw", 30_000),
                              ("contract/1/payment/1", "amount_krw", 1001)):
        bundle = node.home.root.parent / "bundle.json"
        proved = run_cli(node, "prove", "state", "funds", key, "--out", str(bundle))
        assert proved.exit_code == 0, proved.output
        verified = CliRunner().invoke(app, ["verify", str(bundle), "--genesis",
                                            str(node.home.root / "genesis.json"), "--json"])
        assert verified.exit_code == 0, verified.output
        record = decode(bytes.fromhex(json.loads(verified.stdout)["facts"]["value"]))
        if field == "balance":
            assert record["received_krw"] - record["spent_krw"] == value
        else:
            assert record[field] == value
