"""The public election archive `UUID.bel` that belenios-tool 2.0 reads and verifies.

The archive is an old-style (V7) tar written append-only, as belenios-tool's own writer
does (src/lib/core/archive.ml): a `BELENIOS` header file {"version":1,"timestamp":"…"},
then data files named `SHA256-hex.data.json` and events named `SHA256-hex.event.json`.
Events form a hash chain (`parent` is the previous event's hash, `height` counts from 0)
and refer to their data by hash: Setup (setup_data → election, trustees, credentials),
one Ballot per ballot, EndBallots, EncryptedTally (sized tally → tally), one
PartialDecryption per trustee (owned → partial decryption), Result. Each tar header has
mode 0000644, uid and gid 0, the archive's timestamp as mtime and type '0'; there is no
end-of-archive padding, so the tool can keep appending. Tar headers are written here
because Python's tarfile writes only ustar/GNU/PAX headers; reading uses tarfile.

`export_archive` writes an election run by this library; `verify_archive` re-checks an
archive from anywhere (belenios-tool's or ours): every hash, link and event in order, every
ballot, the tally, every partial decryption and the result, for "Single" (n-of-n) and
"Pedersen" (t-of-n) trustees alike (an owner number names each decrypting trustee).
"""

from __future__ import annotations

import hashlib
import tarfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seoulchain.voting.ballot import VerifiedBallot, verify_ballot
from seoulchain.voting.credential import (
    PublicCredentials,
    dump_public_credentials,
    parse_public_credentials,
)
from seoulchain.voting.election import Election, parse_election
from seoulchain.voting.errors import ArchiveMismatch, MalformedVotingData, VotingUsageError
from seoulchain.voting.jsonform import dump_json, load_json, require_dict
from seoulchain.voting.tally import (
    EncryptedTally,
    Matrix,
    PartialDecryption,
    compute_encrypted_tally,
    dump_result,
    parse_partial_decryption,
    parse_result,
    sized_tally_json,
    verify_items_result,
    verify_partial_decryption,
)
from seoulchain.voting.threshold import (
    TrusteeItem,
    compute_election_key,
    dump_trustee_items,
    list_decryption_keys,
    parse_trustee_items,
)

TAR_BLOCK_BYTES = 512  # POSIX tar block
ARCHIVE_VERSION = 1  # belenios archive header version
ARCHIVE_ENTRIES_MAX = 4_000_000  # our bound on files read from one archive


@dataclass
class ArchiveWriter:
    """Appends V7 tar records and chained events to an in-memory archive."""

    timestamp: int
    chunks: list[bytes] = field(default_factory=list)
    last_event: str | None = None
    height: int = 0

    def write_file(self, name: str, body: bytes) -> None:
        """Append one tar header and its body padded to whole blocks."""
        header = bytearray(TAR_BLOCK_BYTES)
        for offset, text in ((0, name), (100, "0000644"), (108, "0000000"), (116, "0000000"),
                             (124, f"{len(body):011o}"), (136, f"{self.timestamp:011o}"),
                             (148, " " * 8), (156, "0")):
            header[offset:offset + len(text)] = text.encode()
        header[148:156] = f"{sum(header):06o}\0 ".encode()
        padding = -len(body) % TAR_BLOCK_BYTES
        self.chunks += [bytes(header), body, bytes(padding)]

    def add_data(self, body: bytes) -> str:
        """Append a data file and return its hash."""
        digest = hashlib.sha256(body).hexdigest()
        self.write_file(f"{digest}.data.json", body)
        return digest

    def add_event(self, event_type: str, payload: str | None = None) -> None:
        """Append the next event of the chain."""
        event: dict[str, Any] = {} if self.last_event is None else {"parent": self.last_event}
        event.update(height=self.height, type=event_type)
        if payload is not None:
            event["payload"] = payload
        body = dump_json(event).encode()
        self.last_event = hashlib.sha256(body).hexdigest()
        self.write_file(f"{self.last_event}.event.json", body)
        self.height += 1


def export_archive(directory: Path, *, election: Election, trustees: Sequence[TrusteeItem],
                   public_credentials: PublicCredentials, ballots: Sequence[bytes],
                   tally: EncryptedTally | None = None,
                   partial_decryptions: Sequence[PartialDecryption]
                   | Mapping[int, PartialDecryption] = (),
                   result: Matrix | None = None, timestamp: int | None = None) -> Path:
    """Write DIRECTORY/UUID.bel for the election's stages so far; return its path.

    Partial decryptions are in trustee order, or keyed by owner number (threshold trustees).
    """
    writer = ArchiveWriter(int(time.time()) if timestamp is None else timestamp)
    writer.write_file("BELENIOS", dump_json({"version": ARCHIVE_VERSION,
                                             "timestamp": str(writer.timestamp)}).encode())
    setup = {"election": writer.add_data(election.raw),
             "trustees": writer.add_data(dump_trustee_items(trustees)),
             "credentials": writer.add_data(dump_public_credentials(public_credentials))}
    writer.add_event("Setup", writer.add_data(dump_json(setup).encode()))
    for ballot in ballots:
        writer.add_event("Ballot", writer.add_data(ballot))
    if tally is not None:
        writer.add_event("EndBallots")
        tally_hash = writer.add_data(tally.to_json())
        writer.add_event("EncryptedTally",
                         writer.add_data(dump_json(sized_tally_json(tally, tally_hash)).encode()))
        owned = (partial_decryptions if isinstance(partial_decryptions, Mapping)
                 else dict(enumerate(partial_decryptions, start=1)))
        for owner, partial in owned.items():
            body = {"owner": owner, "payload": writer.add_data(partial.to_json())}
            writer.add_event("PartialDecryption", writer.add_data(dump_json(body).encode()))
        if result is not None:
            writer.add_event("Result", writer.add_data(dump_result(result)))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{election.uuid}.bel"
    path.write_bytes(b"".join(writer.chunks))
    return path


@dataclass(frozen=True)
class ArchiveReport:
    """What `verify_archive` checked: the election, its accepted ballots, its result."""

    election: Election
    ballots: tuple[VerifiedBallot, ...]
    tally: EncryptedTally | None
    result: Matrix | None


def read_entries(path: Path) -> list[tuple[str, bytes]]:
    """Return the archive's (name, body) files in order, bounded in count."""
    try:
        with tarfile.open(path, "r:") as archive:
            entries = []
            for member in archive:
                if len(entries) >= ARCHIVE_ENTRIES_MAX or not member.isfile():
                    raise ArchiveMismatch("too many or non-regular files in the archive")
                handle = archive.extractfile(member)
                entries.append((member.name, handle.read() if handle else b""))
            return entries
    except (tarfile.TarError, OSError) as exc:
        raise MalformedVotingData(f"not a readable archive: {exc}") from None


@dataclass
class ArchiveReader:
    """Walks the event chain of an archive, resolving payloads by hash."""

    data: dict[str, bytes] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    def load(self, entries: list[tuple[str, bytes]]) -> None:
        """Index data by hash and check the event chain's links and heights."""
        if not entries or entries[0][0] != "BELENIOS":
            raise ArchiveMismatch("the archive does not start with its BELENIOS header")
        header = require_dict(load_json(entries[0][1], "archive header"),
                              {"version", "timestamp"}, "archive header")
        if header["version"] != ARCHIVE_VERSION:
            raise ArchiveMismatch("unsupported archive version")
        parent = None
        for name, body in entries[1:]:
            digest, _, kind = name.partition(".")
            if hashlib.sha256(body).hexdigest() != digest or kind not in (
                    "data.json", "event.json"):
                raise ArchiveMismatch(f"file {name} is not named by the hash of its contents")
            if kind == "data.json":
                self.data[digest] = body
                continue
            event = require_dict(load_json(body, "event"), {"height", "type"}, "event",
                                 frozenset({"parent", "payload"}))
            if event.get("parent") != parent or event["height"] != len(self.events):
                raise ArchiveMismatch(f"event {name} does not follow its predecessor")
            if "payload" in event and event["payload"] not in self.data:
                raise ArchiveMismatch(f"event {name} refers to missing data")
            self.events.append(event)
            parent = digest

    def payload(self, event: dict[str, Any]) -> bytes:
        """Return the data an event refers to."""
        if "payload" not in event:
            raise ArchiveMismatch(f"{event['type']} event without payload")
        return self.data[event["payload"]]

    def referenced(self, body: bytes, key: str) -> bytes:
        """Return the data that JSON `body` refers to by hash in field `key`."""
        target = load_json(body, "archive object").get(key)
        if target not in self.data:
            raise ArchiveMismatch(f"{key} refers to missing data")
        return self.data[target]


def verify_archive(path: Path) -> ArchiveReport:
    """Check an archive end to end; raise the typed error of the first failed check."""
    reader = ArchiveReader()
    reader.load(read_entries(path))
    events = reader.events
    if not events or events[0]["type"] != "Setup":
        raise ArchiveMismatch("the first event is not Setup")
    setup = reader.payload(events[0])
    election = parse_election(reader.referenced(setup, "election"))
    trustees = parse_trustee_items(election.group, reader.referenced(setup, "trustees"))
    if compute_election_key(election.group, trustees) != election.public_key:
        raise ArchiveMismatch("the election key is not the one the trustees make")
    credentials = parse_public_credentials(election.group, reader.referenced(setup, "credentials"))
    position = 1
    ballots = []
    while position < len(events) and events[position]["type"] == "Ballot":
        ballots.append(verify_ballot(election, reader.payload(events[position]), credentials))
        position += 1
    rest = [event["type"] for event in events[position:]]
    if not rest:
        return ArchiveReport(election, tuple(ballots), None, None)
    if rest[:2] != ["EndBallots", "EncryptedTally"]:
        raise ArchiveMismatch(f"unexpected events after the ballots: {rest[:2]}")
    sized = reader.payload(events[position + 1])
    tally = compute_encrypted_tally(election, ballots)
    if (reader.referenced(sized, "encrypted_tally") != tally.to_json()
            or sized != dump_json(sized_tally_json(tally, hashlib.sha256(
                tally.to_json()).hexdigest())).encode()):
        raise ArchiveMismatch("the encrypted tally is not the product of the ballots")
    return check_decryption(reader, election, trustees, tally, events[position + 2:], ballots)


def check_decryption(reader: ArchiveReader, election: Election,
                     trustees: list[TrusteeItem], tally: EncryptedTally,
                     events: list[dict[str, Any]], ballots: list[VerifiedBallot],
                     ) -> ArchiveReport:
    """Check the PartialDecryption events (one per owner) and the Result event."""
    keys = list_decryption_keys(trustees)
    partials: dict[int, PartialDecryption] = {}
    for event in events:
        if event["type"] != "PartialDecryption":
            break
        owned = require_dict(load_json(reader.payload(event), "owned"), {"owner", "payload"},
                             "owned partial decryption")
        owner = owned["owner"]
        if type(owner) is not int or not 1 <= owner <= len(keys) or owner in partials:
            raise ArchiveMismatch(f"partial decryption owner {owner!r} is not a new trustee")
        partial = parse_partial_decryption(election, reader.referenced(
            reader.payload(event), "payload"))
        verify_partial_decryption(election, tally, keys[owner - 1], partial)
        partials[owner] = partial
    remaining = [event["type"] for event in events[len(partials):]]
    if not remaining:
        return ArchiveReport(election, tuple(ballots), tally, None)
    if remaining != ["Result"]:
        raise ArchiveMismatch(f"events {remaining} follow {len(partials)} of "
                              f"{len(keys)} partial decryptions")
    result = parse_result(election, reader.payload(events[len(partials)]))
    try:
        verify_items_result(election, tally, trustees, partials, result)
    except VotingUsageError as exc:
        raise ArchiveMismatch(f"the result comes before enough partial decryptions: "
                              f"{exc}") from None
    return ArchiveReport(election, tuple(ballots), tally, result)
