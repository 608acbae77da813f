"""Ballot proofs under CometBFT: a new CheckTx's precheck runs in the application's worker
processes before the engine's check, rechecks skip it, CometBFT's pipelined requests are
answered in order, and the pool stops with the application."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from seoulchain.crypto import SigningKey
from seoulchain.ledger.types import Transaction
from seoulchain.node.abci import AbciApplication, AbciServer, encode_frame, read_frame
from seoulchain.node.home import Home
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
from tests.conftest import make_key
from tests.node.test_abci import (
    CHAIN_ID,
    commit_block,
    connect,
    home,  # noqa: F401
    init_chain_request,
    pytestmark,  # noqa: F401
    serve,
    sign_anchor,
    types,  # noqa: F401
)
from tests.services.vote_helpers import QUESTIONS, ROLE, YES

POLL_ID = "night-bus-2027"


@pytest.fixture
def voting_app(home: Home, types: Any) -> Iterator[AbciApplication]:  # noqa: F811
    """An application whose operator may organise polls."""
    genesis = home.load_genesis()
    genesis.roles[ROLE] = (home.load_key("operator").public_key,)
    genesis.save(home.genesis_path)
    application = AbciApplication(home, types)
    yield application
    application.close()


def sign_vote(key: SigningKey, nonce: int, method: str, args: dict[str, Any]) -> bytes:
    return Transaction.create(key, chain_id=CHAIN_ID, nonce=nonce, expiry_height=10**6,
                              service="vote", method=method, args=args).encode()


def test_pipelined_check_txs_are_answered_in_order(
        home: Home, types: Any, voting_app: AbciApplication) -> None:  # noqa: F811
    """mempool connection: CheckTx calls sent without waiting get their answers in order."""
    txs = [sign_anchor(home, 1), b"not a transaction", sign_anchor(home, 2)]

    async def scenario(server: AbciServer) -> None:
        conn = await connect(server, types)
        await conn.call(init_chain=init_chain_request(home, types))
        for tx in txs:
            conn.writer.write(encode_frame(types.Request(check_tx=types.RequestCheckTx(tx=tx))))
        conn.writer.write(encode_frame(types.Request(flush=types.RequestFlush())))
        await conn.writer.drain()
        answers = []
        for _ in range(len(txs) + 1):
            frame = await asyncio.wait_for(read_frame(conn.reader), 5)
            assert frame is not None
            answers.append(types.Response.FromString(frame))
        kinds = [answer.WhichOneof("value") for answer in answers]
        assert kinds == ["check_tx", "check_tx", "check_tx", "flush"]
        codes = [answer.check_tx.code for answer in answers[:3]]
        assert codes[0] == 0 and codes[1] != 0 and codes[2] == 0
    serve(voting_app, scenario)


def test_only_new_check_txs_go_to_the_precheck_pool(
        home: Home, types: Any, voting_app: AbciApplication,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    """CheckTx NEW runs the tx's precheck ahead; RECHECK (after each commit) does not."""
    sent: list[list[bytes]] = []

    async def record(raws: list[bytes]) -> int:
        sent.append(raws)
        return 0

    monkeypatch.setattr(voting_app.prechecks, "check_ahead", record)
    new, recheck = sign_anchor(home, 1), sign_anchor(home, 2)

    async def scenario(server: AbciServer) -> None:
        conn = await connect(server, types)
        await conn.call(init_chain=init_chain_request(home, types))
        first = await conn.call(check_tx=types.RequestCheckTx(tx=new))
        again = await conn.call(check_tx=types.RequestCheckTx(tx=recheck, type=types.RECHECK))
        assert first.check_tx.code == 0 and again.check_tx.code == 0
    serve(voting_app, scenario)
    assert sent == [[new]]


def test_the_pool_stops_with_the_application(home: Home, types: Any) -> None:  # noqa: F811
    application = AbciApplication(home, types)
    pool = application.prechecks
    application.close()
    assert pool.closed and pool.get_worker_pids() == []


@pytest.mark.slow  # spawns the precheck worker processes (1-2 s) and makes two ballots
def test_check_tx_of_a_ballot_verifies_it_in_a_worker_not_on_the_loop(
        home: Home, types: Any, voting_app: AbciApplication,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    """CheckTx (n=1, one ballot): its proofs run in a worker process, the engine admits it
    on the recorded verdict, and the block executes it with no proof check in this
    process."""
    organiser = home.load_key("operator")
    trustee = generate_trustee_key(BELENIOS_2048)
    create = sign_vote(organiser, 1, "create_poll", {
        "poll_id": POLL_ID, "title": "Night bus extension", "questions": QUESTIONS,
        "eligibility": {"kind": "list", "list_hash": bytes(32)},
        "open_height": 3, "close_height": 1000, "threshold": 1,
        "trustees": [{"chain_key": make_key(5).public_key,
                      "public_key": dump_json(trustee.public.to_json())}]})
    verified_here: list[str] = []
    original = vote.check_cast_ballot

    def counted(election: Any, ballot: str, credential: str) -> None:
        verified_here.append(ballot)
        original(election, ballot, credential)

    async def scenario(server: AbciServer) -> None:
        conn = await connect(server, types)
        await conn.call(init_chain=init_chain_request(home, types))
        assert (await commit_block(conn, home, 1, [create])).tx_results[0].code == 0
        record = voting_app.engine.query("vote", "poll", {"poll_id": POLL_ID})
        election = parse_election(record["election"].encode())
        credentials = [generate_credential() for _ in range(2)]
        public = [str(compute_public_credential(BELENIOS_2048, election.uuid, item))
                  for item in credentials]
        added = sign_vote(organiser, 2, "add_credentials",
                          {"poll_id": POLL_ID, "credentials": public})
        assert (await commit_block(conn, home, 2, [added])).tx_results[0].code == 0
        ballot = create_ballot(election, credentials[0], [[1, 0, 0], YES]).raw.decode()
        cast = sign_vote(make_key(100), 1, "cast", {"poll_id": POLL_ID, "ballot": ballot})
        monkeypatch.setattr(vote, "check_cast_ballot", counted)
        admitted = (await conn.call(check_tx=types.RequestCheckTx(tx=cast))).check_tx
        assert admitted.code == 0, admitted.log
        assert voting_app.prechecks.recorded == 1 and voting_app.prechecks.get_worker_pids()
        result = await commit_block(conn, home, 3, [cast])
        assert result.tx_results[0].code == 0, result.tx_results[0].log
        assert verified_here == []
    serve(voting_app, scenario)
