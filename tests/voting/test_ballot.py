"""Ballots: made here or by belenios-tool, admitted by `verify_ballot`, every refusal named."""

from __future__ import annotations

import json

import pytest

from seoulchain.voting import (
    audit_ballot,
    create_ballot,
    make_election,
    parse_election,
    parse_public_credentials,
    verify_ballot,
)
from seoulchain.voting.errors import (
    AuditMismatch,
    BadBlankProof,
    BadIndividualProof,
    BadOverallProof,
    BadSignature,
    InvalidGroupElement,
    MalformedVotingData,
    NonCanonicalBallot,
    UnknownCredential,
    VotingUsageError,
    WrongElection,
)
from tests.voting.samples import (
    CREDENTIALS,
    QUESTIONS,
    forge_ballot,
    make_setup,
    read_tool_archive,
    resign,
)

PLAIN = [[1, 0], [0, 1, 0, 1]]


@pytest.fixture(scope="module")
def ballot() -> bytes:
    return create_ballot(make_setup().election, CREDENTIALS[0], PLAIN).raw


def test_ballot_round_trip_gives_weight_and_tracker(ballot: bytes) -> None:
    setup = make_setup()
    verified = verify_ballot(setup.election, ballot, setup.credentials)
    assert verified.weight == 1 and verified.tracker == verified.tracker.rstrip("=")
    assert [len(answer.choices) for answer in verified.answers] == [2, 4]
    blank = create_ballot(setup.election, CREDENTIALS[1], [[0, 0], [1, 0, 0, 0]]).raw
    assert verify_ballot(setup.election, blank, setup.credentials).weight == 2


def test_ballot_json_has_tool_field_order(ballot: bytes) -> None:
    body = json.loads(ballot)
    assert list(body) == ["election_uuid", "election_hash", "credential", "answers",
                          "signature"]
    assert list(body["answers"][1]) == ["choices", "individual_proofs", "overall_proof",
                                        "blank_proof"]
    assert "blank_proof" not in body["answers"][0]


def test_tool_ballots_verify_here() -> None:
    reader = read_tool_archive()
    setup = reader.payload(reader.events[0])
    election = parse_election(reader.referenced(setup, "election"))
    credentials = parse_public_credentials(election.group, reader.referenced(setup, "credentials"))
    weights = [verify_ballot(election, reader.payload(event), credentials).weight
               for event in reader.events[1:4]]
    assert sorted(weights) == [1, 1, 2]


def test_audit_recovers_the_plaintext_and_refuses_wrong_randomness() -> None:
    election = make_setup().election
    made = create_ballot(election, CREDENTIALS[0], PLAIN)
    assert audit_ballot(election, made.raw, made.randomness_json()) == ((1, 0), (0, 1, 0, 1))
    other = create_ballot(election, CREDENTIALS[0], PLAIN)
    with pytest.raises(AuditMismatch):
        audit_ballot(election, made.raw, other.randomness_json())


def test_create_ballot_refuses_plaintexts_the_question_forbids() -> None:
    election = make_setup().election
    for plaintext in ([[1, 1], [0, 1, 0, 0]], [[2, 0], [0, 1, 0, 0]], [[0, 0], [0, 0, 0, 0]],
                      [[0, 0], [1, 1, 0, 0]], [[0, 0]]):
        with pytest.raises(VotingUsageError):
            create_ballot(election, CREDENTIALS[0], plaintext)


def test_value_two_in_a_zero_one_slot_is_refused() -> None:
    setup = make_setup()
    election = make_election(uuid=setup.election.uuid, name="n", description="d",
                             group=setup.election.group, public_key=setup.election.public_key,
                             questions=[QUESTIONS[0].__class__("Q", ("a", "b"), 0, 2)])
    forged = forge_ballot(election, CREDENTIALS[0], [[2, 0]])
    with pytest.raises(BadIndividualProof):
        verify_ballot(election, forged, setup.credentials)


def test_choice_outside_min_max_is_refused() -> None:
    setup = make_setup()
    election = make_election(uuid=setup.election.uuid, name="n", description="d",
                             group=setup.election.group, public_key=setup.election.public_key,
                             questions=[QUESTIONS[0]])
    forged = forge_ballot(election, CREDENTIALS[0], [[1, 1]])
    with pytest.raises(BadOverallProof) as caught:
        verify_ballot(election, forged, setup.credentials)
    assert caught.value.check == "overall_proof"


def test_bad_individual_proof_is_refused(ballot: bytes) -> None:
    setup = make_setup()
    body = json.loads(ballot)
    proof = body["answers"][0]["individual_proofs"][1][0]
    proof["response"] = str((int(proof["response"]) + 1) % setup.election.group.q)
    with pytest.raises(BadIndividualProof):
        verify_ballot(setup.election, resign(setup.election, CREDENTIALS[0], body),
                      setup.credentials)


def test_bad_overall_and_blank_proofs_are_refused(ballot: bytes) -> None:
    setup = make_setup()
    for field, error in (("overall_proof", BadOverallProof), ("blank_proof", BadBlankProof)):
        body = json.loads(ballot)
        proofs = body["answers"][1][field]
        proofs[0], proofs[1] = proofs[1], proofs[0]
        with pytest.raises(error) as caught:
            verify_ballot(setup.election, resign(setup.election, CREDENTIALS[0], body),
                          setup.credentials)
        assert caught.value.check == field


def test_wrong_election_hash_is_refused(ballot: bytes) -> None:
    setup = make_setup()
    body = json.loads(ballot)
    body["election_hash"] = "A" * 43
    with pytest.raises(WrongElection):
        verify_ballot(setup.election, resign(setup.election, CREDENTIALS[0], body),
                      setup.credentials)
    other = make_setup("SeouLVote2345678")
    with pytest.raises(WrongElection):
        verify_ballot(other.election, ballot, setup.credentials)


def test_unknown_credential_is_refused() -> None:
    setup = make_setup()
    other = make_setup("SeouLVote2345678")  # same credential strings, other uuid → other keys
    made = create_ballot(setup.election, CREDENTIALS[0], PLAIN).raw
    with pytest.raises(UnknownCredential):
        verify_ballot(setup.election, made, other.credentials)


def test_bad_signature_is_refused(ballot: bytes) -> None:
    setup = make_setup()
    body = json.loads(ballot)
    body["answers"][0]["choices"][0], body["answers"][0]["choices"][1] = (
        body["answers"][0]["choices"][1], body["answers"][0]["choices"][0])
    with pytest.raises(BadSignature):
        verify_ballot(setup.election, json.dumps(body, separators=(",", ":")).encode(),
                      setup.credentials)
    body = json.loads(ballot)
    body["signature"]["proof"]["challenge"] = str(int(body["signature"]["proof"]["challenge"]) // 2)
    with pytest.raises(BadSignature):
        verify_ballot(setup.election, json.dumps(body, separators=(",", ":")).encode(),
                      setup.credentials)


def test_malformed_and_non_canonical_ballots_are_refused(ballot: bytes) -> None:
    setup = make_setup()
    with pytest.raises(NonCanonicalBallot):
        verify_ballot(setup.election, json.dumps(json.loads(ballot)).encode(), setup.credentials)
    for raw in (b"", b"[]", b"{}", ballot[:-1], b"\xff" * 10):
        with pytest.raises(MalformedVotingData):
            verify_ballot(setup.election, raw, setup.credentials)
    body = json.loads(ballot)
    body["answers"][0]["choices"][0]["alpha"] = str(setup.election.group.p - 1)
    with pytest.raises(InvalidGroupElement):
        verify_ballot(setup.election, resign(setup.election, CREDENTIALS[0], body),
                      setup.credentials)


def test_rfc_3526_group_ballot_round_trip() -> None:
    from seoulchain.voting import (
        RFC_3526_2048,
        PublicCredentials,
        compute_public_credential,
        generate_trustee_key,
    )

    key = generate_trustee_key(RFC_3526_2048)
    election = make_election(uuid="SeouLRfc3526ZZ48", name="n", description="d",
                             group=RFC_3526_2048, public_key=key.public.public_key,
                             questions=[QUESTIONS[0]])
    public = PublicCredentials({compute_public_credential(
        RFC_3526_2048, election.uuid, CREDENTIALS[0]): 1})
    made = create_ballot(election, CREDENTIALS[0], [[0, 1]])
    assert verify_ballot(election, made.raw, public).weight == 1
    assert b'"group":"RFC-3526-2048"' in election.raw
