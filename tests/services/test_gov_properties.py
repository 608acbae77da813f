"""Governance as a state machine, checked by property: random proposals, approvals,
withdrawals and closes by members and outsiders, block after block, keep its invariants.

The blocks run through the engine alone (`prepare_proposal`, `commit`), without consensus,
so that governance may hand the validator set to keys no process here runs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from seoulchain.execution.platform import get_installed_versions
from seoulchain.execution.results import ResultCode, TxResult
from seoulchain.execution.service import load_services
from seoulchain.ledger.genesis import Agency, Genesis
from seoulchain.ledger.types import Validator, ValidatorSet
from seoulchain.services import gov
from tests.conftest import CHAIN_ID, GENESIS_TIME_MS, EngineChain, make_key
from tests.services.gov_helpers import AGENCY_NAMES, make_agency_keys

KEYS = make_agency_keys()
NEWCOMER, OUTSIDER = make_key(50), make_key(52)  # a member-to-be, and never a member
SIGNERS = (*KEYS, NEWCOMER, OUTSIDER)
VALIDATOR = make_key(1)
OTHER_VALIDATORS = (make_key(51), make_key(53))
NAMES = (*AGENCY_NAMES, "eunpyeong-gu")
ROLES = ("notary.issuer", "vehicle.registrar")
# Small limits, so that random runs reach them.
OPEN_PROPOSALS_MAX = 5
OPEN_PROPOSALS_PER_MEMBER_MAX = 3
# Events of an applied action: they appear only in the transaction that passes a proposal.
ACTION_EVENTS = frozenset({"gov.member_added", "gov.member_removed", "gov.threshold_changed",
                           "gov.role_granted", "gov.role_revoked", "gov.validator_changed",
                           "gov.param_set", "gov.upgrade_scheduled"})

ACTIONS = st.one_of(
    st.builds(lambda threshold: {"kind": "set_threshold", "threshold": threshold},
              st.integers(1, len(NAMES) + 1)),
    st.builds(lambda validator: {"kind": "add_member", "member": NAMES[-1],
                                 "public_key": NEWCOMER.public_key}
              | ({} if validator is None
                 else {"validator_key": validator.public_key, "power": 1}),
              st.sampled_from((None, VALIDATOR, *OTHER_VALIDATORS))),
    st.builds(lambda name: {"kind": "remove_member", "member": name}, st.sampled_from(NAMES)),
    st.builds(lambda kind, role, key: {"kind": kind, "role": role, "public_key": key.public_key},
              st.sampled_from(("grant_role", "revoke_role")), st.sampled_from(ROLES),
              st.sampled_from((NEWCOMER, OUTSIDER, KEYS[0]))),
    st.builds(lambda key, power: {"kind": "set_validator", "public_key": key.public_key,
                                  "power": power},
              st.sampled_from((VALIDATOR, *OTHER_VALIDATORS)), st.integers(0, 2)),
    st.builds(lambda value: {"kind": "set_param", "param": "notary.metadata_entries_max",
                             "value": value}, st.integers(0, 3)),
)
# Signers: the agencies' keys mostly, then the member-to-be's and an outsider's.
SIGNER_INDEXES = st.sampled_from((0, 1, 2, 3, 0, 1, 2, 3, 4, 5))
# (method, signer index, action or how far back from the newest proposal, deadline offset
# from the tx's height)
TXS = st.one_of(
    st.tuples(st.just("propose"), SIGNER_INDEXES, ACTIONS, st.integers(-1, 12)),
    st.tuples(st.just("approve"), SIGNER_INDEXES, st.integers(0, 3), st.just(0)),
    st.tuples(st.sampled_from(("approve", "withdraw", "close")), SIGNER_INDEXES,
              st.integers(0, 5), st.just(0)),
)
BLOCKS = st.lists(st.lists(TXS, max_size=4), min_size=1, max_size=40)


class GovChain(EngineChain):
    """An engine over a store, committing each block as proposed (no consensus)."""

    def __init__(self, path: Path, threshold: int):
        genesis = Genesis(CHAIN_ID, GENESIS_TIME_MS,
                          ValidatorSet.of([Validator(VALIDATOR.public_key, 10, "v0")]),
                          {"notary.issuer": (KEYS[0].public_key,)},
                          tuple(Agency(name, key.public_key)
                                for name, key in zip(AGENCY_NAMES, KEYS, strict=True)),
                          threshold=threshold,
                          services=get_installed_versions(load_services()))
        super().__init__(path, genesis, VALIDATOR, "gov")


    def proposal(self, proposal_id: int) -> dict[str, Any] | None:
        return self.engine.query("gov", "proposal", {"proposal": proposal_id})


class Shadow:
    """The members and k as the applied actions' events tell them, and what passed."""

    def __init__(self, threshold: int):
        self.members = set(AGENCY_NAMES)
        self.threshold = threshold
        self.passed: set[int] = set()

    def check_tx(self, chain: GovChain, height: int, method: str, args: dict[str, Any],
                 result: TxResult) -> None:
        """Check one committed tx against the state before it, then follow its events."""
        kinds = [event.kind for event in result.events]
        if result.code != ResultCode.OK:
            assert kinds == []
            return
        if method in ("approve", "withdraw"):
            record = chain.proposal(args["proposal"])
            assert record is not None and height <= record["deadline_height"]
        passed = [event.attributes["proposal"] for event in result.events
                  if event.kind == "gov.passed"]
        assert len(passed) <= 1
        assert not set(kinds) & ACTION_EVENTS or passed, kinds
        for proposal_id in passed:
            self.check_passed(chain, height, proposal_id)
        for item in result.events:
            if item.kind == "gov.member_added":
                self.members.add(item.attributes["member"])
            elif item.kind == "gov.member_removed":
                self.members.discard(item.attributes["member"])
            elif item.kind == "gov.threshold_changed":
                self.threshold = item.attributes["threshold"]

    def check_passed(self, chain: GovChain, height: int, proposal_id: Any) -> None:
        """A proposal passes once, before its deadline, with k distinct current members."""
        assert isinstance(proposal_id, int) and proposal_id not in self.passed
        self.passed.add(proposal_id)
        record = chain.proposal(proposal_id)
        assert record is not None and record["closed_height"] == height
        assert height <= record["deadline_height"]
        names = [item["member"] for item in record["approvals"]]
        assert len(set(names)) == len(names)
        assert len(set(names) & self.members) >= self.threshold
        assert all(item["height"] <= height for item in record["approvals"])

    def check_block(self, chain: GovChain, next_id: int) -> None:
        """After a block: k fits the members, the validator sets are not empty, only
        current members' approvals stand on open proposals, and the limits hold."""
        answer = chain.engine.query("gov", "members", {})
        assert {member["name"] for member in answer["members"]} == self.members
        assert answer["threshold"] == self.threshold
        assert 1 <= self.threshold <= len(self.members)
        height = chain.engine.height
        for validators in (chain.engine.validators, chain.engine.next_validators,
                           chain.store.get_validator_set(height + 2)):
            assert validators is not None and validators.validators
        open_by: dict[str, int] = {}
        for proposal_id in range(1, next_id):
            record = chain.proposal(proposal_id)
            assert record is not None
            assert (record["status"] == "passed") == (proposal_id in self.passed)
            if record["status"] == "open":
                assert {item["member"] for item in record["approvals"]} <= self.members
                open_by[record["proposer"]] = open_by.get(record["proposer"], 0) + 1
        assert sum(open_by.values()) <= OPEN_PROPOSALS_MAX
        assert max(open_by.values(), default=0) <= OPEN_PROPOSALS_PER_MEMBER_MAX


def label(passed: int) -> None:
    """Tell hypothesis' statistics how many proposals passed in a run."""
    event(f"proposals passed: {passed if passed < 3 else '3+'}")


def get_newest(chain: GovChain) -> int:
    """Return the number of the newest proposal (0: none yet)."""
    newest = chain.engine.query("gov", "proposals", {"limit": 1})
    return newest[0]["id"] if newest else 0


def make_args(chain: GovChain, method: str, subject: Any, offset: int) -> dict[str, Any]:
    if method != "propose":
        return {"proposal": max(1, get_newest(chain) - subject)}
    return {**subject, "deadline_height": chain.engine.height + 1 + offset}


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(threshold=st.integers(1, len(AGENCY_NAMES)), blocks=BLOCKS)
def test_gov_keeps_its_invariants_under_random_proposals_and_approvals(
        threshold: int, blocks: list[list[tuple[str, int, Any, int]]]) -> None:
    """gov property: k within 1..members, each proposal passes at most once and only with
    k distinct current members' approvals before its deadline, no action without a pass,
    the validator set never empty, open proposals within their limits."""
    with tempfile.TemporaryDirectory() as directory, \
            mock.patch.object(gov, "OPEN_PROPOSALS_MAX", OPEN_PROPOSALS_MAX), \
            mock.patch.object(gov, "OPEN_PROPOSALS_PER_MEMBER_MAX",
                              OPEN_PROPOSALS_PER_MEMBER_MAX):
        chain = GovChain(Path(directory) / "chain.sqlite", threshold)
        shadow = Shadow(threshold)
        try:
            for block in blocks:
                height = chain.engine.height + 1
                calls = [(method, SIGNERS[signer], make_args(chain, method, subject, offset))
                         for method, signer, subject, offset in block]
                results = chain.run_block([chain.sign(key, method, args)
                                           for method, key, args in calls])
                for (method, _, args), result in zip(calls, results, strict=True):
                    shadow.check_tx(chain, height, method, args, result)
                shadow.check_block(chain, get_newest(chain) + 1)
            label(len(shadow.passed))
        finally:
            chain.store.close()
