"""Safety rules: persist before signing, refuse conflicts and regressions, survive restarts."""

from __future__ import annotations

import contextlib

import pytest
from consensus_harness import CHAIN_ID, make_block, make_keys, make_validator_set
from consensus_solo import PRECOMMIT, PREVOTE, Solo, only, votes_of
from hypothesis import given, settings
from hypothesis import strategies as st

from seoulchain.consensus.events import BroadcastVote, TimeoutKind
from seoulchain.consensus.messages import NIL_BLOCK_ID, Step
from seoulchain.consensus.safety import (
    InMemorySigningStateStore,
    SafetyRules,
    SignedRecord,
    SigningRefused,
)
from seoulchain.crypto import sha256
from seoulchain.errors import DecodeError
from seoulchain.ledger.types import VoteType

KEY = make_keys(1)[0]
BLOCK_A = sha256(b"a")
BLOCK_B = sha256(b"b")


def make_rules(store: InMemorySigningStateStore | None = None) -> SafetyRules:
    return SafetyRules(KEY, CHAIN_ID, store or InMemorySigningStateStore())


def test_same_request_gets_the_same_signature_without_a_second_save() -> None:
    store = InMemorySigningStateStore()
    rules = make_rules(store)
    first = rules.sign_vote(VoteType.PREVOTE, 5, 1, BLOCK_A)
    again = make_rules(store).sign_vote(VoteType.PREVOTE, 5, 1, BLOCK_A)
    assert first == again and store.saves == 1


def test_refuses_a_different_block_at_the_same_step_even_after_restart() -> None:
    store = InMemorySigningStateStore()
    make_rules(store).sign_vote(VoteType.PRECOMMIT, 5, 1, BLOCK_A)
    for block_id in (BLOCK_B, NIL_BLOCK_ID):
        with pytest.raises(SigningRefused):
            make_rules(store).sign_vote(VoteType.PRECOMMIT, 5, 1, block_id)


@pytest.mark.parametrize(("height", "round_", "vote_type"), [
    (4, 9, VoteType.PRECOMMIT), (5, 0, VoteType.PRECOMMIT), (5, 1, VoteType.PREVOTE)])
def test_refuses_to_sign_below_the_last_signed_step(height: int, round_: int,
                                                    vote_type: int) -> None:
    rules = make_rules()
    rules.sign_vote(VoteType.PRECOMMIT, 5, 1, BLOCK_A)
    with pytest.raises(SigningRefused):
        rules.sign_vote(vote_type, height, round_, BLOCK_A)


def test_proposal_then_prevote_then_precommit_then_next_round_are_allowed() -> None:
    validators = make_validator_set([KEY])
    rules = make_rules()
    block = make_block(5, validators, KEY.public_key)
    rules.sign_proposal(5, 1, -1, block)
    rules.sign_vote(VoteType.PREVOTE, 5, 1, block.block_id())
    rules.sign_vote(VoteType.PRECOMMIT, 5, 1, block.block_id())
    rules.sign_vote(VoteType.PREVOTE, 5, 2, NIL_BLOCK_ID)
    assert rules.last_signed.position == (5, 2, Step.PREVOTE)
    with pytest.raises(SigningRefused):
        rules.sign_proposal(5, 2, -1, block)


class FailingStore(InMemorySigningStateStore):
    """A store whose disk is gone."""

    def save(self, record: SignedRecord) -> None:
        raise OSError("disk full")


def test_no_signature_leaves_when_the_record_cannot_be_saved() -> None:
    rules = make_rules(FailingStore())
    with pytest.raises(OSError):
        rules.sign_vote(VoteType.PREVOTE, 1, 0, BLOCK_A)
    assert rules.last_signed is None


def test_signed_record_roundtrip() -> None:
    record = SignedRecord(3, 4, Step.PRECOMMIT, BLOCK_A, sha256(b"x"))
    assert SignedRecord.decode(record.encode()) == record


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_signed_record_decode_raises_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        SignedRecord.decode(data)


# ---------------------------------------------------------------- the machine with the rules


def test_restarted_machine_without_its_wal_refuses_a_conflicting_vote() -> None:
    """safety: restart at the same step with the lock lost: no conflicting prevote leaves."""
    solo = Solo()
    solo.start()
    block = solo.block("a")
    solo.propose(0, block)
    assert votes_of(solo.validate(block)) == [(PREVOTE, 0, block.block_id())]
    restarted = Solo(store=solo.store)
    restarted.start()
    actions = restarted.timeout(TimeoutKind.PROPOSE, 0)  # would prevote nil in round 0
    assert not only(actions, BroadcastVote)
    assert restarted.machine.refused_signatures == 1
    assert restarted.machine.step == Step.PREVOTE


def test_wal_replay_restores_the_lock_and_the_lock_holds() -> None:
    """safety: replaying the logged events and own votes rebuilds the lock (n=4, f=1)."""
    solo = Solo()
    solo.start()
    locked, other = solo.block("a"), solo.block("b")
    solo.propose(0, locked)
    solo.validate(locked)
    solo.vote([0, 1], PREVOTE, 0, locked.block_id())
    solo.vote([0, 1], PRECOMMIT, 0, NIL_BLOCK_ID)
    solo.timeout(TimeoutKind.PRECOMMIT, 0)
    assert solo.machine.state.locked_round == 0 and solo.machine.round == 1

    restarted = Solo(store=solo.store)
    for event in solo.log:
        restarted.machine.on_event(event)
    assert restarted.machine.state == solo.machine.state
    assert restarted.machine.refused_signatures >= 1  # old votes came back from the log
    restarted.propose(1, other)
    assert votes_of(restarted.validate(other)) == [(PREVOTE, 1, NIL_BLOCK_ID)]
