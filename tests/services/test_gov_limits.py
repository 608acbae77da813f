"""Governance: the limits on proposals, members and roles, and the transitions between them
(all-or-nothing passing, departing members' approvals, threshold changes, validators)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seoulchain.execution.results import ResultCode
from seoulchain.services import gov
from tests.conftest import LocalChain, make_key
from tests.services.gov_helpers import (
    AGENCY_NAMES,
    get_proposal,
    latest_id,
    make_agency_keys,
    make_gov_chain,
    propose,
    send,
)

KEYS = make_agency_keys()
NEWCOMER = make_key(50)
NEWCOMER_VALIDATOR = make_key(51)
PARAM = "notary.metadata_entries_max"


@pytest.fixture
def gov_chain(tmp_path: Path) -> Iterator[LocalChain]:
    chain = make_gov_chain(tmp_path)
    yield chain
    chain.store.close()


@pytest.fixture
def solo_chain(tmp_path: Path) -> Iterator[LocalChain]:
    """Four agencies with k = 1: every proposal passes when proposed."""
    chain = make_gov_chain(tmp_path, threshold=1)
    yield chain
    chain.store.close()


def pass_with(chain: LocalChain, kind: str, approvers: int = 3, **fields: Any) -> int:
    """Propose as the first agency and approve as the next ones; return the proposal."""
    assert propose(chain, KEYS[0], kind, **fields).code == ResultCode.OK
    proposal = latest_id(chain)
    for key in KEYS[1:approvers]:
        assert send(chain, key, "approve", proposal=proposal).code == ResultCode.OK
    assert get_proposal(chain, proposal)["status"] == "passed"
    return proposal


def members(chain: LocalChain) -> list[str]:
    return [member["name"] for member in chain.engine.query("gov", "members", {})["members"]]


# ---------------------------------------------------------------------- limits


@pytest.mark.parametrize("deadline_blocks", [0, 1, gov.VOTING_PERIOD_BLOCKS_MAX + 2])
def test_a_deadline_in_the_past_at_this_height_or_too_far_is_refused(
        gov_chain: LocalChain, deadline_blocks: int) -> None:
    """The block runs at height h + 1: offsets 0 and 1 name h and h + 1."""
    gov_chain.commit(gov_chain.make_tx())
    result = propose(gov_chain, KEYS[0], "set_threshold", deadline_blocks=deadline_blocks,
                     threshold=2)
    assert result.code == ResultCode.REFUSED
    assert f"after this height ({gov_chain.engine.height})" in result.log
    assert f"at most {gov.VOTING_PERIOD_BLOCKS_MAX} blocks ahead" in result.log
    assert gov_chain.engine.query("gov", "proposals", {}) == []


def test_the_next_height_and_the_longest_period_are_accepted(gov_chain: LocalChain) -> None:
    for deadline_blocks in (2, gov.VOTING_PERIOD_BLOCKS_MAX + 1):
        result = propose(gov_chain, KEYS[0], "set_threshold", deadline_blocks=deadline_blocks,
                         threshold=2)
        assert result.code == ResultCode.OK, result.log


def test_open_proposals_are_limited_in_all(gov_chain: LocalChain,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gov, "OPEN_PROPOSALS_MAX", 3)
    for key in KEYS[:3]:
        assert propose(gov_chain, key, "set_param", param=PARAM, value=2).code == ResultCode.OK
    refused = propose(gov_chain, KEYS[3], "set_param", param=PARAM, value=2)
    assert refused.code == ResultCode.REFUSED
    assert "3 proposals are open, the most at once (3)" in refused.log
    assert len(gov_chain.engine.query("gov", "proposals", {})) == 3
    # One passes and frees its place.
    send(gov_chain, KEYS[3], "approve", proposal=1)
    assert send(gov_chain, KEYS[2], "approve", proposal=1).code == ResultCode.OK
    assert get_proposal(gov_chain, 1)["status"] == "passed"
    assert propose(gov_chain, KEYS[3], "set_param", param=PARAM, value=3).code == ResultCode.OK


def test_open_proposals_are_limited_per_member_and_expiry_frees_them(
        gov_chain: LocalChain, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gov, "OPEN_PROPOSALS_PER_MEMBER_MAX", 2)
    for _ in range(2):
        assert propose(gov_chain, KEYS[0], "set_param", deadline_blocks=3, param=PARAM,
                       value=2).code == ResultCode.OK
    refused = propose(gov_chain, KEYS[0], "set_param", param=PARAM, value=2)
    assert refused.code == ResultCode.REFUSED
    assert f"member {AGENCY_NAMES[0]} has 2 proposals open, the most one member may (2)" \
        in refused.log
    assert propose(gov_chain, KEYS[1], "set_param", param=PARAM, value=2).code == ResultCode.OK
    while get_proposal(gov_chain, 2)["status"] != "expired":
        gov_chain.commit(gov_chain.make_tx())
    assert propose(gov_chain, KEYS[0], "set_param", param=PARAM, value=2).code == ResultCode.OK


def test_members_are_limited(solo_chain: LocalChain, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gov, "MEMBERS_MAX", 4)
    result = propose(solo_chain, KEYS[0], "add_member", member="eunpyeong-gu",
                     public_key=NEWCOMER.public_key)
    assert result.code == ResultCode.REFUSED
    assert "the consortium has its maximum of 4 members" in result.log
    assert members(solo_chain) == sorted(AGENCY_NAMES)


def test_roles_granted_to_one_key_are_limited(solo_chain: LocalChain,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gov, "ROLES_PER_KEY_MAX", 2)
    for role in ("notary.issuer", "vehicle.registrar"):
        assert propose(solo_chain, KEYS[0], "grant_role", role=role,
                       public_key=NEWCOMER.public_key).code == ResultCode.OK
    refused = propose(solo_chain, KEYS[0], "grant_role", role="vehicle.inspector",
                      public_key=NEWCOMER.public_key)
    assert refused.code == ResultCode.REFUSED
    assert "holds 2 roles granted by governance, the most one key may (2)" in refused.log
    assert propose(solo_chain, KEYS[0], "revoke_role", role="notary.issuer",
                   public_key=NEWCOMER.public_key).code == ResultCode.OK
    assert propose(solo_chain, KEYS[0], "grant_role", role="vehicle.inspector",
                   public_key=NEWCOMER.public_key).code == ResultCode.OK


def test_granting_a_held_role_or_revoking_a_missing_one_is_refused_when_proposed(
        solo_chain: LocalChain) -> None:
    held = propose(solo_chain, KEYS[1], "grant_role", role="notary.issuer",
                   public_key=KEYS[0].public_key)
    assert held.code == ResultCode.REFUSED and "already holds notary.issuer" in held.log
    missing = propose(solo_chain, KEYS[1], "revoke_role", role="vehicle.registrar",
                      public_key=NEWCOMER.public_key)
    assert missing.code == ResultCode.REFUSED and "does not hold vehicle.registrar" in missing.log
    assert solo_chain.engine.query("gov", "proposals", {}) == []


# ---------------------------------------------------------------------- transitions


def snapshot(chain: LocalChain) -> tuple[Any, ...]:
    """What governance decides, as committed: members, k, proposals, roles, validators."""
    engine = chain.engine
    return (engine.query("gov", "members", {}), engine.query("gov", "parameters", {}),
            engine.query("gov", "proposals", {"limit": 100}), engine.get_roles(KEYS[0].public_key),
            engine.next_validators, chain.store.get_state(b"platform/upgrades"))


def make_stale(chain: LocalChain, kind: str) -> tuple[dict[str, Any], str]:
    """Return a proposal's fields that another proposal (passed here) makes inapplicable,
    and the reason the pending one is then refused."""
    if kind == "add_member":
        fields = {"member": "eunpyeong-gu", "public_key": NEWCOMER.public_key,
                  "validator_key": NEWCOMER_VALIDATOR.public_key, "power": 1}
        return fields, "eunpyeong-gu is already a member"
    if kind == "set_threshold":
        return {"threshold": 4}, "the threshold must be from 1 to 3"
    if kind in ("grant_role", "revoke_role"):
        return {"role": "notary.issuer", "public_key": KEYS[0].public_key}, "hold"
    if kind == "set_validator":
        return {"public_key": chain.validator.public_key, "power": 0}, \
            "validator set would have 0 members"
    return {"service": "notary", "version": "9.0.0", "height": chain.engine.height + 6}, \
        "an upgrade applies from a later height"


def make_inapplicable(chain: LocalChain, kind: str, fields: dict[str, Any]) -> None:
    if kind == "add_member":
        pass_with(chain, "add_member", member="eunpyeong-gu",
                  public_key=make_key(70).public_key)
    elif kind == "set_threshold":
        pass_with(chain, "remove_member", member=AGENCY_NAMES[3])
    elif kind in ("grant_role", "revoke_role"):  # another proposal does it first
        pass_with(chain, kind, **fields)
    elif kind == "set_validator":  # the only other validator leaves first
        pass_with(chain, "set_validator", public_key=NEWCOMER_VALIDATOR.public_key, power=0)
    else:
        while chain.engine.height + 1 < fields["height"]:
            chain.commit(chain.make_tx())


@pytest.mark.parametrize("kind", ["add_member", "set_threshold", "grant_role", "revoke_role",
                                  "set_validator", "upgrade"])
def test_an_action_that_cannot_be_applied_any_more_changes_nothing(
        gov_chain: LocalChain, kind: str) -> None:
    """The approval that would pass it is refused, and nothing of the action is written."""
    if kind == "set_validator":  # a second validator, so removing the first is possible
        pass_with(gov_chain, "set_validator", public_key=NEWCOMER_VALIDATOR.public_key,
                  power=1)
    if kind == "grant_role":  # the role is taken away first, so granting it is possible
        pass_with(gov_chain, "revoke_role", role="notary.issuer", public_key=KEYS[0].public_key)
    fields, reason = make_stale(gov_chain, kind)
    assert propose(gov_chain, KEYS[1], kind, deadline_blocks=20, **fields).code == ResultCode.OK
    pending = latest_id(gov_chain)
    assert send(gov_chain, KEYS[2], "approve", proposal=pending).code == ResultCode.OK
    make_inapplicable(gov_chain, kind, fields)
    before = snapshot(gov_chain)
    result = send(gov_chain, KEYS[0], "approve", proposal=pending)
    assert result.code == ResultCode.REFUSED
    assert f"proposal {pending} reached its threshold but cannot be applied" in result.log
    assert reason in result.log
    assert result.events == ()
    assert snapshot(gov_chain) == before
    assert get_proposal(gov_chain, pending)["status"] in ("open", "expired")


def test_a_removed_members_approvals_stop_counting(gov_chain: LocalChain) -> None:
    """k = 3: mapo-gu approved a pending proposal, then leaves; its approval goes with it,
    and if an agency of that name joins again it approves afresh."""
    assert propose(gov_chain, KEYS[3], "set_param", deadline_blocks=30, param=PARAM,
                   value=2).code == ResultCode.OK
    pending = latest_id(gov_chain)
    send(gov_chain, KEYS[2], "approve", proposal=pending)
    removal = pass_with(gov_chain, "remove_member", member=AGENCY_NAMES[3])
    assert [item["member"] for item in get_proposal(gov_chain, pending)["approvals"]] == \
        [AGENCY_NAMES[2]]
    passed = get_proposal(gov_chain, removal)
    assert [item["member"] for item in passed["approvals"]] == list(AGENCY_NAMES[:3])
    rejoin_key = make_key(71)
    pass_with(gov_chain, "add_member", member=AGENCY_NAMES[3], public_key=rejoin_key.public_key)
    result = send(gov_chain, KEYS[0], "approve", proposal=pending)
    assert result.code == ResultCode.OK
    assert get_proposal(gov_chain, pending)["status"] == "open"  # 2 of k = 3
    assert send(gov_chain, rejoin_key, "approve", proposal=pending).code == ResultCode.OK
    assert get_proposal(gov_chain, pending)["status"] == "passed"


def test_lowering_k_lets_a_proposal_pass_with_its_next_approval(gov_chain: LocalChain) -> None:
    """A proposal that already has the new k approvals stays open until the next approval
    (a member's first, or an approver's withdrawal and approval again)."""
    assert propose(gov_chain, KEYS[0], "set_param", deadline_blocks=30, param=PARAM,
                   value=2).code == ResultCode.OK
    pending = latest_id(gov_chain)
    send(gov_chain, KEYS[1], "approve", proposal=pending)
    assert propose(gov_chain, KEYS[2], "set_threshold", threshold=2).code == ResultCode.OK
    lowering = latest_id(gov_chain)
    for key in (KEYS[3], KEYS[0]):
        assert send(gov_chain, key, "approve", proposal=lowering).code == ResultCode.OK
    assert gov_chain.engine.query("gov", "members", {})["threshold"] == 2
    assert get_proposal(gov_chain, pending)["status"] == "open"
    send(gov_chain, KEYS[1], "withdraw", proposal=pending)
    result = send(gov_chain, KEYS[1], "approve", proposal=pending)
    assert "gov.passed" in [event.kind for event in result.events]
    assert gov_chain.engine.query("gov", "parameters", {})[0]["value"] == 2


def test_removing_a_member_removes_its_validator_or_nothing(solo_chain: LocalChain) -> None:
    """A member linked to the chain's only validator cannot leave: that would empty the
    set; the refusal keeps both. With another validator in place, both go in one proposal."""
    validator = solo_chain.validator.public_key
    assert propose(solo_chain, KEYS[0], "add_member", member="eunpyeong-gu",
                   public_key=NEWCOMER.public_key, validator_key=validator,
                   power=10).code == ResultCode.OK
    refused = propose(solo_chain, KEYS[0], "remove_member", member="eunpyeong-gu")
    assert refused.code == ResultCode.REFUSED
    assert "validator set would have 0 members" in refused.log
    assert "eunpyeong-gu" in members(solo_chain)
    other = propose(solo_chain, KEYS[0], "add_member", member="seodaemun-gu",
                    public_key=make_key(72).public_key, validator_key=validator, power=10)
    assert other.code == ResultCode.REFUSED
    assert f"validator {validator.hex()} is member eunpyeong-gu's" in other.log
    assert propose(solo_chain, KEYS[0], "set_validator",
                   public_key=NEWCOMER_VALIDATOR.public_key, power=1).code == ResultCode.OK
    removed = propose(solo_chain, KEYS[0], "remove_member", member="eunpyeong-gu")
    assert removed.code == ResultCode.OK
    assert "eunpyeong-gu" not in members(solo_chain)
    assert solo_chain.engine.next_validators.get_power(validator) == 0
