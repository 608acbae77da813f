"""Archives: ours are laid out byte for byte as belenios-tool's, and both are checked here."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from seoulchain.voting import (
    compute_encrypted_tally,
    compute_partial_decryption,
    compute_result,
    create_ballot,
    export_archive,
    verify_archive,
    verify_ballot,
)
from seoulchain.voting.archive import ArchiveWriter, read_entries
from seoulchain.voting.errors import ArchiveMismatch, BadSignature, VotingCheckFailed
from tests.voting.samples import CREDENTIALS, TOOL_ARCHIVE, TOOL_RESULT, make_setup

PLAINS = [[[1, 0], [0, 1, 0, 0]], [[0, 0], [1, 0, 0, 0]], [[0, 1], [0, 0, 1, 1]]]


@pytest.fixture(scope="module")
def ballots() -> list[bytes]:
    setup = make_setup()
    return [create_ballot(setup.election, credential, plain).raw
            for credential, plain in zip(CREDENTIALS, PLAINS, strict=True)]


def export(directory: Path, ballots: list[bytes], tally_too: bool = True) -> Path:
    """Export the sample election with `ballots`, tallied and decrypted when asked."""
    setup = make_setup()
    verified = [verify_ballot(setup.election, ballot, setup.credentials) for ballot in ballots]
    tally = compute_encrypted_tally(setup.election, verified) if tally_too else None
    partials = [compute_partial_decryption(setup.election, tally, pair.private_key)
                for pair in setup.trustees] if tally else []
    trustees = [pair.public for pair in setup.trustees]
    result = compute_result(setup.election, tally, trustees, partials) if tally else None
    return export_archive(directory, election=setup.election, trustees=trustees,
                          public_credentials=setup.credentials, ballots=ballots, tally=tally,
                          partial_decryptions=partials, result=result, timestamp=1_700_000_000)


@pytest.fixture(scope="module")
def tallied(tmp_path_factory: pytest.TempPathFactory, ballots: list[bytes]) -> bytes:
    return export(tmp_path_factory.mktemp("tallied"), ballots).read_bytes()


def write_archive(directory: Path, raw: bytes) -> Path:
    """Write archive bytes as DIRECTORY/UUID.bel."""
    path = directory / f"{make_setup().election.uuid}.bel"
    path.write_bytes(raw)
    return path


def test_tool_archive_verifies_here() -> None:
    report = verify_archive(TOOL_ARCHIVE)
    assert report.result == TOOL_RESULT and len(report.ballots) == 3


def test_archive_writer_reproduces_the_tool_archive_byte_for_byte() -> None:
    entries = read_entries(TOOL_ARCHIVE)
    header = json.loads(entries[0][1])
    writer = ArchiveWriter(int(header["timestamp"]))
    for name, body in entries:
        writer.write_file(name, body)
    assert b"".join(writer.chunks) == TOOL_ARCHIVE.read_bytes()


def test_export_round_trip(tmp_path: Path, ballots: list[bytes], tallied: bytes) -> None:
    report = verify_archive(write_archive(tmp_path, tallied))
    assert report.result == ((1, 1), (2, 1, 1, 1))
    voting = verify_archive(export(tmp_path / "open", ballots, tally_too=False))
    assert voting.tally is None and len(voting.ballots) == 3


def test_archive_with_a_changed_byte_is_refused(tmp_path: Path, tallied: bytes) -> None:
    path = write_archive(tmp_path, tallied)
    raw = bytearray(tallied)
    raw[raw.index(b'"alpha":"') + 12] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(ArchiveMismatch):
        verify_archive(path)


def test_rechained_archive_with_a_changed_ballot_is_refused(tmp_path: Path,
                                                             ballots: list[bytes]) -> None:
    body = json.loads(ballots[1])
    choices = body["answers"][0]["choices"]
    choices[0], choices[1] = choices[1], choices[0]
    changed = json.dumps(body, separators=(",", ":")).encode()
    setup = make_setup()
    path = export_archive(tmp_path, election=setup.election,
                          trustees=[pair.public for pair in setup.trustees],
                          public_credentials=setup.credentials,
                          ballots=[ballots[0], changed, ballots[2]], timestamp=1_700_000_000)
    with pytest.raises(BadSignature):
        verify_archive(path)


def test_archive_whose_tally_does_not_match_its_ballots_is_refused(
        tmp_path: Path, ballots: list[bytes], tallied: bytes) -> None:
    entries = read_entries(write_archive(tmp_path, tallied))
    writer = ArchiveWriter(1_700_000_000)
    writer.write_file(*entries[0])
    skipped = {hashlib.sha256(ballots[2]).hexdigest()}
    for name, body in entries[1:]:
        if name.split(".")[0] in skipped:
            continue
        kind = name.split(".")[1]
        if kind == "data":
            writer.add_data(body)
            continue
        event = json.loads(body)
        if event.get("payload") in skipped:
            continue
        writer.add_event(event["type"], event.get("payload"))
    path = tmp_path / "dropped.bel"
    path.write_bytes(b"".join(writer.chunks))
    with pytest.raises(VotingCheckFailed):
        verify_archive(path)
