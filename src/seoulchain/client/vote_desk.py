"""A credential desk: the credential authority of a poll open to a credential type's holders.

Theory of operation. As in Belenios, the party that knows who may vote (the credential
authority, here the desk) is not the party that records votes (the chain). A holder presents
a verifiable credential of the type the poll names, bare (the desk's clerk has checked the
holder) or in a presentation signed by the holder's DID key over the desk's challenge and
domain; the desk verifies it against the chain (`client.credentials`: anchor, type and
issuer, proof as of issuance, issuer role at issuance, validity, status, and the holder's
proof), checks that the poll is still in setup, and refuses a holder it already served. It
then makes a Belenios credential: the private part is handed to the holder (`deliver`), the
public part waits in a queue. `publish` sends the queued public credentials to
`vote.add_credentials` in shuffled batches, so the chain sees public credentials only, in an
order and at times that do not follow the holders'; the chain in turn caps a poll's
credentials at the live credentials of its type (`vote.add_credentials`).

The desk's register (one JSON file per poll, replaced atomically) holds a random salt, the
served holders as SHA-256(salt || subject DID) in sorted order, the queue in random order,
the count published and the batch being published. It holds no private credential and no
link between a holder and a public credential. The private part is delivered before the
register records the holder: a crash in between leaves a credential whose public part was
never queued, useless, and the holder may come back.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from seoulchain.client.credentials import (
    PRESENTATION_TYPE,
    CredentialRejected,
    CredentialReport,
    PresentationRejected,
    get_result,
    verify_credential,
    verify_presentation,
)
from seoulchain.client.http import NodeClient
from seoulchain.crypto.hashing import sha256
from seoulchain.errors import LocalError, StorageError
from seoulchain.node.signing_store import sync_directory
from seoulchain.services.vote import (
    CREDENTIALS_PER_TX_MAX,
    compute_phase,
    load_election,
)
from seoulchain.voting import compute_public_credential, generate_credential

# A presentation to the desk answers this domain and the poll's challenge (`get_challenge`).
DOMAIN_DEFAULT = "vote-desk"
REGISTER_FORMAT = 1
REGISTER_FILE_MODE = 0o600
SALT_BYTES = 32
# Public credentials published in one batch at least (unless flushing before the poll opens):
# a holder's public credential is then one of at least this many issued in the same window.
BATCH_MIN_DEFAULT = 10
# A register holds about 70 bytes per served holder and 620 more while their public
# credential is queued: a desk serving 300,000 holders between publications stays under.
REGISTER_BYTES_MAX = 256 * 1024 * 1024


class HolderAlreadyServed(CredentialRejected):
    """The desk already gave this credential's subject a voting credential for the poll."""

    check = "desk"


class PollNotIssuable(LocalError):
    """The poll is unknown, not open to a credential type, or no longer in setup."""


@dataclass(frozen=True)
class DeskReceipt:
    """What issuing told the desk: the holder's credential type and the queue's length."""

    credential_type: str
    credential_hash: str
    queued: int


def compute_holder_tag(salt: bytes, subject: str) -> str:
    """Return the register's entry for a holder: SHA-256(salt || subject DID), in hex."""
    return sha256(salt + subject.encode()).hex()


def write_register(path: Path, register: dict[str, Any]) -> None:
    """Replace the register file durably: temp file, fsync, rename, fsync the directory."""
    data = json.dumps(register, sort_keys=True).encode()
    temporary = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                             REGISTER_FILE_MODE)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        sync_directory(path.parent)
    except OSError as exc:
        raise StorageError(f"cannot save the desk register {path}: {exc.strerror}") from exc


def read_register(path: Path) -> dict[str, Any] | None:
    """Return the register in `path` (None if there is none), refusing a damaged one."""
    try:
        if path.stat().st_size > REGISTER_BYTES_MAX:
            raise StorageError(f"the desk register {path} is over {REGISTER_BYTES_MAX} bytes")
        register = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StorageError(f"the desk register {path} is unreadable: {exc}") from exc
    fields = {"format", "poll_id", "election_hash", "salt", "holders", "queue", "published",
              "pending"}
    if not isinstance(register, dict) or set(register) != fields or \
            register["format"] != REGISTER_FORMAT:
        raise StorageError(f"{path} is not a desk register of format {REGISTER_FORMAT}")
    return register


class CredentialDesk:
    """Issue Belenios credentials to verified holders of a poll's credential type."""

    def __init__(self, client: NodeClient, poll_id: str, register_path: Path,
                 domain: str = DOMAIN_DEFAULT):
        self.client = client
        self.poll_id = poll_id
        self.domain = domain
        self.path = register_path
        self.poll = self.read_poll()
        self.register = read_register(register_path) or self.new_register()
        if (self.register["poll_id"], self.register["election_hash"]) != \
                (poll_id, self.poll["election_hash"]):
            raise PollNotIssuable(f"{register_path} is the register of poll "
                                  f"{self.register['poll_id']!r}, not of this {poll_id!r}")

    def new_register(self) -> dict[str, Any]:
        """Return an empty register for the poll, with a fresh random salt."""
        return {"format": REGISTER_FORMAT, "poll_id": self.poll_id,
                "election_hash": self.poll["election_hash"],
                "salt": secrets.token_bytes(SALT_BYTES).hex(), "holders": [], "queue": [],
                "published": 0, "pending": None}

    def read_poll(self) -> dict[str, Any]:
        """Return the poll's record, refusing a poll not open to a credential type."""
        poll = get_result(self.client, "vote", "poll", poll_id=self.poll_id)
        if poll is None:
            raise PollNotIssuable(f"no poll {self.poll_id!r} on this chain")
        if poll["eligibility"]["kind"] != "credential":
            raise PollNotIssuable(f"poll {self.poll_id!r} is open to a list the organiser "
                                  f"keeps, not to a credential type's holders")
        return poll

    def require_setup(self) -> None:
        """Refuse unless the poll is still in setup at the next block."""
        self.poll = self.read_poll()
        height = self.client.get_status()["height"] + 1
        phase = compute_phase(self.poll, height)
        if phase != "setup":
            raise PollNotIssuable(f"poll {self.poll_id!r} is {phase} at height {height}: "
                                  f"credentials are issued only before it opens (at "
                                  f"{self.poll['open_height']})")

    @property
    def credential_type(self) -> str:
        return str(self.poll["eligibility"]["credential_type"])

    def get_challenge(self) -> str:
        """Return the challenge a holder's presentation to this desk signs: the poll's id
        and election hash (a presentation is fresh for minutes, and serves a holder once)."""
        return f"vote-desk:{self.poll_id}:{self.poll['election_hash']}"

    def verify_document(self, document: dict[str, Any], now: datetime) -> CredentialReport:
        """Verify a credential, or a presentation of one signed by its subject over the
        desk's challenge and domain, against the chain; return the credential's report."""
        types = document.get("type") if isinstance(document, dict) else None
        if not isinstance(types, list) or PRESENTATION_TYPE not in types:
            return verify_credential(self.client, document, now=now,
                                     expected_type=self.credential_type)
        presented = document.get("verifiableCredential")
        if not isinstance(presented, list) or len(presented) != 1:
            raise PresentationRejected("a presentation to the desk carries one credential")
        report = verify_presentation(self.client, document, self.get_challenge(),
                                     self.domain, set(), now=now,
                                     expected_type=self.credential_type)
        return report.credentials[0]

    def issue(self, document: dict[str, Any], deliver: Callable[[str], None], *,
              now: datetime) -> DeskReceipt:
        """Verify a holder's credential (or presentation), refuse a holder served before,
        hand the holder a private Belenios credential through `deliver` and queue its
        public part."""
        self.require_setup()
        report = self.verify_document(document, now)
        if not isinstance(report.subject, str) or not report.subject:
            raise CredentialRejected("the credential names no subject to register")
        tag = compute_holder_tag(bytes.fromhex(self.register["salt"]), report.subject)
        if tag in self.register["holders"]:
            raise HolderAlreadyServed(f"this desk already gave {report.subject} a voting "
                                      f"credential for poll {self.poll_id!r}")
        election = load_election(self.poll["election"])
        private = generate_credential()
        public = str(compute_public_credential(election.group, election.uuid, private))
        deliver(private)
        queue = self.register["queue"]
        queue.insert(secrets.randbelow(len(queue) + 1), public)
        self.register["holders"] = sorted([*self.register["holders"], tag])
        write_register(self.path, self.register)
        return DeskReceipt(report.type, report.credential_hash, len(queue))

    def publish(self, submit: Callable[[list[str]], Any], *,
                batch_min: int = BATCH_MIN_DEFAULT, flush: bool = False) -> int:
        """Send queued public credentials to the chain in shuffled batches of batch_min to
        CREDENTIALS_PER_TX_MAX (with `flush`, the last one smaller); return how many."""
        if not 1 <= batch_min <= CREDENTIALS_PER_TX_MAX:
            raise LocalError(f"a batch is 1 to {CREDENTIALS_PER_TX_MAX} credentials")
        self.settle_pending()
        self.require_setup()
        sent = 0
        queue = self.register["queue"]
        while len(queue) >= batch_min or (flush and queue):
            batch = queue[:CREDENTIALS_PER_TX_MAX]
            secrets.SystemRandom().shuffle(batch)
            self.register["queue"] = queue = queue[len(batch):]
            self.register["pending"] = {"start": self.poll["credentials_count"] + sent,
                                        "batch": batch}
            write_register(self.path, self.register)
            submit(batch)
            self.settle_pending()
            sent += len(batch)
        return sent

    def settle_pending(self) -> None:
        """Settle the batch being published: counted if the chain has it, queued again if
        not (a batch is one transaction, so it is all there or not at all)."""
        pending = self.register["pending"]
        if pending is None:
            return
        published = self.find_published(pending["start"], set(pending["batch"]))
        if published:
            self.register["published"] += len(pending["batch"])
        else:
            self.register["queue"] = [*pending["batch"], *self.register["queue"]]
        self.register["pending"] = None
        write_register(self.path, self.register)

    def find_published(self, start: int, batch: set[str]) -> bool:
        """Return True if the chain lists the batch's credentials from index `start` on."""
        total = get_result(self.client, "vote", "poll", poll_id=self.poll_id)[
            "credentials_count"]
        for index in range(start, total, CREDENTIALS_PER_TX_MAX):
            page = get_result(self.client, "vote", "credentials", poll_id=self.poll_id,
                              start=index, limit=CREDENTIALS_PER_TX_MAX)
            if batch & set(page):
                return True
        return False

    def describe(self) -> dict[str, Any]:
        """Return the desk's counts: holders served, queued and published credentials."""
        return {"poll_id": self.poll_id, "credential_type": self.credential_type,
                "challenge": self.get_challenge(), "domain": self.domain,
                "holders": len(self.register["holders"]),
                "queued": len(self.register["queue"]),
                "pending": len((self.register["pending"] or {}).get("batch", [])),
                "published": self.register["published"]}
