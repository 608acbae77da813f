"""Election, trustees, credentials and groups: formats and checks as belenios-tool 2.0 has them."""

from __future__ import annotations

import base64
import hashlib
import json

import gmpy2
import pytest

from seoulchain.voting import (
    BELENIOS_2048,
    RFC_3526_2048,
    compute_public_credential,
    generate_credential,
    generate_trustee_key,
    get_group,
    make_election,
    parse_election,
    parse_public_credentials,
    parse_trustees,
)
from seoulchain.voting.credential import check_credential
from seoulchain.voting.errors import (
    BadTrusteeKey,
    InvalidGroupElement,
    MalformedVotingData,
    UnsupportedElection,
    VotingUsageError,
)
from seoulchain.voting.group import parse_element
from seoulchain.voting.trustees import dump_trustees
from tests.voting.samples import QUESTIONS, TOOL_CREDENTIALS, make_setup, read_tool_archive


def tool_setup() -> tuple[bytes, bytes, bytes]:
    """Return the election, trustees and credentials bytes of the tool's archive."""
    reader = read_tool_archive()
    setup = reader.payload(reader.events[0])
    return tuple(reader.referenced(setup, key) for key in ("election", "trustees", "credentials"))


@pytest.mark.parametrize("group", [BELENIOS_2048, RFC_3526_2048])
def test_group_parameters_are_a_prime_order_subgroup(group) -> None:
    assert gmpy2.is_prime(group.p) and gmpy2.is_prime(group.q)
    assert (group.p - 1) % group.q == 0 and group.is_member(group.g)
    assert get_group(group.name) is group


def test_group_refuses_elements_outside_the_subgroup() -> None:
    for text in ("0", str(BELENIOS_2048.p - 1), str(BELENIOS_2048.p + 1), "-1", "01", "x"):
        with pytest.raises((InvalidGroupElement, MalformedVotingData)):
            parse_element(BELENIOS_2048, text, "value")
    with pytest.raises(VotingUsageError):
        get_group("TOY-64")


def test_tool_election_parses_and_its_fingerprint_is_the_ballots_election_hash() -> None:
    election_raw, _, _ = tool_setup()
    election = parse_election(election_raw)
    assert election.fingerprint == base64.b64encode(
        hashlib.sha256(election_raw).digest()).decode().rstrip("=")
    ballot = json.loads(read_tool_archive().payload(read_tool_archive().events[1]))
    assert ballot["election_hash"] == election.fingerprint
    assert [question.blank for question in election.questions] == [False, True]


def test_made_election_is_byte_stable_and_in_tool_field_order() -> None:
    election = make_setup().election
    assert parse_election(election.raw) == election
    assert list(json.loads(election.raw)) == ["version", "description", "name", "group",
                                              "public_key", "questions", "uuid"]
    assert b'"blank":true,"min":1' in election.raw


def test_election_refuses_bad_bounds_and_unsupported_features() -> None:
    setup = make_setup()
    with pytest.raises(VotingUsageError):
        make_election(uuid="SeouLTest1234567", name="n", description="d", group=BELENIOS_2048,
                      public_key=setup.election.public_key,
                      questions=[QUESTIONS[0].__class__("q", ("a",), 1, 2)])
    body = json.loads(setup.election.raw)
    body["questions"].append({"type": "NonHomomorphic", "value": {}})
    with pytest.raises(UnsupportedElection):
        parse_election(json.dumps(body).encode())
    with pytest.raises(MalformedVotingData):
        parse_election(b"{not json")


def test_tool_trustee_keys_verify_and_a_tampered_proof_is_refused() -> None:
    _, trustees_raw, _ = tool_setup()
    keys = parse_trustees(BELENIOS_2048, trustees_raw)
    assert dump_trustees(keys) == trustees_raw
    items = json.loads(trustees_raw)
    items[0][1]["pok"]["response"] = str(int(items[0][1]["pok"]["response"]) ^ 1)
    with pytest.raises(BadTrusteeKey):
        parse_trustees(BELENIOS_2048, json.dumps(items).encode())
    with pytest.raises(UnsupportedElection):
        parse_trustees(BELENIOS_2048, b'[["Pedersen",{}]]')


def test_our_trustee_key_round_trips() -> None:
    pair = generate_trustee_key(BELENIOS_2048)
    assert parse_trustees(BELENIOS_2048, dump_trustees([pair.public])) == [pair.public]


def test_tool_credentials_derive_the_published_public_credentials() -> None:
    election_raw, _, credentials_raw = tool_setup()
    election = parse_election(election_raw)
    public = parse_public_credentials(BELENIOS_2048, credentials_raw)
    derived = [compute_public_credential(BELENIOS_2048, election.uuid, credential)
               for credential in TOOL_CREDENTIALS]
    assert sorted(public.weight_of(credential) for credential in derived) == [1, 1, 2]


def test_credential_checksum_catches_typing_errors() -> None:
    credential = generate_credential()
    assert check_credential(credential) == credential
    typo = credential[:-1] + ("2" if credential[-1] != "2" else "3")
    for bad in (typo, credential[:10], "0" * 19, credential.replace("-", "+")):
        with pytest.raises(VotingUsageError):
            check_credential(bad)


def test_public_credentials_refuse_duplicates_and_non_members() -> None:
    member = str(BELENIOS_2048.g)
    with pytest.raises(MalformedVotingData):
        parse_public_credentials(BELENIOS_2048, json.dumps([member, member + ",1"]).encode())
    with pytest.raises(InvalidGroupElement):
        parse_public_credentials(BELENIOS_2048, json.dumps(["2"]).encode())
