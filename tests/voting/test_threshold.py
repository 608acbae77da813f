"""Threshold ("Pedersen") trustees: belenios-tool's 2-of-3 elections verify here.

The tool-driven part follows the tool's demo-threshold.sh: three threshold trustees run the
six key-establishment steps (threshold 2) beside one mandatory "Single" key, voters vote,
and only two of the three threshold trustees (plus the mandatory one) decrypt. Our code
verifies the archive and recomputes the result from any two of them; a forged share, a
share under another owner's number, a tampered commitment or verification key is refused.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from gmpy2 import mpz

from seoulchain.voting import (
    BELENIOS_2048,
    PartialDecryption,
    PublicCredentials,
    Question,
    ThresholdTrustees,
    compute_election_key,
    compute_encrypted_tally,
    compute_items_result,
    compute_partial_decryption,
    compute_public_credential,
    create_ballot,
    dump_trustee_items,
    export_archive,
    generate_credential,
    generate_trustee_key,
    generate_uuid,
    list_decryption_keys,
    make_election,
    parse_election,
    parse_partial_decryption,
    parse_trustee_items,
    parse_trustees,
    verify_archive,
    verify_ballot,
    verify_items_result,
)
from seoulchain.voting.errors import (
    ArchiveMismatch,
    BadDecryptionShare,
    BadTrusteeKey,
    MalformedVotingData,
    ResultMismatch,
    UnsupportedElection,
    VotingUsageError,
)
from seoulchain.voting.keyceremony import (
    TrusteeSeed,
    compute_vinputs,
    compute_voutput,
    derive_seed_keys,
    generate_certificate,
    generate_polynomial,
    make_threshold_parameters,
    open_decryption_key,
    sign_message,
)
from seoulchain.voting.threshold import compute_lagrange_coefficients
from seoulchain.voting.zkp import random_exponent
from tests.interop.test_belenios import PASSED, tool_ok, tool_verify

GROUP = ["--group", "BELENIOS-2048"]
VOTES = [[[1, 0], [1, 0, 0]], [[1, 0], [0, 1, 0]], [[0, 1], [0, 0, 1]]]
EXPECTED = ((2, 1), (1, 1, 1))
TEMPLATE = {"description": "t-of-n", "name": "Seoul", "questions": [
    {"answers": ["Kim", "Lee"], "min": 0, "max": 1, "question": "Mayor?"},
    {"answers": ["Han river", "Namsan", "Bukhansan"], "min": 1, "max": 1,
     "question": "Park?"}]}


def test_lagrange_coefficients_recover_the_constant_term() -> None:
    q = BELENIOS_2048.q
    coefficients = [random_exponent(BELENIOS_2048) for _ in range(3)]  # degree 2: 3 of n

    def poly(x: int) -> mpz:
        return sum(c * x**k for k, c in enumerate(coefficients)) % q

    for indexes in ([1, 2, 3], [2, 4, 5], [5, 1, 3]):
        lambdas = compute_lagrange_coefficients(BELENIOS_2048, indexes)
        assert sum(lam * poly(i) for lam, i in zip(lambdas, indexes, strict=True)) % q \
            == coefficients[0]


def test_n_of_n_parser_still_refuses_pedersen_items() -> None:
    with pytest.raises(UnsupportedElection):
        parse_trustees(BELENIOS_2048, b'[["Pedersen",{}]]')


@dataclass(frozen=True)
class ThresholdRun:
    """A tool-run 2-of-3 election: its directory, archive and per-owner partial decryptions."""

    directory: Path
    archive: Path
    raw_partials: dict[int, bytes]


def run_threshold_setup(directory: Path) -> str:
    """Run the tool's key establishment (steps 1-6) and election setup; return the uuid."""
    uuid = tool_ok(directory, "setup", "generate-token").decode().strip()
    tool_ok(directory, "setup", "generate-credentials", "--uuid", uuid, *GROUP, "--count", "3")
    (next(directory.glob("*.pubcreds"))).rename(directory / "public_creds.json")
    (next(directory.glob("*.privcreds"))).rename(directory / "private_creds.txt")
    keygen = ("setup", "generate-trustee-key-threshold", *GROUP)
    for _ in range(3):
        tool_ok(directory, *keygen, "--step", "1")
    keys = sorted(directory.glob("*.key"))
    (directory / "certs.jsons").write_bytes(
        b"".join((key.with_suffix(".cert")).read_bytes() for key in keys))
    certs = ("--certs", "certs.jsons")
    tool_ok(directory, *keygen, *certs, "--step", "2")
    (directory / "polynomials.jsons").write_bytes(b"".join(
        tool_ok(directory, *keygen, *certs, "--key", key.name, "--step", "3", "--threshold",
                "2") for key in keys))
    tool_ok(directory, *keygen, *certs, "--step", "4", "--polynomials", "polynomials.jsons")
    outputs = b"".join(tool_ok(directory, *keygen, *certs, "--key", key.name, "--step", "5",
                               stdin=key.with_suffix(".vinput").read_bytes()) for key in keys)
    (directory / "threshold.json").write_bytes(tool_ok(
        directory, *keygen, *certs, "--step", "6", "--polynomials", "polynomials.jsons",
        stdin=outputs))
    tool_ok(directory, "setup", "generate-trustee-key", *GROUP)
    (directory / "public_keys.jsons").write_bytes(next(directory.glob("*.pubkey")).read_bytes())
    tool_ok(directory, "setup", "make-trustees")
    (directory / "questions.json").write_text(json.dumps(TEMPLATE))
    tool_ok(directory, "setup", "make-election", "--uuid", uuid, *GROUP,
            "--template", "questions.json")
    tool_ok(directory, "archive", "init")
    return uuid


def owner_of(directory: Path, key: Path) -> int:
    """Return the owner number (from 2; 1 is the mandatory key) of a threshold trustee."""
    certs = (directory / "certs.jsons").read_bytes().splitlines()
    return 2 + certs.index(key.with_suffix(".cert").read_bytes().strip())


@pytest.fixture(scope="module")
def threshold_run(tmp_path_factory: pytest.TempPathFactory) -> ThresholdRun:
    if shutil.which("belenios-tool") is None:
        pytest.skip("belenios-tool is not installed (./scripts/install-belenios)")
    directory = tmp_path_factory.mktemp("threshold")
    uuid = run_threshold_setup(directory)
    credentials = [line.split()[1] for line in
                   (directory / "private_creds.txt").read_text().splitlines()]
    for credential, votes in zip(credentials, VOTES, strict=True):
        (directory / "cred").write_text(credential + "\n")
        (directory / "vote").write_text(json.dumps(votes))
        ballot = tool_ok(directory, "election", "generate-ballot", "--privcred", "cred",
                         "--ballot", "vote")
        tool_ok(directory, "archive", "add-event", "--type=Ballot", stdin=ballot)
    tool_ok(directory, "archive", "add-event", "--type=EndBallots")
    tool_ok(directory, "archive", "add-event", "--type=EncryptedTally",
            stdin=tool_ok(directory, "election", "compute-encrypted-tally"))
    raw_partials = {1: tool_ok(directory, "election", "decrypt", "--privkey",
                               next(directory.glob("*.privkey")).name, "--trustee-id", "1")}
    for key in directory.glob("*.key"):
        owner = owner_of(directory, key)
        raw_partials[owner] = tool_ok(
            directory, "election", "decrypt-threshold", "--key", key.name, "--decryption-key",
            key.with_suffix(".dkey").name, "--trustee-id", str(owner))
    for owner in (1, 2, 4):  # owner 3 (the second threshold trustee) does not take part
        tool_ok(directory, "archive", "add-event", "--type=PartialDecryption",
                stdin=raw_partials[owner])
    tool_ok(directory, "archive", "add-event", "--type=Result",
            stdin=tool_ok(directory, "election", "compute-result"))
    return ThresholdRun(directory, directory / f"{uuid}.bel", raw_partials)


def load_partials(run: ThresholdRun, owners: tuple[int, ...]) -> dict[int, PartialDecryption]:
    """Parse the tool's partial decryptions of `owners`."""
    election = parse_election((run.directory / "election.json").read_bytes().rstrip(b"\n"))
    return {owner: parse_partial_decryption(election, run.raw_partials[owner].split(b"\n")[0])
            for owner in owners}


@pytest.mark.e2e
def test_threshold_tool_archive_decrypted_by_2_of_3_verifies(threshold_run: ThresholdRun,
                                                             ) -> None:
    report = verify_archive(threshold_run.archive)
    assert report.result == EXPECTED
    trustees = parse_trustee_items(report.election.group,
                                   (threshold_run.directory / "trustees.json").read_bytes())
    assert dump_trustee_items(trustees) == (threshold_run.directory
                                            / "trustees.json").read_bytes().rstrip(b"\n")
    assert compute_election_key(report.election.group, trustees) == report.election.public_key
    assert len(list_decryption_keys(trustees)) == 4 and trustees[1].threshold == 2


@pytest.mark.e2e
def test_threshold_any_two_of_three_give_the_result_one_does_not(
        threshold_run: ThresholdRun) -> None:
    report = verify_archive(threshold_run.archive)
    election, tally = report.election, report.tally
    trustees = parse_trustee_items(election.group,
                                   (threshold_run.directory / "trustees.json").read_bytes())
    for owners in ((1, 2, 3), (1, 3, 4), (1, 2, 3, 4)):
        partials = load_partials(threshold_run, owners)
        assert compute_items_result(election, tally, trustees, partials) == EXPECTED
        verify_items_result(election, tally, trustees, partials, EXPECTED)
    with pytest.raises(ResultMismatch):
        verify_items_result(election, tally, trustees, load_partials(threshold_run, (1, 2, 3)),
                            ((1, 2), (1, 1, 1)))
    with pytest.raises(VotingUsageError, match="needs 2 of 3"):
        compute_items_result(election, tally, trustees, load_partials(threshold_run, (1, 4)))
    with pytest.raises(VotingUsageError, match="mandatory trustee 1"):
        compute_items_result(election, tally, trustees, load_partials(threshold_run, (2, 3)))


@pytest.mark.e2e
def test_threshold_wrong_share_is_refused(threshold_run: ThresholdRun) -> None:
    report = verify_archive(threshold_run.archive)
    election, tally = report.election, report.tally
    trustees = parse_trustee_items(election.group,
                                   (threshold_run.directory / "trustees.json").read_bytes())
    partials = load_partials(threshold_run, (1, 2, 4))
    swapped = {1: partials[1], 3: partials[2], 4: partials[4]}  # owner 2's share as owner 3
    with pytest.raises(BadDecryptionShare):
        compute_items_result(election, tally, trustees, swapped)
    factors = [list(row) for row in partials[2].factors]
    factors[0][0] = election.group.mul(factors[0][0], election.group.g)
    forged = PartialDecryption(tuple(map(tuple, factors)), partials[2].proofs)
    with pytest.raises(BadDecryptionShare):
        compute_items_result(election, tally, trustees, {**partials, 2: forged})


@pytest.mark.e2e
def test_threshold_wrong_commitment_or_key_is_refused(threshold_run: ThresholdRun) -> None:
    directory = threshold_run.directory
    items = json.loads((directory / "trustees.json").read_bytes())
    pedersen = items[1][1]
    group = BELENIOS_2048
    parse_trustee_items(group, json.dumps(items).encode())  # the untouched list parses
    # A commitment changed without re-signing: the signature of the coefexps fails.
    unsigned = json.loads(json.dumps(items))
    message = json.loads(unsigned[1][1]["coefexps"][0]["message"])
    message["coefexps"][1] = str(group.exp_g(mpz(5)))
    unsigned[1][1]["coefexps"][0]["message"] = json.dumps(message, separators=(",", ":"))
    with pytest.raises(BadTrusteeKey, match="signature"):
        parse_trustee_items(group, json.dumps(unsigned).encode())
    # The same change properly signed by its trustee: the verification keys no longer match.
    certs = (directory / "certs.jsons").read_bytes().splitlines()
    (key,) = [key for key in directory.glob("*.key")
              if key.with_suffix(".cert").read_bytes().strip() == certs[0]]
    secret = derive_seed_keys(group, key.read_text().strip()).signing_key
    assert str(group.exp_g(secret)) in pedersen["certs"][0]["message"]
    resigned = json.loads(json.dumps(items))
    resigned[1][1]["coefexps"][0] = sign_message(
        group, secret, unsigned[1][1]["coefexps"][0]["message"]).to_json()
    with pytest.raises(BadTrusteeKey, match="commitments"):
        parse_trustee_items(group, json.dumps(resigned).encode())
    # A verification key replaced by another valid key (with its own proof): refused.
    replaced = json.loads(json.dumps(items))
    replaced[1][1]["verification_keys"][2] = generate_trustee_key(group).public.to_json()
    with pytest.raises(BadTrusteeKey, match="verification key 3"):
        parse_trustee_items(group, json.dumps(replaced).encode())
    # A certificate whose signature fails.
    bad_cert = json.loads(json.dumps(items))
    bad_cert[1][1]["certs"][1]["signature"]["response"] = "1"
    with pytest.raises(BadTrusteeKey, match="certificate 1"):
        parse_trustee_items(group, json.dumps(bad_cert).encode())


@pytest.mark.e2e
def test_threshold_tally_matches_and_result_needs_threshold_events(
        threshold_run: ThresholdRun, tmp_path: Path) -> None:
    report = verify_archive(threshold_run.archive)
    assert report.tally == compute_encrypted_tally(report.election, list(report.ballots))
    # An archive whose Result follows only one threshold trustee's share is refused.
    directory = tmp_path / "short"
    directory.mkdir()
    uuid = run_threshold_setup(directory)
    tool_ok(directory, "archive", "add-event", "--type=EndBallots")
    tool_ok(directory, "archive", "add-event", "--type=EncryptedTally",
            stdin=tool_ok(directory, "election", "compute-encrypted-tally"))
    tool_ok(directory, "archive", "add-event", "--type=PartialDecryption",
            stdin=tool_ok(directory, "election", "decrypt", "--privkey",
                          next(directory.glob("*.privkey")).name, "--trustee-id", "1"))
    key = next(directory.glob("*.key"))
    tool_ok(directory, "archive", "add-event", "--type=PartialDecryption", stdin=tool_ok(
        directory, "election", "decrypt-threshold", "--key", key.name, "--decryption-key",
        key.with_suffix(".dkey").name, "--trustee-id", str(owner_of(directory, key))))
    assert verify_archive(directory / f"{uuid}.bel").result is None
    # A share posted under another threshold trustee's owner number is refused.
    wrong = tmp_path / "wrong"
    shutil.copytree(directory, wrong)
    other = next(path for path in wrong.glob("*.key") if path.name != key.name)
    (third,) = {2, 3, 4} - {owner_of(wrong, key), owner_of(wrong, other)}
    tool_ok(wrong, "archive", "add-event", "--type=PartialDecryption", stdin=tool_ok(
        wrong, "election", "decrypt-threshold", "--key", other.name, "--decryption-key",
        other.with_suffix(".dkey").name, "--trustee-id", str(third)))
    with pytest.raises(BadDecryptionShare):
        verify_archive(wrong / f"{uuid}.bel")
    tool_ok(directory, "archive", "add-event", "--type=Result",
            stdin=b'{"result":[[0,0],[0,0,0]]}')
    with pytest.raises(ArchiveMismatch, match="needs 2 of 3"):
        verify_archive(directory / f"{uuid}.bel")


@dataclass(frozen=True)
class Ceremony:
    """A 2-of-3 key establishment run by our code: each trustee's files and the item."""

    seeds: list[TrusteeSeed]
    certificates: list[str]
    polynomials: list[str]
    vinputs: list[str]
    voutputs: list[str]
    trustees: ThresholdTrustees


@pytest.fixture(scope="module")
def ceremony() -> Ceremony:
    group = BELENIOS_2048
    made = [generate_certificate(group) for _ in range(3)]
    seeds = [seed for seed, _ in made]
    certificates = [json.dumps(cert.to_json(), separators=(",", ":")) for _, cert in made]
    polynomials = [generate_polynomial(group, seed, certificates, 2) for seed in seeds]
    vinputs = compute_vinputs(polynomials)
    voutputs = [compute_voutput(group, seed, certificates, vinput)
                for seed, vinput in zip(seeds, vinputs, strict=True)]
    trustees = make_threshold_parameters(group, certificates, 2, vinputs[0], voutputs)
    return Ceremony(seeds, certificates, polynomials, vinputs, voutputs, trustees)


def test_ceremony_2_of_3_decrypts_with_any_two_trustees(ceremony: Ceremony,
                                                       tmp_path: Path) -> None:

    group = BELENIOS_2048
    items = [ceremony.trustees]
    assert parse_trustee_items(group, dump_trustee_items(items)) == items
    election = make_election(uuid=generate_uuid(), name="n", description="d", group=group,
                             public_key=compute_election_key(group, items),
                             questions=[Question("Mayor?", ("Kim", "Lee"), 0, 1)])
    credentials = [generate_credential() for _ in range(3)]
    public = PublicCredentials({compute_public_credential(group, election.uuid, credential): 1
                                for credential in credentials})
    ballots = [verify_ballot(election, create_ballot(election, credential, votes).raw, public)
               for credential, votes in zip(credentials, ([[1, 0]], [[0, 1]], [[1, 0]]),
                                            strict=True)]
    tally = compute_encrypted_tally(election, ballots)
    keys = [open_decryption_key(group, seed, json.loads(voutput)["private_key"])
            for seed, voutput in zip(ceremony.seeds, ceremony.voutputs, strict=True)]
    partials = {owner: compute_partial_decryption(election, tally, key)
                for owner, key in enumerate(keys, start=1)}
    for owners in ((1, 2), (2, 3), (3, 1)):
        chosen = {owner: partials[owner] for owner in owners}
        assert compute_items_result(election, tally, items, chosen) == ((2, 1),)
    with pytest.raises(VotingUsageError, match="needs 2 of 3"):
        compute_items_result(election, tally, items, {2: partials[2]})
    with pytest.raises(BadDecryptionShare):
        compute_items_result(election, tally, items, {1: partials[2], 3: partials[3]})
    chosen = {3: partials[3], 1: partials[1]}
    path = export_archive(tmp_path, election=election, trustees=items, public_credentials=public,
                          ballots=[ballot.raw for ballot in ballots], tally=tally,
                          partial_decryptions=chosen,
                          result=compute_items_result(election, tally, items, chosen))
    assert verify_archive(path).result == ((2, 1),)


def test_ceremony_refuses_a_wrong_share_or_a_foreign_channel(ceremony: Ceremony) -> None:
    group = BELENIOS_2048
    # Trustee 1 sends trustee 2 a share of another polynomial than the one it committed to.
    other = json.loads(generate_polynomial(group, ceremony.seeds[0], ceremony.certificates, 2))
    vinput = json.loads(ceremony.vinputs[1])
    vinput["secrets"][0] = other["secrets"][1]
    with pytest.raises(BadTrusteeKey, match="trustee 1's share"):
        compute_voutput(group, ceremony.seeds[1], ceremony.certificates, json.dumps(vinput))
    # Trustee 3 cannot open what was sealed to trustee 2.
    with pytest.raises(BadTrusteeKey, match="does not decrypt"):
        compute_voutput(group, ceremony.seeds[2], ceremony.certificates, ceremony.vinputs[1])
    with pytest.raises(MalformedVotingData):
        derive_seed_keys(group, "0" * 22)
    # A commitment changed after signing.
    tampered = json.loads(ceremony.vinputs[0])
    coefexps = json.loads(tampered["coefexps"][2]["message"])
    coefexps["coefexps"][0] = str(group.exp_g(mpz(7)))
    tampered["coefexps"][2]["message"] = json.dumps(coefexps, separators=(",", ":"))
    with pytest.raises(BadTrusteeKey, match="signature"):
        compute_voutput(group, ceremony.seeds[0], ceremony.certificates, json.dumps(tampered))


@pytest.mark.e2e
def test_tool_verifies_and_decrypts_with_keys_from_our_ceremony(ceremony: Ceremony,
                                                               tmp_path: Path) -> None:
    if shutil.which("belenios-tool") is None:
        pytest.skip("belenios-tool is not installed (./scripts/install-belenios)")
    for index, (seed, voutput) in enumerate(zip(ceremony.seeds, ceremony.voutputs,
                                                strict=True)):
        (tmp_path / f"t{index}.key").write_text(seed.seed + "\n")
        (tmp_path / f"t{index}.dkey").write_text(json.loads(voutput)["private_key"] + "\n")
    (tmp_path / "threshold.json").write_text(
        json.dumps(ceremony.trustees.to_json(), separators=(",", ":")) + "\n")
    uuid = tool_ok(tmp_path, "setup", "generate-token").decode().strip()
    tool_ok(tmp_path, "setup", "generate-credentials", "--uuid", uuid, *GROUP, "--count", "3")
    (next(tmp_path.glob("*.pubcreds"))).rename(tmp_path / "public_creds.json")
    credentials = [line.split()[1] for line in
                   next(tmp_path.glob("*.privcreds")).read_text().splitlines()]
    (tmp_path / "public_keys.jsons").write_bytes(b"")  # no mandatory key: only t of n
    tool_ok(tmp_path, "setup", "make-trustees")
    (tmp_path / "questions.json").write_text(json.dumps(TEMPLATE))
    tool_ok(tmp_path, "setup", "make-election", "--uuid", uuid, *GROUP,
            "--template", "questions.json")
    tool_ok(tmp_path, "archive", "init")
    for credential, votes in zip(credentials, VOTES, strict=True):
        (tmp_path / "cred").write_text(credential + "\n")
        (tmp_path / "vote").write_text(json.dumps(votes))
        tool_ok(tmp_path, "archive", "add-event", "--type=Ballot", stdin=tool_ok(
            tmp_path, "election", "generate-ballot", "--privcred", "cred", "--ballot", "vote"))
    tool_ok(tmp_path, "archive", "add-event", "--type=EndBallots")
    tool_ok(tmp_path, "archive", "add-event", "--type=EncryptedTally",
            stdin=tool_ok(tmp_path, "election", "compute-encrypted-tally"))
    for index in (2, 0):
        tool_ok(tmp_path, "archive", "add-event", "--type=PartialDecryption", stdin=tool_ok(
            tmp_path, "election", "decrypt-threshold", "--key", f"t{index}.key",
            "--decryption-key", f"t{index}.dkey", "--trustee-id", str(index + 1)))
    tool_ok(tmp_path, "archive", "add-event", "--type=Result",
            stdin=tool_ok(tmp_path, "election", "compute-result"))
    done = tool_verify(tmp_path)
    assert done.returncode == 0 and PASSED in done.stderr.decode(), done.stderr.decode()
    assert verify_archive(tmp_path / f"{uuid}.bel").result == EXPECTED
