"""Threshold polls: a 2-of-3 poll on chain from key ceremony to a verified result.

Three trustees run the key ceremony (`voting.keyceremony`, the tool's six steps); the poll is
created with its threshold parameters, checked on chain; any two trustees decrypt, each
share checked against its verification key, and the result is the Lagrange combination of
two shares. Each refusal (forged certificate or commitment signature, t out of range, a
share from a non-trustee, a wrong share, a wrong result, too few shares) has its test, and
`vote verify` re-checks the poll from chain data. With belenios-tool installed, the poll's
election is byte-identical to the tool's and the exported archive passes its verify.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from seoulchain.client.voting import (
    PollVerificationFailed,
    export_poll_archive,
    fetch_poll_data,
    make_engine_reader,
    verify_poll,
)
from seoulchain.execution.results import ResultCode, TxResult
from seoulchain.voting import (
    BELENIOS_2048,
    compute_election_key,
    compute_items_result,
    compute_partial_decryption,
    compute_public_credential,
    create_ballot,
    dump_result,
    generate_credential,
    generate_trustee_key,
    parse_election,
    parse_encrypted_tally,
    verify_archive,
)
from seoulchain.voting.jsonform import dump_json
from seoulchain.voting.keyceremony import (
    TrusteeSeed,
    compute_vinputs,
    compute_voutput,
    generate_certificate,
    generate_polynomial,
    make_threshold_parameters,
    open_decryption_key,
    sign_message,
)
from seoulchain.voting.threshold import ThresholdTrustees
from seoulchain.voting.zkp import random_exponent
from tests.conftest import LocalChain, make_key
from tests.services.vote_helpers import NO, YES, create_args, make_vote_chain, outcome, send

GROUP = BELENIOS_2048
TRUSTEE_KEY_NUMBERS = (5, 6, 11)  # the trustees' chain keys, in certificate order
# A poll of an off-chain list (its SHA-256), so that credentials need no `vc` anchors.
ELIGIBILITY = {"kind": "list", "list_hash": bytes(range(32))}
VOTES = [[[1, 1, 0], YES], [[0, 1, 0], NO], [[0, 0, 1], YES]]
EXPECTED = [[1, 2, 1], [0, 2, 1]]  # per answer; the second question's blank flag first
TOOL_TIMEOUT_S = 120  # one belenios-tool command; each takes well under a second here


@dataclass(frozen=True)
class Ceremony:
    """A 2-of-3 key ceremony's outcome: the parameters and each trustee's decryption key."""

    seeds: list[TrusteeSeed]
    parameters: ThresholdTrustees
    decryption_keys: list[Any]

    def text(self) -> str:
        """Return the threshold parameters as `vote create` sends them."""
        return dump_json(self.parameters.to_json())


def run_ceremony(count: int, threshold: int) -> Ceremony:
    """Run every trustee's and the organiser's step of the key ceremony."""
    made = [generate_certificate(GROUP) for _ in range(count)]
    seeds = [seed for seed, _ in made]
    certificates = [dump_json(cert.to_json()) for _, cert in made]
    polynomials = [generate_polynomial(GROUP, seed, certificates, threshold) for seed in seeds]
    vinputs = compute_vinputs(polynomials)
    voutputs = [compute_voutput(GROUP, seed, certificates, vinput)
                for seed, vinput in zip(seeds, vinputs, strict=True)]
    parameters = make_threshold_parameters(GROUP, certificates, threshold, vinputs[0], voutputs)
    keys = [open_decryption_key(GROUP, seed, json.loads(voutput)["private_key"])
            for seed, voutput in zip(seeds, voutputs, strict=True)]
    return Ceremony(seeds, parameters, keys)


@pytest.fixture(scope="module")
def ceremony() -> Ceremony:
    return run_ceremony(3, 2)


@pytest.fixture
def polls(tmp_path: Path) -> Iterator[LocalChain]:
    chain = make_vote_chain(tmp_path / "vote.sqlite")
    yield chain
    chain.store.close()


def threshold_args(chain: LocalChain, ceremony: Ceremony, **changes: Any) -> dict[str, Any]:
    """create_poll arguments of a 2-of-3 poll; `changes` override them."""
    args = create_args(chain, eligibility=ELIGIBILITY, threshold=2,
                       trustees=[{"chain_key": make_key(number).public_key}
                                 for number in TRUSTEE_KEY_NUMBERS],
                       threshold_parameters=ceremony.text())
    args.update(changes)
    return args


class ThresholdPoll:
    """A 2-of-3 poll with three voters' ballots cast, closed and tallied."""

    def __init__(self, chain: LocalChain, ceremony: Ceremony):
        self.chain, self.ceremony, self.poll_id = chain, ceremony, "park-2027"
        created = send(chain, "create_poll", **threshold_args(chain, ceremony))
        assert created.code == ResultCode.OK, outcome(created)
        self.election = parse_election(self.record()["election"].encode())
        credentials = [generate_credential() for _ in VOTES]
        public = [str(compute_public_credential(GROUP, self.election.uuid, item))
                  for item in credentials]
        added = send(chain, "add_credentials", poll_id=self.poll_id, credentials=public)
        assert added.code == ResultCode.OK, outcome(added)
        while chain.engine.height + 1 < self.record()["open_height"]:
            chain.commit()
        for number, (credential, votes) in enumerate(zip(credentials, VOTES, strict=True)):
            ballot = create_ballot(self.election, credential, votes).raw.decode()
            cast = send(chain, "cast", make_key(40 + number), poll_id=self.poll_id,
                        ballot=ballot)
            assert cast.code == ResultCode.OK, outcome(cast)
        assert send(chain, "close", poll_id=self.poll_id).code == ResultCode.OK
        tallied = send(chain, "tally", make_key(7), poll_id=self.poll_id)
        assert tallied.code == ResultCode.OK, outcome(tallied)

    def record(self) -> dict[str, Any]:
        return self.chain.engine.query("vote", "poll", {"poll_id": self.poll_id})

    def share(self, trustee: int) -> str:
        """Trustee `trustee`'s (from 0) partial decryption with its threshold key."""
        stored = self.record()["tally"]
        tally = parse_encrypted_tally(self.election, stored["ciphertexts"].encode(),
                                      stored["num_tallied"], stored["total_weight"])
        return compute_partial_decryption(self.election, tally,
                                          self.ceremony.decryption_keys[trustee]).to_json().decode()

    def decrypt(self, trustee: int, share: str | None = None, signer: int | None = None,
                ) -> TxResult:
        """Post a share signed by trustee `trustee`'s chain key (or key number `signer`)."""
        key = make_key(signer if signer is not None else TRUSTEE_KEY_NUMBERS[trustee])
        return send(self.chain, "decrypt", key, poll_id=self.poll_id,
                    share=share if share is not None else self.share(trustee))

    def publish(self, result: list[list[int]]) -> TxResult:
        return send(self.chain, "publish_result", make_key(7), poll_id=self.poll_id,
                    result=dump_json({"result": result}))

    def verify(self) -> list[tuple[str, str]]:
        data = fetch_poll_data(make_engine_reader(self.chain.engine), self.poll_id)
        return verify_poll(data).steps


def test_threshold_poll_2_of_3_decrypted_by_two_trustees_verifies(
        polls: LocalChain, ceremony: Ceremony) -> None:
    poll = ThresholdPoll(polls, ceremony)
    record = poll.record()
    assert record["threshold"] == 2 and len(record["trustees"]) == 3
    assert poll.election.public_key == compute_election_key(GROUP, [ceremony.parameters])
    assert record["trustees"][1]["public_key"] == dump_json(
        ceremony.parameters.verification_keys[1].to_json())
    first = poll.decrypt(2)
    assert first.code == ResultCode.OK, outcome(first)
    early = poll.publish(EXPECTED)
    assert early.code == ResultCode.REFUSED and early.log == (
        f"poll 'park-2027' is tallied at height {polls.engine.height} but its result needs "
        f"1 more partial decryption(s): 1 of the 2 needed are posted"), outcome(early)
    second = poll.decrypt(0)
    assert second.code == ResultCode.OK, outcome(second)
    published = poll.publish(EXPECTED)
    assert published.code == ResultCode.OK, outcome(published)
    result = polls.engine.query("vote", "result", {"poll_id": poll.poll_id})
    assert result["result"] == {"result": EXPECTED} and result["voted"] == 3
    steps = dict(poll.verify())
    assert steps["election"].startswith("threshold 2 of 3: certificates, signed commitments")
    assert steps["decryptions"] == "2 of 3 partial decryptions, each with valid proofs"
    assert "combined with Lagrange coefficients" in steps["result"]
    assert list(steps) == ["election", "credentials", "ballots", "tally", "decryptions",
                           "result"]


def test_any_two_shares_give_the_result_and_a_third_may_still_be_posted(
        polls: LocalChain, ceremony: Ceremony) -> None:
    poll = ThresholdPoll(polls, ceremony)
    for trustee in (1, 2, 0):
        assert poll.decrypt(trustee).code == ResultCode.OK
    assert poll.publish(EXPECTED).code == ResultCode.OK
    assert dict(poll.verify())["decryptions"].startswith("3 of 3")
    late = poll.decrypt(0)
    assert "is final" in late.log


def test_decrypt_refuses_a_non_trustee_and_a_wrong_share(polls: LocalChain,
                                                         ceremony: Ceremony) -> None:
    poll = ThresholdPoll(polls, ceremony)
    stranger = poll.decrypt(0, signer=8)
    assert outcome(stranger) == "REFUSED: the signer is not a trustee of poll 'park-2027'"
    swapped = poll.decrypt(0, share=poll.share(1))  # trustee 1's share signed by trustee 0
    assert outcome(swapped).startswith("REFUSED: trustee 0's partial decryption refused: "
                                       "partial_decryption: a decryption factor's proof does "
                                       "not verify")
    forged = json.loads(poll.share(0))
    forged["decryption_factors"][0][0] = str(GROUP.exp_g(random_exponent(GROUP)))
    wrong = poll.decrypt(0, share=dump_json(forged))
    assert outcome(wrong).startswith("REFUSED: trustee 0's partial decryption refused: "
                                     "partial_decryption")
    assert poll.record()["shares_count"] == 0
    assert poll.decrypt(0).code == ResultCode.OK
    again = poll.decrypt(0)
    assert outcome(again) == "REFUSED: trustee 0 already decrypted poll 'park-2027'"


def test_publish_result_refuses_too_few_shares_and_a_wrong_result(
        polls: LocalChain, ceremony: Ceremony) -> None:
    poll = ThresholdPoll(polls, ceremony)
    none = poll.publish(EXPECTED)
    assert "needs 2 more partial decryption(s): 0 of the 2 needed" in none.log
    assert poll.decrypt(1).code == ResultCode.OK and poll.decrypt(2).code == ResultCode.OK
    wrong = poll.publish([[1, 2, 1], [0, 1, 2]])
    assert outcome(wrong) == ("REFUSED: the result refused: result: a count does not match "
                              "the tally and the decryptions")
    assert poll.record()["result"] is None
    assert poll.publish(EXPECTED).code == ResultCode.OK


def test_verify_names_a_tampered_share_or_result(polls: LocalChain,
                                                 ceremony: Ceremony) -> None:
    poll = ThresholdPoll(polls, ceremony)
    assert poll.decrypt(0).code == ResultCode.OK and poll.decrypt(1).code == ResultCode.OK
    assert poll.publish(EXPECTED).code == ResultCode.OK
    data = fetch_poll_data(make_engine_reader(polls.engine), poll.poll_id)
    swapped = replace(data, shares=[data.shares[1], data.shares[0], None])
    with pytest.raises(PollVerificationFailed) as failed:
        verify_poll(swapped)
    assert failed.value.step == "decryption of trustee 0"
    lied = replace(data, poll={**data.poll, "result": dump_json({"result": [[3, 0, 0],
                                                                            [0, 3, 0]]})})
    with pytest.raises(PollVerificationFailed) as failed:
        verify_poll(lied)
    assert failed.value.step == "result" and "does not match" in failed.value.detail
    few = replace(data, shares=[data.shares[0], None, None])
    with pytest.raises(PollVerificationFailed, match="needs 2 of 3"):
        verify_poll(few)
    other = run_ceremony(3, 2)
    keys = [{**trustee, "public_key": dump_json(key.to_json())} for trustee, key in zip(
        data.poll["trustees"], other.parameters.verification_keys, strict=True)]
    with pytest.raises(PollVerificationFailed) as failed:
        verify_poll(replace(data, poll={**data.poll, "trustees": keys}))
    assert failed.value.step == "election" and "verification keys" in failed.value.detail
    # The same two shares give the result through the library's Lagrange combination.
    tally = parse_encrypted_tally(poll.election, data.poll["tally"]["ciphertexts"].encode(),
                                  3, 3)
    counts = compute_items_result(poll.election, tally, [ceremony.parameters], {
        1: compute_partial_decryption(poll.election, tally, ceremony.decryption_keys[0]),
        3: compute_partial_decryption(poll.election, tally, ceremony.decryption_keys[2])})
    assert dump_result(counts).decode() == data.poll["result"]


def forge_certificate(ceremony: Ceremony) -> str:
    """The parameters with trustee 2's certificate naming another key, signed by no one."""
    body = ceremony.parameters.to_json()
    cert = json.loads(body["certs"][1]["message"])
    cert["verification"] = str(GROUP.exp_g(random_exponent(GROUP)))
    body["certs"][1]["message"] = dump_json(cert)
    return dump_json(body)


def forge_coefexps(ceremony: Ceremony) -> str:
    """The parameters with trustee 3's commitments replaced, signed with a foreign key."""
    body = ceremony.parameters.to_json()
    coefexps = {"coefexps": [str(GROUP.exp_g(random_exponent(GROUP))) for _ in range(2)]}
    body["coefexps"][2] = sign_message(GROUP, random_exponent(GROUP),
                                       dump_json(coefexps)).to_json()
    return dump_json(body)


def change_threshold(ceremony: Ceremony, threshold: int) -> str:
    return dump_json({**ceremony.parameters.to_json(), "threshold": threshold})


@pytest.mark.parametrize(("change", "reason"), [
    (lambda c: {"threshold_parameters": forge_certificate(c)},
     "the threshold parameters refused: trustee_key: certificate 1: the signature does not "
     "verify"),
    (lambda c: {"threshold_parameters": forge_coefexps(c)},
     "the threshold parameters refused: trustee_key: coefexps 2: the signature does not "
     "verify"),
    (lambda c: {"threshold": 4},
     "a threshold poll needs 1 <= threshold <= 3, the number of trustees; got 4"),
    (lambda c: {"threshold": 3}, "threshold 3 is not the threshold parameters' 2 of 3"),
    (lambda c: {"threshold": 3, "threshold_parameters": change_threshold(c, 3)},
     "coefexps 0 has 2 items, expected 3"),
    (lambda c: {"threshold": 4, "threshold_parameters": change_threshold(c, 4)},
     "needs 1 <= threshold <= 3"),
    (lambda c: {"trustees": [{"chain_key": make_key(5).public_key},
                             {"chain_key": make_key(6).public_key}]},
     "the threshold parameters are of 3 trustees; the poll names 2 chain keys"),
    (lambda c: {"trustees": [{"chain_key": make_key(5).public_key}] * 3},
     "each trustee has a chain key of its own"),
    (lambda c: {"trustees": [{"chain_key": make_key(number).public_key, "public_key": "{}"}
                             for number in TRUSTEE_KEY_NUMBERS]},
     "a threshold trustee's keys are in the threshold parameters"),
], ids=["forged certificate", "forged coefexps", "t > n", "t not the parameters'",
        "parameters' t changed", "parameters' t > n", "n not the parameters'",
        "shared chain key", "per-trustee key"])
def test_create_poll_refuses_forged_or_inconsistent_threshold_parameters(
        polls: LocalChain, ceremony: Ceremony, change: Any, reason: str) -> None:
    result = send(polls, "create_poll", **threshold_args(polls, ceremony, **change(ceremony)))
    assert result.code == ResultCode.REFUSED, outcome(result)
    assert reason in result.log, outcome(result)
    assert polls.engine.query("vote", "poll", {"poll_id": "park-2027"}) is None


def test_create_poll_refuses_a_threshold_below_one_at_admission(polls: LocalChain,
                                                                ceremony: Ceremony) -> None:
    raw = polls.make_tx(service="vote", method="create_poll",
                        args=threshold_args(polls, ceremony, threshold=0)).encode()
    check = polls.engine.check_tx(raw)
    assert check.code == ResultCode.BAD_ARGS and "greater than or equal to 1" in check.log


def test_an_n_of_n_poll_record_has_no_threshold_field(polls: LocalChain) -> None:
    pair = generate_trustee_key(GROUP)
    created = send(polls, "create_poll", **create_args(
        polls, eligibility=ELIGIBILITY, threshold=1, trustees=[
            {"chain_key": make_key(5).public_key,
             "public_key": dump_json(pair.public.to_json())}]))
    assert created.code == ResultCode.OK, outcome(created)
    record = polls.engine.query("vote", "poll", {"poll_id": "park-2027"})
    assert "threshold_parameters" not in record
    assert record["trustees"][0]["public_key"] == dump_json(pair.public.to_json())


def run_tool(directory: Path, *args: str) -> bytes:
    """Run one belenios-tool command that must succeed; return its stdout."""
    done = subprocess.run(["belenios-tool", *args], cwd=directory, capture_output=True,
                          timeout=TOOL_TIMEOUT_S,
                          env={**os.environ, "BELENIOS_USE_URANDOM": "1"}, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout + done.stderr


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("belenios-tool") is None,
                    reason="belenios-tool is not installed (scripts/install-belenios)")
def test_threshold_poll_election_and_archive_match_belenios_tool(
        polls: LocalChain, ceremony: Ceremony, tmp_path: Path) -> None:
    poll = ThresholdPoll(polls, ceremony)
    record = poll.record()
    tool_dir = tmp_path / "tool"
    tool_dir.mkdir()
    (tool_dir / "threshold.json").write_text(record["threshold_parameters"] + "\n")
    (tool_dir / "public_keys.jsons").write_bytes(b"")
    run_tool(tool_dir, "setup", "make-trustees")
    template = {"description": record["title"], "name": record["title"],
                "questions": [{key: value for key, value in question.items()
                               if key != "blank" or value} for question in record["questions"]]}
    (tool_dir / "questions.json").write_text(json.dumps(template))
    run_tool(tool_dir, "setup", "make-election", "--uuid", poll.election.uuid, "--group",
             "BELENIOS-2048", "--template", "questions.json")
    assert (tool_dir / "election.json").read_text().rstrip("\n") == record["election"]
    assert poll.decrypt(2).code == ResultCode.OK and poll.decrypt(1).code == ResultCode.OK
    assert poll.publish(EXPECTED).code == ResultCode.OK
    archive = tmp_path / "archive"
    path = export_poll_archive(fetch_poll_data(make_engine_reader(polls.engine),
                                               poll.poll_id), archive)
    assert verify_archive(path).result == tuple(tuple(row) for row in EXPECTED)
    assert "all checks passed" in run_tool(archive, "election", "verify", "--dir",
                                           str(archive)).decode()
