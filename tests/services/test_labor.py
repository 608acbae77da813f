"""Labor contracts: co-signed contracts, amendments, work and wages, and the minimum wage."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError
from seoulchain.execution.results import ResultCode, TxResult
from seoulchain.services import labor
from tests.conftest import LocalChain, make_genesis, make_key
from tests.services.gov_helpers import latest_id, make_agency_keys, make_gov_chain, propose

EMPLOYER, WORKER, STRANGER = make_key(20), make_key(21), make_key(22)
CONTRACT = hashlib.sha256(b"standard part-time contract, cafe on Yanghwa-ro").digest()
AMENDED = hashlib.sha256(b"the same contract, amended wage").digest()
MINIMUM_2026_KRW = 10_320


def send(chain: LocalChain, key: SigningKey, method: str, **args: Any) -> TxResult:
    """Commit one labor transaction signed by `key` and return its result."""
    tx = chain.make_tx(key, service="labor", method=method, args=args)
    return chain.commit(tx).execution.results[0]


def outcome(result: TxResult) -> str:
    return f"{result.code.name}: {result.log}"


def propose_contract(chain: LocalChain, contract: bytes = CONTRACT,
                     wage: int = MINIMUM_2026_KRW, **extra: Any) -> TxResult:
    return send(chain, EMPLOYER, "propose", contract_hash=contract, worker=WORKER.public_key,
                hourly_wage_krw=wage, start_date="2026-01-05", **extra)


def sign_contract(chain: LocalChain, contract: bytes = CONTRACT,
                  wage: int = MINIMUM_2026_KRW) -> None:
    assert propose_contract(chain, contract, wage).code == ResultCode.OK
    assert send(chain, WORKER, "accept", contract_hash=contract).code == ResultCode.OK


def record_work(chain: LocalChain, contract: bytes = CONTRACT, minutes: int = 600,
                start: str = "2026-01-05", end: str = "2026-01-11") -> TxResult:
    return send(chain, EMPLOYER, "record_work", contract_hash=contract, period_start=start,
                period_end=end, minutes=minutes)


def pay(chain: LocalChain, amount: Any, contract: bytes = CONTRACT) -> TxResult:
    return send(chain, EMPLOYER, "record_payment", contract_hash=contract, amount_krw=amount,
                period_start="2026-01-05", period_end="2026-01-11")


def get_contract(chain: LocalChain, contract: bytes = CONTRACT) -> dict[str, Any]:
    return chain.engine.query("labor", "contract", {"contract_hash": contract.hex()})


def test_a_contract_signed_by_both_records_work_wages_and_an_amendment(
        chain: LocalChain) -> None:
    proposed = propose_contract(chain, employer_did="did:seoul:cafe-yanghwa-0042")
    assert proposed.code == ResultCode.OK
    assert [event.kind for event in proposed.events] == ["labor.proposed"]
    assert get_contract(chain)["status"] == "proposed"
    accepted = send(chain, WORKER, "accept", contract_hash=CONTRACT)
    assert accepted.code == ResultCode.OK and accepted.events[0].kind == "labor.signed"
    assert record_work(chain, minutes=630).code == ResultCode.OK  # 10.5 h
    assert pay(chain, 108_360).code == ResultCode.OK
    amended = send(chain, EMPLOYER, "propose_amendment", contract_hash=CONTRACT,
                   document_hash=AMENDED, hourly_wage_krw=11_000)
    assert amended.code == ResultCode.OK
    assert get_contract(chain)["hourly_wage_krw"] == MINIMUM_2026_KRW  # not yet in force
    assert send(chain, WORKER, "accept_amendment", contract_hash=CONTRACT,
                amendment=1).code == ResultCode.OK
    assert record_work(chain, minutes=61, start="2026-01-12", end="2026-01-12").code == (
        ResultCode.OK)
    contract = get_contract(chain)
    assert contract["key"] == f"contract/{CONTRACT.hex()}"
    assert (contract["status"], contract["employer"], contract["worker"]) == (
        "in_force", EMPLOYER.public_key, WORKER.public_key)
    assert (contract["document_hash"], contract["hourly_wage_krw"]) == (AMENDED, 11_000)
    assert contract["employer_did"] == "did:seoul:cafe-yanghwa-0042"
    assert (contract["signed_height"], contract["work_records"], contract["payments"]) == (
        2, 2, 1)
    # 630 min at 10,320 KRW/h = 108,360 KRW; 61 min at 11,000 KRW/h = 11,183 KRW (down).
    assert (contract["minutes_worked"], contract["wages_due_krw"],
            contract["wages_paid_krw"]) == (691, 108_360 + 11_183, 108_360)
    work = chain.engine.query("labor", "records", {"contract_hash": CONTRACT.hex()})
    assert work["total"] == 2
    assert [(entry["key"], entry["hourly_wage_krw"], entry["wage_due_krw"])
            for entry in work["entries"]] == [
        (f"contract/{CONTRACT.hex()}/work/1", MINIMUM_2026_KRW, 108_360),
        (f"contract/{CONTRACT.hex()}/work/2", 11_000, 11_183)]
    amendments = chain.engine.query("labor", "records", {"contract_hash": CONTRACT.hex(),
                                                         "kind": "amendment"})
    assert amendments["entries"][0]["status"] == "in_force"
    assert amendments["entries"][0]["proposed_by"] == "employer"
    history = chain.engine.query("labor", "history", {"party": WORKER.public_key.hex()})
    assert history["contracts_total"] == 1
    assert history["contracts"][0]["role"] == "worker"
    assert history["contracts"][0]["wages_due_krw"] == 119_543


def test_an_ended_contract_takes_its_last_work_and_final_wages_only(
        chain: LocalChain) -> None:
    sign_contract(chain)
    assert record_work(chain).code == ResultCode.OK
    assert "before 2026-01-11" in outcome(send(chain, WORKER, "end", contract_hash=CONTRACT,
                                               end_date="2026-01-10"))
    ended = send(chain, WORKER, "end", contract_hash=CONTRACT, end_date="2026-01-31")
    assert ended.code == ResultCode.OK and ended.events[0].kind == "labor.ended"
    last_week = record_work(chain, start="2026-01-26", end="2026-01-31")
    assert last_week.code == ResultCode.OK  # recorded late, within the contract's dates
    late = record_work(chain, start="2026-02-01", end="2026-02-07")
    assert "period ends 2026-02-07, after the contract ended on 2026-01-31" in outcome(late)
    assert "is ended on 2026-01-31; only a contract in force can be amended" in outcome(
        send(chain, EMPLOYER, "propose_amendment", contract_hash=CONTRACT,
             document_hash=AMENDED, hourly_wage_krw=11_000))
    assert pay(chain, 100_000).code == ResultCode.OK
    contract = get_contract(chain)
    assert (contract["status"], contract["work_records"]) == ("ended", 2)


def test_a_contract_signed_by_the_employer_only_is_not_in_force(chain: LocalChain) -> None:
    assert propose_contract(chain).code == ResultCode.OK
    for result in (record_work(chain), pay(chain, 10_000),
                   send(chain, EMPLOYER, "propose_amendment", contract_hash=CONTRACT,
                        document_hash=AMENDED, hourly_wage_krw=11_000),
                   send(chain, EMPLOYER, "end", contract_hash=CONTRACT,
                        end_date="2026-02-01")):
        assert result.code == ResultCode.REFUSED
        assert "signed by the employer only, not in force until the worker accepts it" in (
            result.log)
    # Only the worker named in the proposal signs it: not the employer, not a stranger.
    assert "only the contract's worker may accept" in outcome(
        send(chain, EMPLOYER, "accept", contract_hash=CONTRACT))
    assert "only the contract's worker may accept" in outcome(
        send(chain, STRANGER, "accept", contract_hash=CONTRACT))
    assert get_contract(chain)["status"] == "proposed"
    assert chain.engine.query("labor", "history", {"party": WORKER.public_key.hex()})[
        "contracts_total"] == 0


def test_an_amendment_needs_the_other_partys_acceptance(chain: LocalChain) -> None:
    sign_contract(chain)
    assert send(chain, WORKER, "propose_amendment", contract_hash=CONTRACT,
                document_hash=AMENDED, hourly_wage_krw=12_000).code == ResultCode.OK
    assert "the worker proposed amendment 1; only the other party may accept it" in outcome(
        send(chain, WORKER, "accept_amendment", contract_hash=CONTRACT, amendment=1))
    assert "amendment 1 is pending" in outcome(
        send(chain, EMPLOYER, "propose_amendment", contract_hash=CONTRACT,
             document_hash=AMENDED, hourly_wage_krw=11_000))
    assert "only a party to the contract may accept an amendment" in outcome(
        send(chain, STRANGER, "accept_amendment", contract_hash=CONTRACT, amendment=1))
    assert send(chain, EMPLOYER, "withdraw_amendment", contract_hash=CONTRACT,
                amendment=1).code == ResultCode.OK  # the employer declines
    assert "amendment 1 of contract" in outcome(
        send(chain, EMPLOYER, "accept_amendment", contract_hash=CONTRACT, amendment=1))
    assert get_contract(chain)["hourly_wage_krw"] == MINIMUM_2026_KRW


def test_only_the_employer_records_work_and_wages(chain: LocalChain) -> None:
    sign_contract(chain)
    for method, extra in (("record_work", {"minutes": 60}), ("record_payment",
                                                             {"amount_krw": 10_320})):
        for key in (WORKER, STRANGER):
            result = send(chain, key, method, contract_hash=CONTRACT,
                          period_start="2026-01-05", period_end="2026-01-05", **extra)
            assert "only the contract's employer may record" in outcome(result)


def test_a_wage_below_the_minimum_is_refused(chain: LocalChain) -> None:
    result = propose_contract(chain, wage=MINIMUM_2026_KRW - 1)
    assert outcome(result) == (
        "REFUSED: hourly wage 10,319 KRW is below the minimum hourly wage of 10,320 KRW in "
        "force at height 1 (labor.minimum_hourly_wage); amend the contract to at least that")
    sign_contract(chain)
    low = send(chain, EMPLOYER, "propose_amendment", contract_hash=CONTRACT,
               document_hash=AMENDED, hourly_wage_krw=9_860)  # the 2024 minimum
    assert "below the minimum hourly wage of 10,320 KRW" in outcome(low)


def test_raising_the_minimum_by_governance_refuses_a_wage_from_that_height_on(
        tmp_path: Path) -> None:
    chain = make_gov_chain(tmp_path)
    agencies = make_agency_keys()
    wage = 10_500
    sign_contract(chain, CONTRACT, wage)
    waiting = hashlib.sha256(b"a second contract, not yet signed").digest()
    assert propose_contract(chain, waiting, wage).code == ResultCode.OK
    propose(chain, agencies[0], "set_param", param="labor.minimum_hourly_wage", value=11_000)
    proposal = latest_id(chain)
    send_gov = [chain.make_tx(key, service="gov", method="approve",
                              args={"proposal": proposal}) for key in agencies[1:3]]
    chain.commit(send_gov[0])
    assert record_work(chain).code == ResultCode.OK  # still 10,320 at this height
    passed = chain.commit(send_gov[1])
    raised_at = passed.execution.results[0]
    assert raised_at.code == ResultCode.OK
    assert chain.engine.query("gov", "parameters", {})[0]["value"] == 11_000
    refused = [record_work(chain, start="2026-01-12", end="2026-01-18"),
               send(chain, WORKER, "accept", contract_hash=waiting),
               propose_contract(chain, hashlib.sha256(b"third").digest(), wage)]
    for result in refused:
        assert "hourly wage 10,500 KRW is below the minimum hourly wage of 11,000 KRW" in (
            result.log)
    assert send(chain, EMPLOYER, "propose_amendment", contract_hash=CONTRACT,
                document_hash=AMENDED, hourly_wage_krw=11_000).code == ResultCode.OK
    assert send(chain, WORKER, "accept_amendment", contract_hash=CONTRACT,
                amendment=1).code == ResultCode.OK
    assert record_work(chain, start="2026-01-12", end="2026-01-18").code == ResultCode.OK
    assert get_contract(chain, waiting)["status"] == "proposed"
    chain.store.close()


@pytest.mark.parametrize(("amount", "message"), [
    (0, "Input should be greater than or equal to 1"),
    (-10_320, "Input should be greater than or equal to 1"),
    (2**63, "Input should be less than or equal to 9223372036854775807"),
    (True, "Input should be a valid integer"),
    ("10320", "Input should be a valid integer"),
])
@pytest.mark.parametrize("field", ["hourly_wage_krw", "amount_krw"])
def test_bad_amounts_are_refused_by_mempool_and_block_alike(
        chain: LocalChain, field: str, amount: Any, message: str) -> None:
    sign_contract(chain)
    method, args = make_amount_args(field, amount)
    raw = chain.make_tx(EMPLOYER, service="labor", method=method, args=args).encode()
    check = chain.engine.check_tx(raw)
    assert check.code == ResultCode.BAD_ARGS
    assert check.log == f"arguments do not match labor.{method}: {field}: {message}"
    execution = chain.engine.execute_block(chain.engine.height + 1, chain.clock_ms + 1000,
                                           [raw], strict=True)
    assert execution.results[0].code == ResultCode.BAD_ARGS
    assert not any(key.startswith(b"labor/") for key in execution.writes)


def make_amount_args(field: str, amount: Any) -> tuple[str, dict[str, Any]]:
    if field == "hourly_wage_krw":
        return "propose", {"contract_hash": AMENDED, "worker": WORKER.public_key,
                           "hourly_wage_krw": amount, "start_date": "2026-01-05"}
    return "record_payment", {"contract_hash": CONTRACT, "amount_krw": amount,
                              "period_start": "2026-01-05", "period_end": "2026-01-11"}


@pytest.mark.parametrize("field", ["hourly_wage_krw", "amount_krw"])
def test_float_and_oversized_amounts_cannot_even_be_encoded(chain: LocalChain,
                                                            field: str) -> None:
    method, args = make_amount_args(field, 10_320)
    for amount in (10_320.5, 2**64):
        with pytest.raises(LocalError):
            chain.make_tx(EMPLOYER, service="labor", method=method,
                          args={**args, field: amount})
    # Hand-encoded anyway, a float is refused before any service sees it.
    tx = chain.make_tx(EMPLOYER, service="labor", method=method, args=args)
    body = tx.body()
    body[7] = {**args, field: 10_320.5}
    check = chain.engine.check_tx(cbor2.dumps([*body, tx.signature], canonical=True))
    assert check.code == ResultCode.MALFORMED and "float is not allowed" in check.log


def test_a_refused_transaction_leaves_nothing_behind(chain: LocalChain) -> None:
    raw = chain.make_tx(EMPLOYER, service="labor", method="propose", args={
        "contract_hash": CONTRACT, "worker": WORKER.public_key, "hourly_wage_krw": 9_000,
        "start_date": "2026-01-05"}).encode()
    execution = chain.engine.execute_block(1, chain.clock_ms + 1000, [raw], strict=True)
    assert execution.results[0].code == ResultCode.REFUSED
    assert not any(key.startswith(b"labor/") for key in execution.writes)


def test_contract_refusals(chain: LocalChain) -> None:
    assert "worker must be another key" in outcome(send(
        chain, EMPLOYER, "propose", contract_hash=CONTRACT, worker=EMPLOYER.public_key,
        hourly_wage_krw=MINIMUM_2026_KRW, start_date="2026-01-05"))
    assert f"no contract {CONTRACT.hex()} was proposed" in outcome(
        send(chain, WORKER, "accept", contract_hash=CONTRACT))
    sign_contract(chain)
    assert "is already proposed" in outcome(propose_contract(chain))
    assert "is in force; only a contract proposed can be withdrawn" in outcome(
        send(chain, EMPLOYER, "withdraw", contract_hash=CONTRACT))
    declined = hashlib.sha256(b"declined").digest()
    assert propose_contract(chain, declined).code == ResultCode.OK
    assert send(chain, WORKER, "withdraw", contract_hash=declined).code == ResultCode.OK
    assert "is withdrawn; only a contract proposed can be accepted" in outcome(
        send(chain, WORKER, "accept", contract_hash=declined))


@pytest.mark.parametrize(("start", "end", "minutes", "message"), [
    ("2026-01-12", "2026-01-11", 60, "period ends (2026-01-11) before it starts"),
    ("2026-01-05", "2026-02-05", 60, "is 32 days; a record covers at most 31"),
    ("2026-01-05", "2026-01-05", 1_441, "1441 minutes do not fit in 1 days"),
    ("2026-01-01", "2026-01-04", 60, "before the contract's start date 2026-01-05"),
])
def test_impossible_work_periods_are_refused(chain: LocalChain, start: str, end: str,
                                             minutes: int, message: str) -> None:
    sign_contract(chain)
    assert message in outcome(record_work(chain, minutes=minutes, start=start, end=end))
    assert get_contract(chain)["work_records"] == 0


@pytest.mark.parametrize(("args", "message"), [
    ({"start_date": "2026-02-30"},
     "start_date: Value error, 2026-02-30 is not a date of the calendar"),
    ({"start_date": "20260105xx"}, "start_date: Value error, a date is written YYYY-MM-DD"),
    ({"worker_did": "did:seoul:01012345678"}, "worker_did: holds what looks like a phone"),
    ({"worker_did": "Kim Minji"}, "worker_did: String should match pattern"),
])
def test_bad_terms_and_personal_data_are_refused(chain: LocalChain, args: dict[str, Any],
                                                 message: str) -> None:
    full = {"contract_hash": CONTRACT, "worker": WORKER.public_key,
            "hourly_wage_krw": MINIMUM_2026_KRW, "start_date": "2026-01-05", **args}
    check = chain.engine.check_tx(chain.make_tx(EMPLOYER, service="labor", method="propose",
                                                args=full).encode())
    assert check.code == ResultCode.BAD_ARGS and message in check.log


def test_entries_per_contract_are_capped(chain: LocalChain,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(labor, "PAYMENTS_MAX", 2)
    sign_contract(chain)
    assert pay(chain, 1).code == ResultCode.OK and pay(chain, 1).code == ResultCode.OK
    assert "the contract has 2 payments, the most one contract may have" in outcome(
        pay(chain, 1))
    assert get_contract(chain)["wages_paid_krw"] == 2


def test_wage_totals_stay_below_2_pow_63(chain: LocalChain) -> None:
    sign_contract(chain)
    assert pay(chain, 2**63 - 1).code == ResultCode.OK
    assert "wages paid would exceed 2^63-1 KRW" in outcome(pay(chain, 1))


def test_history_pages_through_a_partys_contracts(chain: LocalChain) -> None:
    hashes = [hashlib.sha256(bytes([index])).digest() for index in range(3)]
    for contract in hashes:
        sign_contract(chain, contract)
    page = chain.engine.query("labor", "history", {"party": WORKER.public_key.hex(),
                                                   "start": 2, "limit": 5})
    assert page["contracts_total"] == 3
    assert [item["contract_hash"] for item in page["contracts"]] == hashes[1:]
    employer = chain.engine.query("labor", "history", {"party": EMPLOYER.public_key.hex()})
    assert {item["role"] for item in employer["contracts"]} == {"employer"}
    with pytest.raises(LocalError, match="limit"):
        chain.engine.query("labor", "history", {"party": WORKER.public_key.hex(),
                                                "limit": 101})


def test_the_generic_cli_drives_a_contract_and_the_worker_proves_it_offline(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from seoulchain.cli import txs
    from seoulchain.cli.main import app
    from seoulchain.codec.cbor import decode
    from seoulchain.node.home import Home, init_home
    from seoulchain.node.node import Node
    from tests.cli.test_service_cli import InProcessClient, free_port

    runner = CliRunner()
    node = Node(init_home(tmp_path / "home", chain_id="labor-cli", api_port=free_port()))
    monkeypatch.setattr(txs, "open_client", lambda home, url: InProcessClient(node))
    home = ["--home", str(node.home.root)]

    def run(*args: str) -> Any:
        return runner.invoke(app, [*args, *home])

    assert run("keys", "create", "worker").exit_code == 0
    worker = Home(node.home.root).load_key("worker").public_key.hex()
    document = tmp_path / "contract.pdf"
    document.write_bytes(b"standard part-time contract")
    digest = hashlib.sha256(document.read_bytes()).hexdigest()
    terms = [f"contract_hash=@{document}", f"worker={worker}", "start_date=2026-01-05"]
    floated = run("tx", "labor", "propose", *terms, "hourly_wage_krw=10320.5")
    assert floated.exit_code == 1 and "is not an integer" in floated.stderr
    steps = [("propose", *terms, "hourly_wage_krw=10320"),
             ("accept", f"contract_hash=@{document}", "--key", "worker"),
             ("record_work", f"contract_hash=@{document}", "period_start=2026-01-05",
              "period_end=2026-01-11", "minutes=600"),
             ("record_payment", f"contract_hash=@{document}", "amount_krw=103200",
              "period_start=2026-01-05", "period_end=2026-01-11")]
    for step in steps:
        result = run("tx", "labor", *step)
        assert result.exit_code == 0, result.output
    history = run("query", "labor", "history", f"party={worker}", "--json")
    assert history.exit_code == 0, history.output
    [contract] = json.loads(history.stdout)["result"]["contracts"]
    assert (contract["status"], contract["wages_due_krw"]) == ("in_force", 103_200)
    payments = run("query", "labor", "records", f"contract_hash={digest}", "kind=payment")
    assert payments.exit_code == 0 and '"amount_krw": 103200' in payments.stdout
    node.close()
    genesis = str(node.home.root / "genesis.json")
    for key in (f"contract/{digest}", f"contract/{digest}/work/1"):
        bundle = tmp_path / "bundle.json"
        proved = run("prove", "state", "labor", key, "--out", str(bundle))
        assert proved.exit_code == 0, proved.output
        verified = runner.invoke(app, ["verify", str(bundle), "--genesis", genesis, "--json"])
        assert verified.exit_code == 0, verified.output
        facts = json.loads(verified.stdout)["facts"]
        record = decode(bytes.fromhex(facts["value"]))
        if key.endswith("/work/1"):
            assert (record["minutes"], record["wage_due_krw"]) == (600, 103_200)
        else:
            assert (record["worker"].hex(), record["status"]) == (worker, "in_force")


OPERATIONS = st.lists(st.one_of(
    st.tuples(st.just("work"), st.integers(1, 3 * 1440)),
    st.tuples(st.just("pay"), st.integers(1, 200_000)),
    st.tuples(st.just("amend"), st.integers(9_000, 13_000)),
    st.tuples(st.sampled_from(["accept", "decline"]), st.booleans()),
    st.tuples(st.just("end"), st.booleans()),
), min_size=1, max_size=12)


@settings(max_examples=15, deadline=None, database=None)
@given(operations=OPERATIONS)
def test_totals_always_equal_the_sum_of_the_entries(operations: list[tuple[str, Any]]) -> None:
    """Whatever is attempted, a contract's totals are the sums of its entries, every work
    record is at the wage in force and at least the minimum, and a refusal changes nothing."""
    with tempfile.TemporaryDirectory() as directory:
        chain = LocalChain(Path(directory) / "chain.sqlite",
                           make_genesis(make_key(1), make_key(2)), make_key(1), make_key(2))
        sign_contract(chain)
        day = 5
        for name, value in operations:
            before = get_contract(chain)
            result = run_operation(chain, name, value, day)
            day += 2
            after = get_contract(chain)
            if result.code != ResultCode.OK:
                assert after == before
            check_totals(chain, after)
        chain.store.close()


def run_operation(chain: LocalChain, name: str, value: Any, day: int) -> TxResult:
    """Attempt one operation on the contract."""
    pending = get_contract(chain)["pending_amendment"] or 1
    if name == "work":
        return send(chain, EMPLOYER, "record_work", contract_hash=CONTRACT,
                    period_start=f"2026-03-{day:02}", period_end=f"2026-03-{day + 1:02}",
                    minutes=value)
    if name == "pay":
        return pay(chain, value)
    if name == "amend":
        return send(chain, EMPLOYER, "propose_amendment", contract_hash=CONTRACT,
                    document_hash=AMENDED, hourly_wage_krw=value)
    if name == "end":
        return send(chain, WORKER if value else EMPLOYER, "end", contract_hash=CONTRACT,
                    end_date=f"2026-03-{day:02}")
    method = "accept_amendment" if name == "accept" else "withdraw_amendment"
    return send(chain, WORKER if value else EMPLOYER, method, contract_hash=CONTRACT,
                amendment=pending)


def check_totals(chain: LocalChain, contract: dict[str, Any]) -> None:
    """Assert the contract's totals against its entries, read one by one."""
    def entries(kind: str) -> list[dict[str, Any]]:
        return chain.engine.query("labor", "records", {
            "contract_hash": CONTRACT.hex(), "kind": kind, "limit": 100})["entries"]

    work, payments = entries("work"), entries("payment")
    assert contract["work_records"] == len(work) and contract["payments"] == len(payments)
    assert contract["minutes_worked"] == sum(entry["minutes"] for entry in work)
    assert contract["wages_due_krw"] == sum(entry["wage_due_krw"] for entry in work)
    assert contract["wages_paid_krw"] == sum(entry["amount_krw"] for entry in payments)
    for entry in work:
        assert entry["hourly_wage_krw"] >= MINIMUM_2026_KRW
        assert entry["wage_due_krw"] == entry["minutes"] * entry["hourly_wage_krw"] // 60
    pending = [entry for entry in entries("amendment") if entry["status"] == "proposed"]
    assert [entry["number"] for entry in pending] == (
        [] if contract["pending_amendment"] is None else [contract["pending_amendment"]])
