"""Governance: k-of-n proposals, approvals, withdrawals, expiry, and what is refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from seoulchain.errors import DecodeError
from seoulchain.execution.platform import get_installed_versions
from seoulchain.execution.results import ResultCode
from seoulchain.execution.service import (
    AUTH_NAMESPACE,
    Service,
    StrictArgs,
    TxContext,
    compute_role_key,
    has_role,
    load_services,
    tx_method,
)
from seoulchain.execution.state import Overlay, ServiceState
from seoulchain.ledger.genesis import Agency, Genesis
from seoulchain.ledger.types import Validator, ValidatorSet
from seoulchain.services.gov import GovService
from tests import conftest
from tests.conftest import CHAIN_ID, GENESIS_TIME_MS, LocalChain, make_genesis, make_key
from tests.services.gov_helpers import (
    AGENCY_NAMES,
    event_kinds,
    get_proposal,
    latest_id,
    make_agency_keys,
    make_gov_chain,
    propose,
    send,
)

KEYS = make_agency_keys()
NEWCOMER = make_key(50)


@pytest.fixture
def gov_chain(tmp_path: Path) -> Iterator[LocalChain]:
    chain = make_gov_chain(tmp_path)
    yield chain
    chain.store.close()


def holds(chain: LocalChain, key: bytes, role: str) -> bool:
    return has_role(ServiceState(chain.engine.state, AUTH_NAMESPACE), key, role)


def test_genesis_agencies_are_the_members_with_the_genesis_threshold(
        gov_chain: LocalChain) -> None:
    answer = gov_chain.engine.query("gov", "members", {})
    assert answer["threshold"] == 3
    assert [member["name"] for member in answer["members"]] == sorted(AGENCY_NAMES)


def test_a_role_is_granted_when_the_third_member_approves(gov_chain: LocalChain) -> None:
    result = propose(gov_chain, KEYS[0], "grant_role", role="vehicle.registrar",
                     public_key=NEWCOMER.public_key)
    assert result.code == ResultCode.OK
    assert event_kinds(result) == ["gov.proposed", "gov.approved"]
    proposal = latest_id(gov_chain)
    assert send(gov_chain, KEYS[1], "approve", proposal=proposal).code == ResultCode.OK
    assert not holds(gov_chain, NEWCOMER.public_key, "vehicle.registrar")
    third = send(gov_chain, KEYS[2], "approve", proposal=proposal)
    assert "gov.passed" in event_kinds(third)
    assert holds(gov_chain, NEWCOMER.public_key, "vehicle.registrar")
    record = get_proposal(gov_chain, proposal)
    assert record["status"] == "passed"
    assert record["closed_height"] == gov_chain.engine.height
    assert [item["member"] for item in record["approvals"]] == list(AGENCY_NAMES[:3])
    assert [item["height"] for item in record["approvals"]] == [1, 2, 3]


def test_a_withdrawn_approval_does_not_count(gov_chain: LocalChain) -> None:
    propose(gov_chain, KEYS[0], "set_threshold", threshold=2)
    proposal = latest_id(gov_chain)
    send(gov_chain, KEYS[1], "approve", proposal=proposal)
    withdrawn = send(gov_chain, KEYS[1], "withdraw", proposal=proposal)
    assert withdrawn.code == ResultCode.OK and event_kinds(withdrawn) == ["gov.withdrawn"]
    send(gov_chain, KEYS[2], "approve", proposal=proposal)
    assert get_proposal(gov_chain, proposal)["status"] == "open"
    assert gov_chain.engine.query("gov", "members", {})["threshold"] == 3
    send(gov_chain, KEYS[3], "approve", proposal=proposal)
    assert gov_chain.engine.query("gov", "members", {})["threshold"] == 2


def test_a_proposal_by_a_non_member_is_refused(gov_chain: LocalChain) -> None:
    result = propose(gov_chain, NEWCOMER, "set_threshold", threshold=1)
    assert result.code == ResultCode.REFUSED
    assert "not a key of a member agency" in result.log
    assert gov_chain.engine.query("gov", "proposals", {}) == []


def test_a_second_approval_by_the_same_member_is_refused(gov_chain: LocalChain) -> None:
    propose(gov_chain, KEYS[0], "set_threshold", threshold=2)
    proposal = latest_id(gov_chain)
    result = send(gov_chain, KEYS[0], "approve", proposal=proposal)
    assert result.code == ResultCode.REFUSED
    assert "already approved" in result.log
    assert len(get_proposal(gov_chain, proposal)["approvals"]) == 1


def test_an_approval_after_the_deadline_is_refused_and_close_records_expiry(
        gov_chain: LocalChain) -> None:
    propose(gov_chain, KEYS[0], "set_threshold", deadline_blocks=2, threshold=2)
    proposal = latest_id(gov_chain)
    deadline = get_proposal(gov_chain, proposal)["deadline_height"]
    send(gov_chain, KEYS[1], "approve", proposal=proposal)
    while gov_chain.engine.height < deadline:
        gov_chain.commit(gov_chain.make_tx())
    assert get_proposal(gov_chain, proposal)["status"] == "expired"
    late = send(gov_chain, KEYS[2], "approve", proposal=proposal)
    assert late.code == ResultCode.REFUSED
    assert f"expired at height {deadline}" in late.log
    assert gov_chain.engine.query("gov", "members", {})["threshold"] == 3
    closed = send(gov_chain, NEWCOMER, "close", proposal=proposal)
    assert closed.code == ResultCode.OK and event_kinds(closed) == ["gov.expired"]
    record = get_proposal(gov_chain, proposal)
    assert (record["status"], record["closed_height"]) == ("expired", gov_chain.engine.height)
    assert send(gov_chain, NEWCOMER, "close", proposal=proposal).code == ResultCode.REFUSED


def test_removing_a_member_below_k_is_refused(tmp_path: Path) -> None:
    chain = make_gov_chain(tmp_path, threshold=4)
    result = propose(chain, KEYS[0], "remove_member", member="mapo-gu")
    assert result.code == ResultCode.REFUSED
    assert "fewer than the threshold k = 4" in result.log
    chain.store.close()


def test_an_action_that_became_invalid_is_not_half_applied(gov_chain: LocalChain) -> None:
    """Two removals proposed while both were possible: the second cannot pass."""
    propose(gov_chain, KEYS[0], "remove_member", member="mapo-gu")
    first = latest_id(gov_chain)
    propose(gov_chain, KEYS[0], "remove_member", member="yongsan-gu")
    second = latest_id(gov_chain)
    for proposal in (first, second):
        send(gov_chain, KEYS[1], "approve", proposal=proposal)
    assert send(gov_chain, KEYS[2], "approve", proposal=first).code == ResultCode.OK
    result = send(gov_chain, KEYS[2], "approve", proposal=second)
    assert result.code == ResultCode.REFUSED
    assert "cannot be applied" in result.log and "fewer than the threshold" in result.log
    assert len(gov_chain.engine.query("gov", "members", {})["members"]) == 3
    record = get_proposal(gov_chain, second)
    assert record["status"] == "open" and len(record["approvals"]) == 2


def test_emptying_the_validator_set_is_refused(tmp_path: Path) -> None:
    chain = make_gov_chain(tmp_path, threshold=1)
    result = propose(chain, KEYS[0], "set_validator", public_key=chain.validator.public_key,
                     power=0)
    assert result.code == ResultCode.REFUSED
    assert "validator set would have 0 members" in result.log
    assert chain.engine.next_validators.get_power(chain.validator.public_key) == 10
    assert chain.engine.query("gov", "proposals", {}) == []
    chain.store.close()


def test_a_role_grant_to_a_malformed_key_is_refused(gov_chain: LocalChain) -> None:
    tx = gov_chain.make_tx(KEYS[0], service="gov", method="propose",
                           args={"kind": "grant_role", "role": "vehicle.registrar",
                                 "public_key": b"\x01" * 31, "deadline_height": 10})
    check = gov_chain.engine.check_tx(tx.encode())
    assert check.code == ResultCode.BAD_ARGS
    assert "public_key: Data should have at least 32 bytes" in check.log
    gov_chain.nonces[KEYS[0].public_key] -= 1
    bad_role = propose(gov_chain, KEYS[0], "grant_role", role="Not A Role",
                       public_key=NEWCOMER.public_key)
    assert bad_role.code == ResultCode.REFUSED and "role name" in bad_role.log


def test_an_action_with_missing_or_foreign_fields_is_refused(gov_chain: LocalChain) -> None:
    missing = propose(gov_chain, KEYS[0], "grant_role", role="vehicle.registrar")
    assert missing.code == ResultCode.REFUSED and "needs public_key" in missing.log
    extra = propose(gov_chain, KEYS[0], "set_threshold", threshold=2, role="notary.issuer")
    assert extra.code == ResultCode.REFUSED and "takes no role" in extra.log


def test_an_unknown_parameter_or_a_wrong_type_is_refused(gov_chain: LocalChain) -> None:
    unknown = propose(gov_chain, KEYS[0], "set_param", param="notary.no_such_thing", value=1)
    assert unknown.code == ResultCode.REFUSED and "notary.no_such_thing" in unknown.log
    wrong = propose(gov_chain, KEYS[0], "set_param", param="notary.metadata_entries_max",
                    value="many")
    assert wrong.code == ResultCode.REFUSED and "notary.metadata_entries_max" in wrong.log
    assert gov_chain.engine.query("gov", "proposals", {}) == []


def test_a_parameter_is_set_when_k_members_approve(gov_chain: LocalChain) -> None:
    propose(gov_chain, KEYS[0], "set_param", param="notary.metadata_entries_max", value=2)
    proposal = latest_id(gov_chain)
    send(gov_chain, KEYS[1], "approve", proposal=proposal)
    send(gov_chain, KEYS[2], "approve", proposal=proposal)
    assert gov_chain.engine.query("gov", "parameters", {}) == [
        {"name": "notary.metadata_entries_max", "value": 2, "height": gov_chain.engine.height}]


class RogueArgs(StrictArgs):
    public_key: bytes


class RogueService(Service):
    """A service that tries to grant itself a role and to add a validator."""

    name = "rogue"
    version = "1.0.0"

    @tx_method(args=RogueArgs, roles=None)
    def grant(self, ctx: TxContext, args: RogueArgs) -> None:
        ctx.state.set(b"touched", True)
        ctx.grant_role("notary.issuer", args.public_key)

    @tx_method(args=RogueArgs, roles=None)
    def add_validator(self, ctx: TxContext, args: RogueArgs) -> None:
        ctx.request_validator_update(args.public_key, 100)


def test_a_service_cannot_write_roles_or_validators_without_the_privilege(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    services = {**load_services(), "rogue": RogueService()}
    monkeypatch.setattr(conftest, "load_services", lambda: services)
    validator, issuer = make_key(1), make_key(2)
    genesis = replace(make_genesis(validator, issuer),
                      services=get_installed_versions(services))
    chain = LocalChain(tmp_path / "chain.sqlite", genesis, validator, issuer)
    assert not hasattr(TxContext, "roles")
    for method, privilege in (("grant", "roles"), ("add_validator", "validators")):
        tx = chain.make_tx(service="rogue", method=method,
                           args={"public_key": NEWCOMER.public_key})
        result = chain.commit(tx).execution.results[0]
        assert result.code == ResultCode.REFUSED
        assert f"service 'rogue' lacks the privilege '{privilege}'" in result.log
    assert chain.store.get_state(b"rogue/touched") is None
    assert chain.store.get_state(b"auth/" + compute_role_key("notary.issuer",
                                                             NEWCOMER.public_key)) is None
    assert chain.engine.next_validators.get_power(NEWCOMER.public_key) == 0
    chain.store.close()


def test_genesis_threshold_must_fit_the_agencies() -> None:
    agencies = tuple(Agency(name, key.public_key)
                     for name, key in zip(AGENCY_NAMES, KEYS, strict=True))
    validators = ValidatorSet.of([Validator(make_key(1).public_key, 10, "v0")])
    for threshold in (0, 5):
        with pytest.raises(DecodeError, match="threshold must be from 1 to 4"):
            Genesis(CHAIN_ID, GENESIS_TIME_MS, validators, {}, agencies, threshold=threshold)
    genesis = Genesis(CHAIN_ID, GENESIS_TIME_MS, validators, {}, agencies, threshold=3)
    assert genesis.to_json()["governance"] == {"threshold": 3}
    assert Genesis.from_json(genesis.to_json()) == genesis


class EmptyState:
    def get_state(self, key: bytes) -> bytes | None:
        return None


def test_a_genesis_agency_runs_the_validator_named_after_it() -> None:
    """A devnet's agencies sign with client keys, and validator i bears agency i's name."""
    clients = [make_key(60 + index) for index in range(2)]
    validators = [make_key(70 + index) for index in range(2)]
    genesis = Genesis(chain_id=CHAIN_ID, genesis_time_ms=GENESIS_TIME_MS,
                      validators=ValidatorSet.of([
                          Validator(validators[0].public_key, 10, "city-hall"),
                          Validator(validators[1].public_key, 10, "unrelated-node")]),
                      agencies=(Agency("city-hall", clients[0].public_key),
                                Agency("mapo-gu", clients[1].public_key)),
                      threshold=1)
    overlay = Overlay(EmptyState())
    GovService().init_genesis(ServiceState(overlay, "gov"), genesis)
    answer = GovService().run_query(ServiceState(overlay, "gov"), "members", {})
    linked = {member["name"]: member["validator"] for member in answer["members"]}
    assert linked == {"city-hall": validators[0].public_key.hex(), "mapo-gu": None}
