"""Server-side proof assembly: light blocks and proofs read from this node's store.

Theory of operation: `light/bundle.py` builds a bundle from any `ProofSource`.
`StoreProofSource` reads a node's SQLite store directly — the API serves from it, and
`seoulchain prove --home DIR` uses it with no running node (SQLite WAL lets it read beside
a running one). It is not trusted: the bundle builder verifies everything it is given
before handing a bundle out. (`client/prover.py` asks a node's API for the same pieces.)

Light blocks need the validator set of each height: the store keeps it (written with each
block that changes it, `BlockStore.get_validator_set`), and the set read is checked against
the header's `validators_hash` before it is served.
"""

from __future__ import annotations

from seoulchain.errors import LocalError, StorageError
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.store import BlockStore
from seoulchain.ledger.types import Transaction
from seoulchain.light.bundle import TxProof
from seoulchain.light.lightclient import LightBlock
from seoulchain.proofs import StateProof
from seoulchain.proofs.logtree import MemoryLog, compute_inclusion_proof
from seoulchain.proofs.smt import SparseMerkleTree, compute_value_hash


class StoreProofSource:
    """Serves light blocks and proofs from one node's store."""

    def __init__(self, genesis: Genesis, store: BlockStore):
        self.genesis = genesis
        self.store = store
        self.tree = SparseMerkleTree(store.state_tree)

    def get_tip_height(self) -> int:
        tip = self.store.get_tip()
        return 0 if tip is None else tip.height

    def get_light_block(self, height: int) -> LightBlock:
        block = self.store.get_block(height)
        commit = self.store.get_commit(height)
        if block is None or commit is None:
            raise LocalError(f"no committed block at height {height}; the chain is at "
                             f"{self.get_tip_height()}")
        validators = self.store.get_validator_set(height)
        if validators is None or validators.hash() != block.header.validators_hash:
            raise StorageError(f"the stored validator set of height {height} is missing or "
                               "does not match the header's validators_hash")
        return LightBlock(block.header, commit, validators)

    def get_tx_proof(self, tx_hash: bytes) -> TxProof:
        record = self.store.get_tx(tx_hash)
        if record is None:
            raise LocalError(f"transaction {tx_hash.hex()} is not committed")
        block = self.store.get_block(record.height)
        if block is None:
            raise StorageError(f"block {record.height} of a committed transaction is missing")
        header = block.header
        prev = None
        if record.height > 1:
            prev_block = self.store.get_block(record.height - 1)
            if prev_block is None:
                raise StorageError(f"block {record.height - 1} is missing")
            prev = prev_block.header
        log_proof = compute_inclusion_proof(record.log_index, header.log_size,
                                            self.store.read_log_node)
        results = MemoryLog()
        for raw in block.txs:
            other = self.store.get_tx(Transaction.decode(raw).hash())
            if other is None:
                raise StorageError(f"a transaction of block {record.height} is not indexed")
            results.append(other.result)
        if results.root() != header.results_root:
            raise StorageError(f"stored results of block {record.height} do not match its "
                               "results_root")
        raw_tx = block.txs[record.index]
        return TxProof(record.height, raw_tx, record.log_index, tuple(log_proof), prev,
                       record.result, tuple(results.inclusion_proof(record.index)))

    def get_state_proof(self, namespace: str, key: bytes) -> StateProof:
        """Return a key's value and proof at the tip, read in one snapshot of the store."""
        full_key = namespace.encode() + b"/" + key
        with self.store.read_snapshot():
            tip = self.store.get_tip()
            if tip is None:
                raise LocalError("no block has been committed yet")
            value = self.store.get_state(full_key)
            value_hash, proof = self.tree.get_with_proof(tip.height, full_key)
        if value_hash != (None if value is None else compute_value_hash(value)):
            raise StorageError(f"state and state tree disagree at key {full_key!r}")
        return StateProof(tip.height, full_key, value, proof.encode())
