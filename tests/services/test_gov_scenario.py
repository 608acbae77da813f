"""Scenario: four agencies (k = 3) admit a fifth as member and validator, grant it a role,
change a parameter, let a proposal expire, and remove it again."""

from __future__ import annotations

from pathlib import Path

import pytest

from seoulchain.consensus.messages import UnknownValidatorError, verify_commit
from seoulchain.crypto import SigningKey
from seoulchain.execution.engine import decode_result
from seoulchain.execution.results import ResultCode, TxResult
from seoulchain.execution.service import AUTH_NAMESPACE, has_role
from seoulchain.execution.state import ServiceState
from seoulchain.ledger.types import (
    Commit,
    CommitSig,
    Transaction,
    VoteType,
    compute_vote_sign_bytes,
)
from seoulchain.node.validator import Committed, SetTimer
from tests.conftest import LocalChain, make_key
from tests.services.gov_helpers import (
    get_proposal,
    latest_id,
    make_agency_keys,
    make_gov_chain,
)

KEYS = make_agency_keys()
FIFTH = make_key(60)  # the fifth agency's client key
FIFTH_VALIDATOR = make_key(61)
PARAM = "notary.metadata_entries_max"


# Timers fired before a height is given up on: a few rounds' worth.
TIMERS_MAX = 50


def commit(chain: LocalChain, *txs: Transaction) -> None:
    """Commit the next height, firing the core's timers while the fifth validator (which
    runs nowhere here) holds the proposal: the lone validator's 10 of 11 power decides in a
    later round."""
    for tx in txs:
        assert chain.mempool.add(tx.encode()).ok
    chain.clock_ms += 1000
    height = chain.engine.height + 1
    effects = chain.step()
    for _ in range(TIMERS_MAX):
        if any(isinstance(effect, Committed) for effect in effects):
            return
        timers = [effect for effect in effects if isinstance(effect, SetTimer)]
        assert timers, f"height {height} is stuck with no timer"
        effects = []
        for timer in timers:
            chain.clock_ms += timer.duration_ms
            effects.extend(chain.core.handle(timer.event))
    raise AssertionError(f"height {height} did not commit")


def send(chain: LocalChain, key: SigningKey, method: str, **args: object) -> TxResult:
    """Commit one gov transaction signed by `key` and return its result."""
    tx = chain.make_tx(key, service="gov", method=method, args=args)
    commit(chain, tx)
    record = chain.store.get_tx(tx.hash())
    assert record is not None
    return decode_result(record.result)


def propose_action(chain: LocalChain, key: SigningKey, kind: str, deadline_blocks: int = 10,
                   **fields: object) -> TxResult:
    return send(chain, key, "propose", kind=kind,
                deadline_height=chain.engine.height + deadline_blocks, **fields)


def pass_proposal(chain: LocalChain, kind: str, **fields: object) -> int:
    """Propose as the first agency and approve as the next two; return the passing height."""
    assert propose_action(chain, KEYS[0], kind, **fields).code == ResultCode.OK
    proposal = latest_id(chain)
    for key in KEYS[1:3]:
        assert send(chain, key, "approve", proposal=proposal).code == ResultCode.OK
    record = get_proposal(chain, proposal)
    assert record["status"] == "passed", record
    return record["closed_height"]


def sign_commit(chain: LocalChain, height: int, *keys: SigningKey) -> Commit:
    """A commit of block `height` signed by `keys` (as the validators of a network would)."""
    block_id = chain.store.get_block(height).block_id()
    sign_bytes = compute_vote_sign_bytes(chain.genesis.chain_id, VoteType.PRECOMMIT, height, 0,
                                         block_id)
    signatures = sorted((CommitSig(key.public_key, key.sign(sign_bytes)) for key in keys),
                        key=lambda sig: sig.validator)
    return Commit(height, 0, block_id, tuple(signatures))


def test_gov_scenario_four_agencies_admit_and_remove_a_fifth(tmp_path: Path) -> None:
    chain = make_gov_chain(tmp_path)
    admitted = pass_proposal(chain, "add_member", member="eunpyeong-gu",
                             public_key=FIFTH.public_key,
                             validator_key=FIFTH_VALIDATOR.public_key, power=1)
    assert chain.store.get_validator_set(admitted + 1).get_power(
        FIFTH_VALIDATOR.public_key) == 0
    while chain.engine.height < admitted + 2:
        commit(chain, chain.make_tx())
    assert chain.store.get_validator_set(admitted + 2).get_power(
        FIFTH_VALIDATOR.public_key) == 1
    members = chain.engine.query("gov", "members", {})
    assert "eunpyeong-gu" in [member["name"] for member in members["members"]]

    pass_proposal(chain, "grant_role", role="vehicle.registrar", public_key=FIFTH.public_key)
    auth = ServiceState(chain.engine.state, AUTH_NAMESPACE)
    assert has_role(auth, FIFTH.public_key, "vehicle.registrar")

    pass_proposal(chain, "set_param", param=PARAM, value=4)
    pass_proposal(chain, "set_param", param=PARAM, value=8)  # raised again
    assert chain.engine.query("gov", "parameters", {})[0]["value"] == 8

    # The fifth agency now counts among the members: two approvals of five do not pass.
    assert propose_action(chain, FIFTH, "set_threshold", deadline_blocks=3,
                          threshold=4).code == ResultCode.OK
    stalled = latest_id(chain)
    send(chain, KEYS[3], "approve", proposal=stalled)
    for _ in range(3):
        commit(chain, chain.make_tx())
    assert get_proposal(chain, stalled)["status"] == "expired"
    assert send(chain, KEYS[1], "approve", proposal=stalled).code == ResultCode.REFUSED
    assert send(chain, KEYS[1], "close", proposal=stalled).code == ResultCode.OK
    assert chain.engine.query("gov", "members", {})["threshold"] == 3

    removed = pass_proposal(chain, "remove_member", member="eunpyeong-gu")
    commit(chain, chain.make_tx())
    commit(chain, chain.make_tx())
    # Heights up to removed + 1 are still signed by the set with the fifth validator.
    for height in (removed, removed + 1):
        verify_commit(chain.genesis.chain_id, chain.store.get_validator_set(height),
                      sign_commit(chain, height, chain.validator, FIFTH_VALIDATOR),
                      chain.store.get_block(height).block_id(), height)
    height = removed + 2
    with pytest.raises(UnknownValidatorError):
        verify_commit(chain.genesis.chain_id, chain.store.get_validator_set(height),
                      sign_commit(chain, height, chain.validator, FIFTH_VALIDATOR),
                      chain.store.get_block(height).block_id(), height)
    assert chain.store.get_block(height).header.validators_hash == \
        chain.store.get_validator_set(height).hash()
    chain.store.close()
