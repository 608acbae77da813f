"""The mempool: admitted transactions waiting for a block.

Admission runs the engine's `check_tx` (size, decode, chain, signature — verified once and
cached — nonce window, expiry, route and argument schema). The pool is bounded by count and
by bytes; when full it answers MEMPOOL_FULL instead of growing. After each committed block
the pool drops what was included and rechecks the rest cheaply (nonce and expiry against
the new state, no signature work).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from seoulchain.execution.engine import Engine, TxCheck
from seoulchain.execution.results import ResultCode


@dataclass(slots=True)
class PoolEntry:
    raw: bytes
    signer: bytes
    nonce: int
    expiry_height: int
    sequence: int


class Mempool:
    """Bounded pool of admitted transactions, reaped in arrival order per signer's nonces."""

    def __init__(self, engine: Engine, txs_max: int, bytes_max: int):
        self.engine = engine
        self.txs_max = txs_max
        self.bytes_max = bytes_max
        self.entries: dict[bytes, PoolEntry] = {}
        self.bytes_total = 0
        self.sequence = 0
        # Told the code of each refused transaction (the node's metrics).
        self.on_refused: Callable[[ResultCode], None] | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self.entries

    def add(self, raw: bytes) -> TxCheck:
        """Admit `raw` if it passes the checks and the pool has room."""
        check = self.check_and_add(raw)
        if not check.ok and self.on_refused is not None:
            self.on_refused(check.code)
        return check

    def check_and_add(self, raw: bytes) -> TxCheck:
        """Run the admission checks on `raw` and keep it if they pass and there is room."""
        if len(self.entries) >= self.txs_max or self.bytes_total + len(raw) > self.bytes_max:
            return TxCheck(ResultCode.MEMPOOL_FULL,
                           f"mempool is full ({len(self.entries)} txs, {self.bytes_total} "
                           f"bytes); retry after the next block")
        check = self.engine.check_tx(raw)
        if not check.ok:
            # A committed tx used its signer's nonce in the same store transaction, so it
            # always fails the nonce check: only then is the store asked, for a clearer answer.
            if (check.code == ResultCode.BAD_NONCE and check.hash
                    and self.engine.store.get_tx(check.hash) is not None):
                return TxCheck(ResultCode.DUPLICATE, "transaction is already committed",
                               check.tx, check.hash)
            return check
        assert check.tx is not None
        if check.hash in self.entries:
            return TxCheck(ResultCode.DUPLICATE, "transaction is already in the mempool",
                           check.tx, check.hash)
        self.sequence += 1
        self.entries[check.hash] = PoolEntry(raw, check.tx.signer, check.tx.nonce,
                                             check.tx.expiry_height, self.sequence)
        self.bytes_total += len(raw)
        return check

    def reap(self, txs_max: int, bytes_max: int) -> list[bytes]:
        """Return candidates for the next block: signers in arrival order, each by nonce."""
        first_seen: dict[bytes, int] = {}
        for entry in self.entries.values():
            first_seen.setdefault(entry.signer, entry.sequence)
        ordered = sorted(self.entries.values(),
                         key=lambda entry: (first_seen[entry.signer], entry.nonce))
        chosen: list[bytes] = []
        size = 0
        for entry in ordered:
            if len(chosen) >= txs_max or size + len(entry.raw) > bytes_max:
                break
            chosen.append(entry.raw)
            size += len(entry.raw)
        return chosen

    def update(self, committed_hashes: list[bytes]) -> None:
        """Drop committed txs, then those whose nonce was used or that expired."""
        for tx_hash in committed_hashes:
            self.remove(tx_hash)
        next_height = self.engine.height + 1
        next_nonces: dict[bytes, int] = {}
        for tx_hash, entry in list(self.entries.items()):
            if entry.signer not in next_nonces:
                next_nonces[entry.signer] = self.engine.get_next_nonce(self.engine.state,
                                                                       entry.signer)
            if entry.nonce < next_nonces[entry.signer] or entry.expiry_height < next_height:
                self.remove(tx_hash)

    def remove(self, tx_hash: bytes) -> None:
        entry = self.entries.pop(tx_hash, None)
        if entry is not None:
            self.bytes_total -= len(entry.raw)
