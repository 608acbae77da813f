"""Buffered state views: what a block or a transaction reads and writes before it commits.

Theory of operation: state is a map from namespaced byte keys (`service/...`) to CBOR
bytes. A block executes against an `Overlay` over the committed store; each transaction
gets a child overlay that is merged into the block's only if the transaction succeeds, so a
failing transaction changes nothing. Nothing reaches disk until the block commits, and then
all of the block's writes go in one store transaction. What the header's `state_root`
commits to is the state tree over these keys and values (`proofs/smt.py`), which the
engine updates with each block's writes.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Protocol

from seoulchain.codec import decode, encode
from seoulchain.errors import LocalError

# Keys longer than this are refused; they are namespaced hashes and short names in practice.
KEY_BYTES_MAX = 256
# A single state value; a notary record is a few hundred bytes.
VALUE_BYTES_MAX = 64 * 1024
# Entries the read cache keeps (least recently used evicted first): the hot keys — signers'
# nonces, roles, validator sets — with room to spare. About 400 bytes an entry for notary
# records (key, value, slot): 13 MiB when full.
STATE_CACHE_ENTRIES_MAX = 32_768


class StateReader(Protocol):
    """Anything that can read committed state by key."""

    def get_state(self, key: bytes) -> bytes | None: ...


class StateCache:
    """A bounded read cache of committed state in front of the store.

    Execution reads the same keys again and again (nonces, roles, hot records); the cache is
    updated with each committed block's writes only after the store committed them, so it
    never holds anything the store does not.
    """

    def __init__(self, base: StateReader, entries_max: int = STATE_CACHE_ENTRIES_MAX):
        self.base = base
        self.entries_max = entries_max
        self.entries: OrderedDict[bytes, bytes | None] = OrderedDict()

    def get_state(self, key: bytes) -> bytes | None:
        entries = self.entries
        try:
            value = entries[key]
        except KeyError:
            value = self.base.get_state(key)
            if len(entries) >= self.entries_max:
                entries.popitem(last=False)
            entries[key] = value
            return value
        entries.move_to_end(key)
        return value

    def apply_committed(self, writes: dict[bytes, bytes | None]) -> None:
        """Record writes that the store has durably committed."""
        entries = self.entries
        for key, value in writes.items():
            if key in entries or len(entries) < self.entries_max:
                entries[key] = value


class Overlay:
    """Writes buffered over a reader; `None` marks a deletion."""

    def __init__(self, base: StateReader):
        self.base = base
        self.writes: dict[bytes, bytes | None] = {}

    def get_state(self, key: bytes) -> bytes | None:
        if key in self.writes:
            return self.writes[key]
        return self.base.get_state(key)

    def put(self, key: bytes, value: bytes | None) -> None:
        if len(key) > KEY_BYTES_MAX:
            raise LocalError(f"state key longer than {KEY_BYTES_MAX} bytes")
        if value is not None and len(value) > VALUE_BYTES_MAX:
            raise LocalError(f"state value larger than {VALUE_BYTES_MAX} bytes")
        self.writes[key] = value

    def child(self) -> Overlay:
        return Overlay(self)

    def merge_into(self, parent: Overlay) -> None:
        """Apply this overlay's writes to `parent` (which must be its base)."""
        assert self.base is parent, "an overlay merges only into its own base"
        parent.writes.update(self.writes)


class ServiceState:
    """A service's view of state: its own namespace only, values as CBOR data."""

    def __init__(self, overlay: Overlay | StateReader, namespace: str):
        self.overlay = overlay
        self.prefix = namespace.encode() + b"/"

    def get(self, key: bytes) -> Any | None:
        raw = self.overlay.get_state(self.prefix + key)
        return None if raw is None else decode(raw)

    def has(self, key: bytes) -> bool:
        return self.overlay.get_state(self.prefix + key) is not None

    def set(self, key: bytes, value: Any) -> None:
        if not isinstance(self.overlay, Overlay):
            raise LocalError("this state view is read-only")
        self.overlay.put(self.prefix + key, encode(value))

    def delete(self, key: bytes) -> None:
        if not isinstance(self.overlay, Overlay):
            raise LocalError("this state view is read-only")
        self.overlay.put(self.prefix + key, None)

