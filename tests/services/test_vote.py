"""Polls: create, publish credentials, cast (every proof checked), tally, decrypt, result."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from gmpy2 import mpz

from seoulchain.codec import decode
from seoulchain.execution.engine import InvalidBlock
from seoulchain.execution.results import ResultCode
from seoulchain.ledger.types import TX_BYTES_MAX
from seoulchain.services import vote
from seoulchain.services.vote import CREDENTIALS_PER_TX_MAX
from seoulchain.voting import (
    BELENIOS_2048,
    compute_public_credential,
    create_ballot,
    generate_credential,
    generate_trustee_key,
)
from seoulchain.voting.ballot import credential_prefix, encrypt_answer
from seoulchain.voting.errors import VotingUsageError
from seoulchain.voting.jsonform import dump_json
from tests.conftest import LocalChain, make_key
from tests.services.vote_helpers import (
    NO,
    ROLE,
    YES,
    Poll,
    create_args,
    make_vote_chain,
    outcome,
    resign,
    send,
)


@pytest.fixture
def polls(tmp_path: Path) -> Iterator[LocalChain]:
    chain = make_vote_chain(tmp_path / "vote.sqlite")
    yield chain
    chain.store.close()


def test_create_poll_refuses_a_signer_without_the_organiser_role(polls: LocalChain) -> None:
    raw = polls.make_tx(make_key(9), service="vote", method="create_poll",
                        args=create_args(polls)).encode()
    check = polls.engine.check_tx(raw)
    assert check.code == ResultCode.UNAUTHORIZED and ROLE in check.log


@pytest.mark.parametrize(("question", "reason"), [
    ({"question": "Pick", "answers": ["A", "B"], "min": 2, "max": 1}, "min <= max"),
    ({"question": "Pick", "answers": ["A", "B"], "min": 0, "max": 3}, "max <= answers"),
    ({"question": "Call 010-1234-5678", "answers": ["A"], "min": 0, "max": 1},
     "phone number"),
])
def test_create_poll_refuses_bad_question_bounds(polls: LocalChain, question: dict[str, Any],
                                                 reason: str) -> None:
    raw = polls.make_tx(service="vote", method="create_poll",
                        args=create_args(polls, questions=[question])).encode()
    check = polls.engine.check_tx(raw)
    assert check.code == ResultCode.BAD_ARGS and reason in check.log


def test_create_poll_refuses_eligibility_without_its_type(polls: LocalChain) -> None:
    args = create_args(polls, eligibility={"kind": "credential"})
    check = polls.engine.check_tx(polls.make_tx(service="vote", method="create_poll",
                                                args=args).encode())
    assert check.code == ResultCode.BAD_ARGS and "credential_type" in check.log


def test_queries_answer_none_for_an_unknown_poll(polls: LocalChain) -> None:
    assert polls.engine.query("vote", "poll", {"poll_id": "nope"}) is None
    assert polls.engine.query("vote", "turnout", {"poll_id": "nope"}) is None
    assert polls.engine.query("vote", "ballots", {"poll_id": "nope"}) == []
    assert polls.engine.query("vote", "result", {"poll_id": "nope"}) is None


def test_cast_refuses_at_admission_what_is_not_a_ballot(polls: LocalChain) -> None:
    for ballot, reason in [("not json", "ballot is not valid JSON"),
                           ('{"credential": "5"}', "ballot has missing fields")]:
        raw = polls.make_tx(make_key(40), service="vote", method="cast",
                            args={"poll_id": "park-2027", "ballot": ballot}).encode()
        check = polls.engine.check_tx(raw)
        assert check.code == ResultCode.BAD_ARGS and reason in check.log


def test_cast_to_an_unknown_poll_is_refused(polls: LocalChain) -> None:
    poll = Poll(polls, voters=1)
    result = send(polls, "cast", make_key(40), poll_id="nope",
                  ballot=poll.ballot(0, [[1, 0, 0], YES]))
    assert outcome(result) == "REFUSED: no poll 'nope'"


def test_poll_lifecycle_counts_each_credentials_last_ballot(polls: LocalChain) -> None:
    poll = Poll(polls, voters=3)
    assert poll.record()["election_hash"] == poll.election.fingerprint
    for voter, plaintext in enumerate([[[1, 1, 0], YES], [[0, 1, 0], NO], [[0, 0, 1], YES]]):
        result = poll.cast(poll.ballot(voter, plaintext))
        assert result.code == ResultCode.OK, outcome(result)
        assert [event.kind for event in result.events] == ["vote.cast"]
    revote = poll.cast(poll.ballot(1, [[0, 0, 1], YES]))  # voter 1 changes their mind
    assert revote.code == ResultCode.OK, outcome(revote)
    turnout = polls.engine.query("vote", "turnout", {"poll_id": poll.poll_id})
    assert turnout == {"poll_id": poll.poll_id, "voted": 3, "credentials": 3, "ballots": 4}
    assert polls.engine.query("vote", "result", {"poll_id": poll.poll_id}) is None
    ballots = polls.engine.query("vote", "ballots", {"poll_id": poll.poll_id})
    assert [item["counted"] for item in ballots] == [True, False, True, True]
    assert ballots[3]["replaces"] == 1
    poll.close_and_tally()
    assert poll.record()["tally"]["num_tallied"] == 3
    shares = poll.decrypt_all()
    result = send(polls, "publish_result", make_key(7), poll_id=poll.poll_id,
                  result=poll.expected_result(shares))
    assert result.code == ResultCode.OK, outcome(result)
    published = polls.engine.query("vote", "result", {"poll_id": poll.poll_id})
    # playground 1, bike lane 1 + 0 + 0, library garden 0 + 1 + 1; night bus 3 yes, 0 no.
    assert published["result"] == {"result": [[1, 1, 2], [0, 3, 0]]}


def test_cast_refuses_an_invalid_proof(polls: LocalChain) -> None:
    poll = Poll(polls, voters=1)
    ballot = json.loads(poll.ballot(0, [[1, 0, 0], YES]))
    proof = ballot["answers"][0]["individual_proofs"][0][0]
    proof["response"] = str((int(proof["response"]) + 1) % int(BELENIOS_2048.q))
    unsigned = {key: value for key, value in ballot.items() if key != "signature"}
    # Re-signing is impossible without the credential, so a tampered proof breaks either
    # the signature or, when the voter tampers, the proof: check the voter's case.
    secret_ballot = resign(poll, 0, unsigned)
    result = poll.cast(secret_ballot)
    assert result.code == ResultCode.REFUSED
    assert "ballot refused: individual_proof: answer 0 choice 0" in result.log
    assert polls.engine.query("vote", "turnout", {"poll_id": poll.poll_id})["ballots"] == 0


def test_cast_refuses_a_value_of_two(polls: LocalChain) -> None:
    poll = Poll(polls, voters=1)
    with pytest.raises(VotingUsageError):  # the honest encoder refuses it outright
        poll.ballot(0, [[2, 0, 0], YES])
    # A cheating client encrypts 2 with a proof made for 1: the individual proof fails.
    honest = json.loads(poll.ballot(0, [[1, 0, 0], YES]))
    choice = honest["answers"][0]["choices"][0]
    choice["beta"] = str(int(choice["beta"]) * int(BELENIOS_2048.g) % int(BELENIOS_2048.p))
    unsigned = {key: value for key, value in honest.items() if key != "signature"}
    result = poll.cast(resign(poll, 0, unsigned))
    assert outcome(result).startswith("REFUSED: ballot refused: individual_proof")


def test_cast_refuses_choices_outside_min_and_max(polls: LocalChain) -> None:
    poll = Poll(polls, voters=1)
    with pytest.raises(VotingUsageError):
        poll.ballot(0, [[1, 1, 1], YES])  # three of at most two
    # A cheating client encrypts three choices, proving the sum for a question of two to
    # three (a proof of the same length as this question's one to two).
    zkp = credential_prefix(poll.election, mpz(poll.public[0]))
    cheat, _ = encrypt_answer(poll.election, zkp, replace(poll.election.questions[0], min=2,
                                                          max=3), [1, 1, 1])
    mine = json.loads(poll.ballot(0, [[1, 1, 0], YES]))
    mine["answers"][0] = cheat.to_json()
    unsigned = {key: value for key, value in mine.items() if key != "signature"}
    result = poll.cast(resign(poll, 0, unsigned))
    assert outcome(result) == ("REFUSED: ballot refused: overall_proof: answer 0 is not "
                               "proven to select between 1 and 2 answers")


def test_cast_refuses_a_ballot_after_close(polls: LocalChain) -> None:
    poll = Poll(polls, voters=1)
    ballot = poll.ballot(0, [[1, 0, 0], YES])
    assert send(polls, "close", poll_id=poll.poll_id).code == ResultCode.OK
    result = poll.cast(ballot)
    assert outcome(result).startswith(f"REFUSED: poll '{poll.poll_id}' is closed at height")


def test_cast_refuses_a_ballot_before_the_poll_opens(polls: LocalChain) -> None:
    args = create_args(polls, "later", open_height=polls.engine.height + 50,
                       close_height=polls.engine.height + 60,
                       trustees=[{"chain_key": make_key(5).public_key, "public_key": dump_json(
                           generate_trustee_key(BELENIOS_2048).public.to_json())}])
    assert send(polls, "create_poll", **args).code == ResultCode.OK
    ballot = Poll(polls, voters=1).ballot(0, [[1, 0, 0], YES])
    result = send(polls, "cast", make_key(40), poll_id="later", ballot=ballot)
    assert "is setup at height" in result.log


def test_cast_refuses_an_unknown_credential(polls: LocalChain) -> None:
    poll = Poll(polls, voters=1)
    stranger = generate_credential()
    ballot = create_ballot(poll.election, stranger, [[1, 0, 0], YES]).raw.decode()
    result = poll.cast(ballot)
    assert result.code == ResultCode.REFUSED
    assert result.log.endswith("... is not published for poll 'park-2027'")


def test_cast_refuses_a_ballot_for_another_election(polls: LocalChain) -> None:
    poll = Poll(polls, voters=1)
    other = Poll(polls, voters=0, poll_id="other")
    foreign = create_ballot(other.election, poll.credentials[0], [[1, 0, 0], YES])
    body = json.loads(foreign.raw)
    # Its credential is derived with the other uuid: put this poll's public credential in,
    # so the only fault left is the election it names.
    body["credential"] = poll.public[0]
    unsigned = {key: value for key, value in body.items() if key != "signature"}
    result = poll.cast(resign(poll, 0, unsigned))
    assert outcome(result) == ("REFUSED: ballot refused: election_hash: the ballot was made "
                               "for another election (uuid or hash differs)")


def test_decrypt_refuses_a_wrong_share_and_a_non_trustee(polls: LocalChain) -> None:
    poll = Poll(polls, voters=1)
    assert poll.cast(poll.ballot(0, [[1, 0, 0], YES])).code == ResultCode.OK
    poll.close_and_tally()
    wrong = poll.share(1)  # trustee 1's share, posted by trustee 0
    result = send(polls, "decrypt", poll.trustee_chain_keys[0], poll_id=poll.poll_id,
                  share=wrong)
    assert outcome(result).startswith("REFUSED: trustee 0's partial decryption refused: "
                                      "partial_decryption")
    stranger = send(polls, "decrypt", make_key(8), poll_id=poll.poll_id, share=poll.share(0))
    assert outcome(stranger) == ("REFUSED: the signer is not a trustee of poll "
                                 "'park-2027'")
    early = send(polls, "publish_result", poll_id=poll.poll_id, result='{"result":[]}')
    assert "is tallied at height" in early.log


def test_publish_result_refuses_a_result_that_does_not_match_the_shares(
        polls: LocalChain) -> None:
    poll = Poll(polls, voters=2)
    for voter in range(2):
        assert poll.cast(poll.ballot(voter, [[1, 0, 0], NO])).code == ResultCode.OK
    poll.close_and_tally()
    shares = poll.decrypt_all()
    honest = json.loads(poll.expected_result(shares))
    assert honest == {"result": [[2, 0, 0], [0, 0, 2]]}
    forged = dump_json({"result": [[0, 2, 0], [0, 0, 2]]})
    result = send(polls, "publish_result", poll_id=poll.poll_id, result=forged)
    assert outcome(result).startswith("REFUSED: the result refused: result:")
    assert polls.engine.query("vote", "result", {"poll_id": poll.poll_id}) is None


def test_add_credentials_refuses_after_open_and_non_elements(polls: LocalChain) -> None:
    poll = Poll(polls, voters=1)
    late = send(polls, "add_credentials", poll_id=poll.poll_id,
                credentials=[str(compute_public_credential(BELENIOS_2048, poll.election.uuid,
                                                           generate_credential()))])
    assert "is open at height" in late.log
    trustee = {"chain_key": make_key(5).public_key,
               "public_key": dump_json(generate_trustee_key(BELENIOS_2048).public.to_json())}
    assert send(polls, "create_poll", **create_args(
        polls, "fresh", trustees=[trustee], open_height=polls.engine.height + 10,
    )).code == ResultCode.OK
    result = send(polls, "add_credentials", poll_id="fresh", credentials=["2"])
    assert outcome(result) == ("REFUSED: credential 2... refused: group_element: public "
                               "credential is not an element of BELENIOS-2048")
    reused = send(polls, "add_credentials", poll_id="fresh", credentials=poll.public * 2)
    assert outcome(reused) == "REFUSED: a credential appears twice in this batch"


def test_create_poll_refuses_a_trustee_key_without_a_valid_proof(polls: LocalChain) -> None:
    key = generate_trustee_key(BELENIOS_2048).public.to_json()
    key["pok"]["response"] = str((int(key["pok"]["response"]) + 1) % int(BELENIOS_2048.q))
    result = send(polls, "create_poll", **create_args(polls, trustees=[
        {"chain_key": make_key(5).public_key, "public_key": dump_json(key)}]))
    assert outcome(result) == ("REFUSED: the election refused: trustee_key: the proof of "
                               "knowledge of the private key does not verify")


def test_the_largest_poll_s_ballot_fits_a_transaction_and_one_more_choice_is_refused(
        polls: LocalChain) -> None:
    wide = {"question": "Which of these projects?", "answers": [f"Project {index}" for index
                                                                in range(14)],
            "min": 0, "max": 14, "blank": True}
    poll = Poll(polls, voters=1, poll_id="largest", questions=[wide, wide])
    ballot = poll.ballot(0, [[0] + [1] * 14, [1] + [0] * 14])
    raw = polls.make_tx(make_key(40), service="vote", method="cast",
                        args={"poll_id": "largest", "ballot": ballot}).encode()
    assert len(raw) <= TX_BYTES_MAX
    assert poll.cast(ballot).code == ResultCode.OK
    too_wide = send(polls, "create_poll", **create_args(
        polls, "too-wide", questions=[wide, {**wide, "answers": [*wide["answers"], "One more"]}],
        trustees=[{"chain_key": make_key(5).public_key, "public_key": dump_json(
            generate_trustee_key(BELENIOS_2048).public.to_json())}]))
    assert outcome(too_wide).startswith("REFUSED: a poll has at most 30 choices")


def test_a_full_batch_of_credentials_fits_a_transaction(polls: LocalChain) -> None:
    poll = Poll(polls, voters=0, poll_id="batch")
    args = create_args(polls, "batch-2", open_height=polls.engine.height + 10,
                       trustees=[{"chain_key": make_key(5).public_key, "public_key": dump_json(
                           generate_trustee_key(BELENIOS_2048).public.to_json())}])
    assert send(polls, "create_poll", **args).code == ResultCode.OK
    uuid = poll.election.uuid  # any uuid: the sizes are what matter here
    public = [str(compute_public_credential(BELENIOS_2048, uuid, generate_credential()))
              for _ in range(CREDENTIALS_PER_TX_MAX)]
    raw = polls.make_tx(service="vote", method="add_credentials",
                        args={"poll_id": "batch-2", "credentials": public}).encode()
    assert len(raw) <= TX_BYTES_MAX
    assert polls.commit(raw).execution.results[0].code == ResultCode.OK


def test_audit_invariants_hold_and_name_a_missing_ballot(polls: LocalChain) -> None:
    poll = Poll(polls, voters=2)
    assert poll.cast(poll.ballot(0, [[1, 0, 0], YES])).code == ResultCode.OK
    assert poll.cast(poll.ballot(0, [[0, 1, 0], NO])).code == ResultCode.OK
    prefix = b"vote/"
    entries = [(key[len(prefix):], decode(value)) for key, value in polls.store.iter_state()
               if key.startswith(prefix)]
    service = polls.engine.services["vote"]
    assert service.check_invariants(entries) == []
    tampered = [(key, value) for key, value in entries if not key.startswith(b"ballot/")][:]
    assert service.check_invariants(tampered) == [
        "poll 'park-2027' counts 2 ballot entries but has 0"]


def test_cast_refuses_a_credential_past_its_ballots_max(polls: LocalChain,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vote, "BALLOTS_PER_CREDENTIAL_MAX", 2)
    poll = Poll(polls, voters=1)
    for plaintext in ([[1, 0, 0], YES], [[0, 1, 0], NO]):
        assert poll.cast(poll.ballot(0, plaintext)).code == ResultCode.OK
    third = poll.cast(poll.ballot(0, [[0, 0, 1], YES]))
    assert outcome(third) == ("REFUSED: this credential has cast 2 ballots, the most one "
                              "credential may (2)")


def tampered_ballot(poll: Poll) -> str:
    """A voter's ballot whose first individual proof is changed, signed by that voter."""
    ballot = json.loads(poll.ballot(0, [[1, 0, 0], YES]))
    proof = ballot["answers"][0]["individual_proofs"][0][0]
    proof["response"] = str((int(proof["response"]) + 1) % int(BELENIOS_2048.q))
    return resign(poll, 0, {key: value for key, value in ballot.items() if key != "signature"})


def test_an_invalid_ballot_never_enters_a_block(polls: LocalChain) -> None:
    """Refused by the mempool, left out by a proposer, and a block holding one is invalid."""
    poll = Poll(polls, voters=1)
    raw = polls.make_tx(make_key(41), service="vote", method="cast",
                        args={"poll_id": poll.poll_id, "ballot": tampered_ballot(poll)}).encode()
    check = polls.engine.check_tx(raw)
    assert check.code == ResultCode.REFUSED and "individual_proof" in check.log
    height, time_ms = polls.engine.height + 1, polls.engine.tip.time_ms + 1
    proposed = polls.engine.execute_block(height, time_ms, [raw], strict=False)
    assert proposed.txs == [] and "enters a block only when it succeeds" in str(
        next(iter(proposed.skipped.values())).log)
    with pytest.raises(InvalidBlock, match=r"vote\.cast enters a block only when it succeeds"):
        polls.engine.execute_block(height, time_ms, [raw], strict=True)
    assert polls.engine.query("vote", "turnout", {"poll_id": poll.poll_id})["ballots"] == 0


def test_a_ballot_admitted_before_close_is_left_out_after(polls: LocalChain) -> None:
    poll = Poll(polls, voters=1)
    raw = polls.make_tx(make_key(41), service="vote", method="cast",
                        args={"poll_id": poll.poll_id,
                              "ballot": poll.ballot(0, [[1, 0, 0], YES])}).encode()
    assert polls.engine.check_tx(raw).ok
    assert send(polls, "close", poll_id=poll.poll_id).code == ResultCode.OK
    assert not polls.engine.check_tx(raw).ok
    block = polls.engine.execute_block(polls.engine.height + 1,
                                       polls.engine.tip.time_ms + 1, [raw], strict=False)
    assert block.txs == [] and len(block.skipped) == 1
