"""Ballot proofs off the event loop: a node's precheck workers fill the ballot memo ahead.

A node runs each ballot's proofs once, in a worker process, before the engine sees the
ballot (a client's submission, a peer's gossip or proposal); admission and the block's
execution then find the verdict in the memo. Refusals keep their reasons, the loop keeps
answering while ballots are checked, a broken pool only sends the checks back to the engine,
and no worker outlives the node. Every test spawns worker processes: all are slow.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from seoulchain.consensus.messages import Proposal
from seoulchain.crypto import SigningKey
from seoulchain.execution.engine import TxCheck
from seoulchain.execution.results import ResultCode
from seoulchain.execution.service import Precheck
from seoulchain.ledger.types import Transaction
from seoulchain.node import prechecks
from seoulchain.node.home import init_home
from seoulchain.node.node import Node
from seoulchain.node.prechecks import PrecheckPool, PrecheckPoolError
from seoulchain.node.validator import MessageKind
from seoulchain.services import vote
from seoulchain.voting import (
    BELENIOS_2048,
    compute_public_credential,
    create_ballot,
    generate_credential,
    generate_trustee_key,
    parse_election,
)
from seoulchain.voting.jsonform import dump_json
from tests.conftest import commit_next_height, make_key
from tests.services.vote_helpers import QUESTIONS, ROLE, YES, resign

pytestmark = pytest.mark.slow

CHAIN_ID = "ballot-pool-test"
POLL_ID = "night-bus-2027"
VOTERS = 20
# A ticker's period and the longest it may be late while ballots are checked: one ballot
# verified on the loop costs ~45 ms (docs/performance.md), the batches below hold 12, so a
# loop that verified them itself would be late by 500 ms or more.
TICK_S = 0.05
TICK_LATE_S_MAX = 0.25


class VotingNode:
    """A one-validator node whose operator organises a poll with VOTERS credentials, open from
    the next block."""

    def __init__(self, root: Path) -> None:
        home = init_home(root, chain_id=CHAIN_ID)
        self.organiser = home.load_key("operator")
        genesis = home.load_genesis()
        genesis.roles[ROLE] = (self.organiser.public_key,)
        genesis.save(home.genesis_path)
        self.node = Node(home)
        self.nonces: dict[bytes, int] = {}
        trustee = generate_trustee_key(BELENIOS_2048)
        self.commit(self.sign(self.organiser, "create_poll", {
            "poll_id": POLL_ID, "title": "Night bus extension", "questions": QUESTIONS,
            "eligibility": {"kind": "list", "list_hash": bytes(32)},
            "open_height": 3, "close_height": 1000, "threshold": 1,
            "trustees": [{"chain_key": make_key(5).public_key,
                          "public_key": dump_json(trustee.public.to_json())}]}))
        record = self.node.query("vote", "poll", {"poll_id": POLL_ID})
        self.election = parse_election(record["election"].encode())
        self.credentials = [generate_credential() for _ in range(VOTERS)]
        public = [str(compute_public_credential(BELENIOS_2048, self.election.uuid, item))
                  for item in self.credentials]
        self.commit(self.sign(self.organiser, "add_credentials",
                              {"poll_id": POLL_ID, "credentials": public}))

    def sign(self, key: SigningKey, method: str, args: dict[str, Any]) -> bytes:
        nonce = self.nonces.get(key.public_key, 0) + 1
        self.nonces[key.public_key] = nonce
        return Transaction.create(key, chain_id=CHAIN_ID, nonce=nonce, expiry_height=10**6,
                                  service="vote", method=method, args=args).encode()

    def commit(self, raw: bytes) -> None:
        check = self.node.submit(raw)
        assert check.ok, check.log
        committed = commit_next_height(self.node)
        assert committed is not None and committed.execution.results[0].ok

    def cast(self, voters: range) -> list[bytes]:
        """Sign one ballot of each voter, each from a fresh chain key."""
        return [self.sign(make_key(100 + voter), "cast", {
            "poll_id": POLL_ID,
            "ballot": create_ballot(self.election, self.credentials[voter],
                                    [[1, 0, 0], YES]).raw.decode()})
                for voter in voters]

    def turnout(self) -> int:
        return self.node.query("vote", "turnout", {"poll_id": POLL_ID})["ballots"]


@pytest.fixture(scope="module")
def voting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VotingNode]:
    voting = VotingNode(tmp_path_factory.mktemp("ballot-pool") / "home")
    yield voting
    voting.node.close()


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record each ballot proof check this process runs (the workers are other processes)."""
    calls: list[str] = []
    original = vote.check_cast_ballot

    def counted(election: Any, ballot: str, credential: str) -> None:
        calls.append(ballot)
        original(election, ballot, credential)

    monkeypatch.setattr(vote, "check_cast_ballot", counted)
    return calls


def record_pid(verdict: int, *args: Any) -> None:
    """A precheck's record that keeps the pid of the worker that ran `os.getpid`."""
    WORKER_PIDS.append(verdict)


WORKER_PIDS: list[int] = []


async def run_with_ticker(work: Callable[[], Any]) -> tuple[Any, float]:
    """Await `work()` while a TICK_S timer runs; return its result and the latest tick."""
    late_s_max = 0.0
    done = False

    async def tick() -> None:
        nonlocal late_s_max
        while not done:
            started = time.perf_counter()
            await asyncio.sleep(TICK_S)
            late_s_max = max(late_s_max, time.perf_counter() - started - TICK_S)

    ticker = asyncio.create_task(tick())
    try:
        result = await work()
    finally:
        done = True
        await ticker
    return result, late_s_max


def test_node_admits_and_executes_ballots_verified_once_in_workers_while_the_loop_ticks(
        voting: VotingNode, verifications: list[str]) -> None:
    """node (n=1, 12 ballots): a batch's proofs run in the workers while a 50 ms timer stays
    on time; admission and the block's execution verify none of them again."""
    raws = voting.cast(range(12))
    before = voting.turnout()
    checks, late_s = asyncio.run(run_with_ticker(lambda: voting.node.submit_batch(raws)))
    assert all(check.ok for check in checks), [check.log for check in checks]
    assert late_s < TICK_LATE_S_MAX, f"the loop was {late_s * 1000:.0f} ms late"
    started = time.perf_counter()
    committed = commit_next_height(voting.node)
    execute_s = time.perf_counter() - started
    assert committed is not None and len(committed.block.txs) == 12
    assert all(result.ok for result in committed.execution.results)
    assert voting.turnout() == before + 12
    assert verifications == []  # each ballot verified once on this node: in a worker
    assert execute_s < TICK_LATE_S_MAX, f"the block took {execute_s * 1000:.0f} ms"
    assert voting.node.prechecks.recorded >= 12


def test_peer_proposal_ballots_are_verified_in_workers_before_the_block_runs(
        voting: VotingNode, verifications: list[str]) -> None:
    """node (n=1): the ballots of a peer's proposal, unseen here, are checked off the loop
    when it arrives; validating the block then verifies none of them."""
    engine = voting.node.engine
    raws = voting.cast(range(12, 16))
    block = engine.prepare_proposal(time_ms=engine.tip.time_ms + 1000,
                                    proposer=voting.node.key.public_key, candidates=raws,
                                    last_commit=voting.node.store.get_commit(engine.height))
    assert list(block.txs) == raws
    # As if another validator proposed it: this node has neither verified nor executed it.
    vote._ballot_verdicts.clear()
    engine.executions.clear()
    verifications.clear()
    proposal = Proposal(block.header.height, 0, -1, block, bytes(64))
    producer = voting.node.producer
    assert producer.is_new_block_message(proposal.encode())
    assert not producer.is_new_block_message(proposal.encode())  # a re-send: not again
    txs = producer.get_block_txs(MessageKind.PROPOSAL, proposal.encode())
    assert txs == raws
    _, late_s = asyncio.run(run_with_ticker(lambda: producer.check_ahead(txs)))
    assert late_s < TICK_LATE_S_MAX
    engine.process_proposal(block)
    assert verifications == []


def test_an_invalid_ballot_is_refused_with_the_same_reason_with_or_without_the_pool(
        voting: VotingNode, verifications: list[str]) -> None:
    """node (n=1): a ballot with a broken proof, re-signed by its voter, is refused at
    admission with the engine's own reason, whether its check ran in a worker or here."""
    honest = create_ballot(voting.election, voting.credentials[16], [[1, 0, 0], YES])
    ballot = json.loads(honest.raw)
    proof = ballot["answers"][0]["individual_proofs"][0][0]
    proof["response"] = str((int(proof["response"]) + 1) % int(BELENIOS_2048.q))
    unsigned = {key: value for key, value in ballot.items() if key != "signature"}
    tampered = resign(voting, 16, unsigned)  # type: ignore[arg-type]
    raw = voting.sign(make_key(99), "cast", {"poll_id": POLL_ID, "ballot": tampered})
    in_core = voting.node.engine.check_tx(raw)  # no pool: the engine verifies it itself
    assert len(verifications) == 1
    vote._ballot_verdicts.clear()
    verifications.clear()
    asyncio.run(voting.node.check_ahead([raw]))
    with_pool = voting.node.submit(raw)
    assert verifications == []  # the worker's verdict, recorded here, was the refusal
    assert (with_pool.code, with_pool.log) == (in_core.code, in_core.log)
    assert with_pool.code == ResultCode.REFUSED
    assert "ballot refused: individual_proof: answer 0 choice 0" in with_pool.log


def test_a_closed_pool_leaves_the_checks_to_the_engine_without_hanging(
        voting: VotingNode, verifications: list[str]) -> None:
    """node (n=1): with its workers gone, a batch is still admitted (checked on the loop)."""
    raws = voting.cast(range(17, 19))
    pool = voting.node.prechecks
    assert asyncio.run(pool.run([Precheck(os.getpid, record_pid, ())])) == 1
    pids = pool.get_worker_pids()
    assert pids
    pool.close()
    assert pool.get_worker_pids() == []
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(PrecheckPoolError, match="closed"):
        asyncio.run(pool.check_ahead(raws))
    checks: list[TxCheck] = asyncio.run(asyncio.wait_for(voting.node.submit_batch(raws), 30))
    assert all(check.ok for check in checks)
    assert len(verifications) == 2


def test_closing_a_node_stops_its_precheck_workers(tmp_path: Path) -> None:
    """node (n=1): `close` ends the worker processes before it returns."""
    node = Node(init_home(tmp_path / "home", chain_id=CHAIN_ID))
    try:
        assert asyncio.run(node.prechecks.run([Precheck(os.getpid, record_pid, ())])) == 1
        pids = node.prechecks.get_worker_pids()
        assert pids and all(is_alive(pid) for pid in pids)
    finally:
        node.close()
    assert not any(is_alive(pid) for pid in pids)


def test_pool_failures_are_typed_errors_and_the_pool_restarts(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    """A check that raises is left to the engine; a worker that dies and a check that
    outruns its bound are PrecheckPoolErrors; the next batch gets a fresh pool."""
    pool = PrecheckPool(None, workers=1)  # type: ignore[arg-type]  # engine unused by run()

    async def scenario() -> None:
        assert await pool.run([Precheck(int, record_pid, ("not a number",))]) == 0
        assert pool.failed == 1
        with pytest.raises(PrecheckPoolError, match="worker process died"):
            await pool.run([Precheck(os._exit, record_pid, (3,))])
        assert await pool.run([Precheck(os.getpid, record_pid, ())]) == 1
        monkeypatch.setattr(prechecks, "CHECK_TIME_S_MAX", 0.2)  # the worker has started
        started = time.perf_counter()
        with pytest.raises(PrecheckPoolError, match="longer than"):
            await pool.run([Precheck(time.sleep, record_pid, (1.0,))])
        assert time.perf_counter() - started < 0.9

    try:
        asyncio.run(scenario())
    finally:
        pool.close()
    assert WORKER_PIDS and WORKER_PIDS[-1] != os.getpid()


def test_closing_the_pool_ends_waiting_checks_with_a_typed_error() -> None:
    """Checks still queued when the node closes its pool fail as PrecheckPoolErrors; the
    running ones finish, and nothing waits for ever."""
    pool = PrecheckPool(None, workers=1)  # type: ignore[arg-type]  # engine unused by run()

    async def close_soon() -> None:
        await asyncio.sleep(0.3)
        pool.close()

    async def scenario() -> None:
        assert await pool.run([Precheck(os.getpid, record_pid, ())]) == 1  # started
        closer = asyncio.create_task(close_soon())
        with pytest.raises(PrecheckPoolError, match="stopped"):
            await pool.run([Precheck(time.sleep, record_pid, (0.5,))] * 4)
        await closer

    try:
        asyncio.run(asyncio.wait_for(scenario(), 30))
    finally:
        pool.close()
    assert pool.get_worker_pids() == []


CHILD = """
import asyncio, os, sys, time
from seoulchain.execution.service import Precheck
from seoulchain.node.prechecks import PrecheckPool
pool = PrecheckPool(None, workers=2)
pids = []
asyncio.run(pool.run([Precheck(os.getpid, lambda pid: pids.append(pid), ())] * 2))
print(" ".join(map(str, pool.get_worker_pids())), flush=True)
time.sleep(60)
"""


def test_workers_die_with_a_killed_node_process() -> None:
    """A node process killed with SIGKILL leaves no precheck worker behind."""
    # stderr: its resource tracker reports the semaphores a killed process leaves behind.
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        assert child.stdout is not None
        pids = [int(pid) for pid in child.stdout.readline().split()]
        assert len(pids) == 2 and all(is_alive(pid) for pid in pids)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    deadline = time.monotonic() + 10
    while any(is_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(is_alive(pid) for pid in pids)


def is_alive(pid: int) -> bool:
    """Return True if `pid` is a live process (not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
