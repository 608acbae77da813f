"""The vault's typed errors: what a caller asked for that the vault cannot give, and why."""

from __future__ import annotations

from datetime import UTC, datetime

from seoulchain.errors import LocalError, StorageError


def format_time_ms(time_ms: int) -> str:
    """Return a Unix time in milliseconds as ISO 8601 UTC, to the second."""
    return datetime.fromtimestamp(time_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class UnknownSubject(LocalError):
    """The vault never held a record of this subject."""

    def __init__(self, subject: str):
        super().__init__(f"the vault holds no record of {subject}")
        self.subject = subject


class SubjectErased(LocalError):
    """The subject's records were erased: their key is destroyed, nothing can be read."""

    def __init__(self, subject: str, erased_at_ms: int):
        super().__init__(f"the records of {subject} were erased at "
                         f"{format_time_ms(erased_at_ms)}; nothing of them can be read")
        self.subject = subject
        self.erased_at_ms = erased_at_ms


class SubjectExists(LocalError):
    """`put` was asked for a subject that already has a record (`correct` changes one)."""

    def __init__(self, subject: str):
        super().__init__(f"the vault already holds a record of {subject}; a change is a "
                         f"correction (seoulchain vault correct)")
        self.subject = subject


class InvalidRecord(LocalError):
    """A record is not a JSON object of strings, integers, booleans, null, lists and maps."""


class RecordTooLarge(InvalidRecord):
    """A record's canonical JSON is over the vault's size limit."""


class WrongVaultKey(LocalError):
    """The vault key file does not open this vault (another home's key, or a damaged one)."""


class VaultKeyMissing(LocalError):
    """The vault holds data but its key file is gone: nothing in it can be read."""


class CorruptedRecord(StorageError):
    """A stored row fails authentication or does not match the row it is stored in."""
