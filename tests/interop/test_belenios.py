"""Voting cryptography interoperates with belenios-tool 2.0, in both directions.

(a) An election set up, voted, tallied and decrypted by seoulchain is exported and
`belenios-tool election verify` passes it; (b) an election set up by the tool (its
credentials, trustee keys, ballots, tally, partial decryptions, result) verifies in
seoulchain, and a seoulchain ballot cast in it is accepted by the tool; (c) an export with
one ballot changed is refused by both. The tool comes from Debian (scripts/install-belenios).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from seoulchain.voting import (
    compute_encrypted_tally,
    compute_partial_decryption,
    compute_result,
    create_ballot,
    export_archive,
    parse_election,
    parse_encrypted_tally,
    parse_partial_decryption,
    parse_private_key,
    parse_public_credentials,
    parse_result,
    parse_trustees,
    verify_archive,
    verify_ballot,
    verify_partial_decryption,
    verify_result,
)
from seoulchain.voting.errors import VotingCheckFailed
from tests.voting.samples import CREDENTIALS, make_setup

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
TOOL_TIMEOUT_S = 120  # one belenios-tool command; each takes well under a second here
PASSED = "all checks passed"
TEMPLATE = {"description": "mVoting interop", "name": "Seoul", "questions": [
    {"answers": ["Kim", "Lee"], "min": 0, "max": 1, "question": "Mayor?"},
    {"answers": ["Han river", "Namsan", "Bukhansan"], "blank": True, "min": 1, "max": 2,
     "question": "Parks?"}]}
VOTES = [[[1, 0], [0, 0, 1, 1]], [[0, 1], [1, 0, 0, 0]], [[0, 0], [0, 1, 0, 0]]]


@pytest.fixture(scope="module", autouse=True)
def belenios_tool() -> None:
    if shutil.which("belenios-tool") is None:
        if shutil.which("apt-get") is None:
            pytest.skip("belenios-tool is not installed and apt-get is unavailable to install "
                        "it (Debian package belenios-tool)")
        subprocess.run([str(ROOT / "scripts" / "install-belenios")], check=True,
                       timeout=600)


def tool(directory: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    """Run one belenios-tool command in `directory` (random numbers from /dev/urandom)."""
    return subprocess.run(["belenios-tool", *args], cwd=directory, input=stdin,
                          capture_output=True, timeout=TOOL_TIMEOUT_S,
                          env={**os.environ, "BELENIOS_USE_URANDOM": "1"})


def tool_ok(directory: Path, *args: str, stdin: bytes = b"") -> bytes:
    """Run a belenios-tool command that must succeed; return its stdout."""
    done = tool(directory, *args, stdin=stdin)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def tool_verify(directory: Path) -> subprocess.CompletedProcess:
    """Run `belenios-tool election verify --dir DIR`."""
    return tool(directory, "election", "verify", "--dir", str(directory))


def export_ours(directory: Path, ballots: list[bytes]) -> Path:
    """Tally, decrypt and export the sample election with `ballots` (none checked here)."""
    setup = make_setup()
    trustees = [pair.public for pair in setup.trustees]
    verified = [verify_ballot(setup.election, ballot, setup.credentials) for ballot in ballots]
    tally = compute_encrypted_tally(setup.election, verified)
    partials = [compute_partial_decryption(setup.election, tally, pair.private_key)
                for pair in setup.trustees]
    result = compute_result(setup.election, tally, trustees, partials)
    return export_archive(directory, election=setup.election, trustees=trustees,
                          public_credentials=setup.credentials, ballots=ballots, tally=tally,
                          partial_decryptions=partials, result=result)


@pytest.fixture(scope="module")
def our_ballots() -> list[bytes]:
    election = make_setup().election
    return [create_ballot(election, credential, votes).raw
            for credential, votes in zip(CREDENTIALS, VOTES, strict=True)]


def test_tool_verifies_an_election_run_by_seoulchain(tmp_path: Path,
                                                     our_ballots: list[bytes]) -> None:
    export_ours(tmp_path, our_ballots)
    done = tool_verify(tmp_path)
    assert done.returncode == 0 and PASSED in done.stderr.decode(), done.stderr.decode()


def test_tool_and_seoulchain_refuse_an_export_with_one_ballot_changed(
        tmp_path: Path, our_ballots: list[bytes]) -> None:
    path = export_ours(tmp_path, our_ballots)
    raw = bytearray(path.read_bytes())
    raw[raw.index(b'"beta":"') + 20] ^= 1  # one digit of the first ballot's first β
    path.write_bytes(bytes(raw))
    done = tool_verify(tmp_path)
    assert done.returncode != 0 and PASSED not in done.stderr.decode()
    with pytest.raises(VotingCheckFailed):
        verify_archive(path)
    # The same change with every hash recomputed: the chain holds, the signature does not.
    body = json.loads(our_ballots[1])
    body["answers"][0]["choices"].reverse()
    setup = make_setup()
    rechained = export_archive(tmp_path / "rechained", election=setup.election,
                               trustees=[pair.public for pair in setup.trustees],
                               public_credentials=setup.credentials,
                               ballots=[our_ballots[0],
                                        json.dumps(body, separators=(",", ":")).encode()])
    done = tool_verify(rechained.parent)
    assert done.returncode != 0 and PASSED not in done.stderr.decode()
    with pytest.raises(VotingCheckFailed):
        verify_archive(rechained)


def make_tool_election(directory: Path) -> tuple[str, list[str]]:
    """Set up an election with the tool alone; return its uuid and private credentials."""
    uuid = tool_ok(directory, "setup", "generate-token").decode().strip()
    (directory / "voters.txt").write_text("v1@seoul.test,v1,1\nv2@seoul.test,v2,2\n"
                                          "v3@seoul.test,v3,1\n")
    group = ["--group", "BELENIOS-2048"]
    tool_ok(directory, "setup", "generate-credentials", "--uuid", uuid, *group,
            "--file", "voters.txt")
    for _ in range(2):
        tool_ok(directory, "setup", "generate-trustee-key", *group)
    (directory / "public_keys.jsons").write_bytes(
        b"".join(path.read_bytes() for path in sorted(directory.glob("*.pubkey"))))
    tool_ok(directory, "setup", "make-trustees")
    (directory / "questions.json").write_text(json.dumps(TEMPLATE))
    tool_ok(directory, "setup", "make-election", "--uuid", uuid, *group,
            "--template", "questions.json")
    (public,) = directory.glob("*.pubcreds")
    public.rename(directory / "public_creds.json")
    (private,) = directory.glob("*.privcreds")
    credentials = [line.split()[1] for line in private.read_text().splitlines()]
    tool_ok(directory, "archive", "init")
    return uuid, credentials


def test_tool_election_verifies_in_seoulchain_and_accepts_our_ballot(tmp_path: Path) -> None:
    _, credentials = make_tool_election(tmp_path)
    election = parse_election((tmp_path / "election.json").read_bytes().rstrip(b"\n"))
    trustees = parse_trustees(election.group, (tmp_path / "trustees.json").read_bytes())
    public = parse_public_credentials(election.group,
                                      (tmp_path / "public_creds.json").read_bytes())
    verified = []
    for credential, votes in zip(credentials, VOTES, strict=True):
        (tmp_path / "cred").write_text(credential + "\n")
        (tmp_path / "vote").write_text(json.dumps(votes))
        ballot = tool_ok(tmp_path, "election", "generate-ballot", "--privcred", "cred",
                         "--ballot", "vote").rstrip(b"\n")
        verified.append(verify_ballot(election, ballot, public))
        tool_ok(tmp_path, "archive", "add-event", "--type=Ballot", stdin=ballot)
    revote = [[1, 0], [1, 0, 0, 0]]
    ours = create_ballot(election, credentials[2], revote).raw
    verified.append(verify_ballot(election, ours, public))
    tool_ok(tmp_path, "archive", "add-event", "--type=Ballot", stdin=ours)
    tool_ok(tmp_path, "archive", "add-event", "--type=EndBallots")
    tally_raw = tool_ok(tmp_path, "election", "compute-encrypted-tally")
    tool_ok(tmp_path, "archive", "add-event", "--type=EncryptedTally", stdin=tally_raw)
    tally = parse_encrypted_tally(election, tally_raw.split(b"\n")[0], 3, 4)
    assert tally == compute_encrypted_tally(election, verified)
    keys = {trustee.public_key: index for index, trustee in enumerate(trustees)}
    partials = [None] * len(trustees)
    for path in sorted(tmp_path.glob("*.privkey")):
        index = keys[election.group.exp_g(parse_private_key(election.group, path.read_bytes()))]
        raw = tool_ok(tmp_path, "election", "decrypt", "--privkey", path.name,
                      "--trustee-id", str(index + 1))
        tool_ok(tmp_path, "archive", "add-event", "--type=PartialDecryption", stdin=raw)
        partials[index] = parse_partial_decryption(election, raw.split(b"\n")[0])
        verify_partial_decryption(election, tally, trustees[index], partials[index])
    result_raw = tool_ok(tmp_path, "election", "compute-result")
    tool_ok(tmp_path, "archive", "add-event", "--type=Result", stdin=result_raw)
    result = parse_result(election, result_raw)
    weights = [ballot.weight for ballot in verified[:3]]
    counted = [VOTES[0], VOTES[1], revote]
    assert result == tuple(tuple(sum(weight * votes[question][choice] for weight, votes
                                     in zip(weights, counted, strict=True))
                                 for choice in range(len(VOTES[0][question])))
                           for question in range(2))
    verify_result(election, tally, trustees, partials, result)
    done = tool_verify(tmp_path)
    assert done.returncode == 0 and PASSED in done.stderr.decode(), done.stderr.decode()
    assert verify_archive(next(tmp_path.glob("*.bel"))).result == result
