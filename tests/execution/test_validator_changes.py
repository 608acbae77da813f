"""Validator set changes take effect two heights later; evidence is committed on chain."""

from __future__ import annotations

import pytest

from seoulchain.client.audit import audit_chain
from seoulchain.consensus.evidence import DuplicateVoteEvidence
from seoulchain.consensus.messages import Vote
from seoulchain.crypto import sha256
from seoulchain.execution.engine import InvalidBlock
from seoulchain.execution.results import ResultCode
from seoulchain.execution.service import load_services
from seoulchain.ledger.types import Commit, CommitSig, VoteType, compute_vote_sign_bytes
from seoulchain.node.validator import Committed
from tests.conftest import LocalChain, make_key


def set_validator(chain: LocalChain, public_key: bytes, power: int) -> ResultCode:
    """Propose a validator change as the lone member agency (k = 1: it passes at once)."""
    tx = chain.make_tx(service="gov", method="propose",
                       args={"kind": "set_validator", "public_key": public_key, "power": power,
                             "name": "new", "deadline_height": chain.engine.height + 10})
    return chain.commit(tx).execution.results[0].code


def test_change_decided_at_h_takes_effect_at_h_plus_2(chain: LocalChain) -> None:
    chain.commit(chain.make_tx())
    original = chain.engine.validators
    newcomer = make_key(40)
    assert set_validator(chain, newcomer.public_key, 1) == ResultCode.OK  # decided at h=2
    header_2 = chain.store.get_block(2).header
    assert header_2.validators_hash == original.hash()
    assert header_2.next_validators_hash == original.hash()  # set(3) is unchanged
    chain.commit(chain.make_tx())  # h=3
    header_3 = chain.store.get_block(3).header
    assert header_3.validators_hash == original.hash()
    assert header_3.next_validators_hash != original.hash()  # set(4) has the newcomer
    assert chain.engine.validators.get_power(newcomer.public_key) == 1
    assert chain.engine.validators.hash() == header_3.next_validators_hash


def test_validator_sets_survive_restart_and_audit(chain: LocalChain) -> None:
    set_validator(chain, make_key(41).public_key, 1)
    chain.commit(chain.make_tx())
    expected = (chain.engine.last_validators, chain.engine.validators,
                chain.engine.next_validators)
    chain.reopen()
    assert (chain.engine.last_validators, chain.engine.validators,
            chain.engine.next_validators) == expected
    assert audit_chain(chain.genesis, chain.store, load_services()).ok


def test_removing_the_last_validator_is_refused(chain: LocalChain) -> None:
    code = set_validator(chain, chain.validator.public_key, 0)
    assert code == ResultCode.REFUSED
    assert chain.engine.next_validators.get_power(chain.validator.public_key) == 10


def test_only_member_agencies_change_validators(chain: LocalChain) -> None:
    stranger = make_key(42)
    tx = chain.make_tx(stranger, service="gov", method="propose",
                       args={"kind": "set_validator", "public_key": stranger.public_key,
                             "power": 5, "deadline_height": 10})
    result = chain.commit(tx).execution.results[0]
    assert result.code == ResultCode.REFUSED
    assert "not a key of a member agency" in result.log
    assert chain.engine.next_validators.get_power(stranger.public_key) == 0


def test_a_lone_validator_that_loses_its_majority_waits_for_the_new_one(
        chain: LocalChain) -> None:
    """validator core (n=1, then 2): from the height whose set gives the first validator
    less than 2/3 of the power, it commits nothing alone; that height waits for votes."""
    set_validator(chain, make_key(43).public_key, 100)
    chain.commit(chain.make_tx())
    height = chain.engine.height
    assert chain.mempool.add(chain.make_tx().encode()).ok
    effects = chain.step()
    assert not [effect for effect in effects if isinstance(effect, Committed)]
    assert chain.engine.height == height
    assert chain.core is not None and chain.core.machine.height == height + 1


def double_vote(chain: LocalChain, height: int) -> bytes:
    votes = []
    for index in (1, 2):
        block_id = sha256(bytes([index]))
        signature = chain.validator.sign(compute_vote_sign_bytes(
            chain.genesis.chain_id, VoteType.PREVOTE, height, 0, block_id))
        votes.append(Vote(VoteType.PREVOTE, height, 0, block_id, chain.validator.public_key,
                          signature))
    return DuplicateVoteEvidence.create(*votes).encode()


def test_evidence_is_committed_once_and_audited(chain: LocalChain) -> None:
    chain.commit(chain.make_tx())
    evidence = double_vote(chain, 1)
    block = chain.engine.prepare_proposal(time_ms=chain.clock_ms + 10,
                                          proposer=chain.validator.public_key, candidates=[],
                                          last_commit=chain.store.get_commit(1),
                                          evidence=[evidence, evidence, b"junk"])
    assert list(block.evidence) == [evidence]
    chain.engine.executions.clear()
    chain.engine.process_proposal(block)
    signature = chain.validator.sign(compute_vote_sign_bytes(
        chain.genesis.chain_id, VoteType.PRECOMMIT, 2, 0, block.block_id()))
    chain.engine.commit(block, Commit(2, 0, block.block_id(),
                                      (CommitSig(chain.validator.public_key, signature),)))
    again = chain.engine.prepare_proposal(time_ms=chain.clock_ms + 20,
                                          proposer=chain.validator.public_key, candidates=[],
                                          last_commit=chain.store.get_commit(2),
                                          evidence=[evidence])
    assert again.evidence == ()
    chain.engine.executions.clear()
    forced = type(again)(again.header, again.txs, again.last_commit, (evidence,))
    with pytest.raises(InvalidBlock, match="evidence"):
        chain.engine.process_proposal(forced)
    assert audit_chain(chain.genesis, chain.store, load_services()).ok
