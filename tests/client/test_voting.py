"""Universal verification of a poll from its chain data: each step passes or is named."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from seoulchain.client.demo_voting import POLL_ID, seed_poll
from seoulchain.client.voting import (
    PollData,
    PollNotFound,
    PollVerificationFailed,
    fetch_poll_data,
    make_engine_reader,
    verify_poll,
)
from seoulchain.crypto.hashing import sha256
from seoulchain.execution.results import ResultCode
from seoulchain.voting.jsonform import dump_json
from tests.client.test_demo import ChainClient, make_demo_chain
from tests.conftest import LocalChain, make_key
from tests.services.vote_helpers import NO, YES, Poll, make_vote_chain, outcome, send


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalChain, Poll]]:
    """A poll of three voters (one re-votes) tallied, decrypted and published."""
    chain = make_vote_chain(Path(tmp_path_factory.mktemp("voting")) / "vote.sqlite")
    poll = Poll(chain, voters=3)
    for voter, plaintext in enumerate([[[1, 0, 0], YES], [[0, 1, 1], NO], [[1, 1, 0], YES]]):
        assert poll.cast(poll.ballot(voter, plaintext)).code == ResultCode.OK
    assert poll.cast(poll.ballot(0, [[0, 0, 1], NO])).code == ResultCode.OK
    poll.close_and_tally()
    shares = poll.decrypt_all()
    published = send(chain, "publish_result", make_key(7), poll_id=poll.poll_id,
                     result=poll.expected_result(shares))
    assert published.code == ResultCode.OK, outcome(published)
    yield chain, poll
    chain.store.close()


def fetch(chain: LocalChain, poll_id: str = "park-2027") -> PollData:
    return fetch_poll_data(make_engine_reader(chain.engine), poll_id)


def test_verify_poll_checks_every_step_of_a_published_poll(
        finished: tuple[LocalChain, Poll]) -> None:
    chain, _ = finished
    report = verify_poll(fetch(chain))
    assert [step for step, _ in report.steps] == ["election", "credentials", "ballots",
                                                  "tally", "decryptions", "result"]
    summaries = dict(report.steps)
    assert summaries["ballots"] == "4 ballots with valid proofs; 3 counted, one per credential"
    assert summaries["result"].startswith('{"result":[[1,2,2],[0,1,2]]}')


def test_verify_poll_names_a_tampered_ballot(finished: tuple[LocalChain, Poll]) -> None:
    chain, _ = finished
    data = fetch(chain)
    body = json.loads(data.ballots[1]["ballot"])
    body["answers"][0]["choices"][0]["alpha"] = body["answers"][0]["choices"][1]["alpha"]
    data.ballots[1]["ballot"] = dump_json(body)
    with pytest.raises(PollVerificationFailed) as failure:
        verify_poll(data)
    assert failure.value.step == "ballot 1" and "its hash does not match" in str(failure.value)
    data.ballots[1]["hash"] = sha256(data.ballots[1]["ballot"].encode()).hex()
    with pytest.raises(PollVerificationFailed) as failure:
        verify_poll(data)
    assert str(failure.value).startswith("ballot 1: signature: the signature's hash is not")


def test_verify_poll_names_a_counted_flag_that_breaks_one_ballot_per_credential(
        finished: tuple[LocalChain, Poll]) -> None:
    chain, _ = finished
    data = fetch(chain)
    data.ballots[0]["counted"] = True  # voter 0 re-voted: the first ballot must not count
    with pytest.raises(PollVerificationFailed, match="ballots: ballots \\[0\\] are marked"):
        verify_poll(data)


def test_verify_poll_names_a_tally_that_is_not_the_sum(
        finished: tuple[LocalChain, Poll]) -> None:
    chain, _ = finished
    data = fetch(chain)
    data.ballots[3]["counted"], data.ballots[0]["counted"] = False, True
    data.ballots = data.ballots[:3]  # the re-vote hidden: another sum than the committed one
    data.poll["ballots_count"] = 3
    with pytest.raises(PollVerificationFailed) as failure:
        verify_poll(data)
    assert failure.value.step == "tally"


def test_verify_poll_names_a_result_that_the_shares_do_not_give(
        finished: tuple[LocalChain, Poll]) -> None:
    chain, _ = finished
    data = fetch(chain)
    data.poll["result"] = '{"result":[[2,1,2],[0,1,2]]}'
    with pytest.raises(PollVerificationFailed) as failure:
        verify_poll(data)
    assert failure.value.step == "result"


def test_verify_poll_names_an_election_whose_key_is_not_the_trustees(
        finished: tuple[LocalChain, Poll]) -> None:
    chain, _ = finished
    data = fetch(chain)
    data.poll["trustees"] = data.poll["trustees"][:1]
    with pytest.raises(PollVerificationFailed, match=r"^election: the election is not"):
        verify_poll(data)


def test_fetch_poll_data_refuses_an_unknown_poll(finished: tuple[LocalChain, Poll]) -> None:
    chain, _ = finished
    with pytest.raises(PollNotFound, match="no poll 'nope'"):
        fetch(chain, "nope")


def test_demo_poll_is_seeded_to_a_verified_result_once(tmp_path: Path) -> None:
    chain, keys = make_demo_chain(tmp_path)
    lines: list[str] = []
    try:
        client = ChainClient(chain)
        sent = seed_poll(client, keys, tmp_path / "keys", 3, tmp_path / "docs",  # type: ignore[arg-type]
                         lines.append, voters=4)
        # 2 role proposals' txs (propose + 2 approvals), create + credentials, 5 ballots (the
        # first voter votes twice), close, tally, 2 decryptions, the result.
        assert sent == 3 + 2 + 5 + 2 + 2 + 1
        assert (tmp_path / "docs" / "voting" / "credentials.txt").stat().st_mode & 0o777 == 0o600
        report = verify_poll(fetch(chain, POLL_ID))
        assert dict(report.steps)["ballots"] == ("5 ballots with valid proofs; 4 counted, "
                                                 "one per credential")
        blocks = chain.engine.height
        assert seed_poll(client, keys, tmp_path / "keys", 3, tmp_path / "docs",  # type: ignore[arg-type]
                         lines.append, voters=4) == 0
        assert chain.engine.height == blocks
    finally:
        chain.store.close()
