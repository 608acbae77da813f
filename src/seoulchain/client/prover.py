"""Where proof bundles get their pieces: a node's store, or a node's HTTP API.

Theory of operation: `light/bundle.py` builds a bundle from any `ProofSource`. Two live
here. `StoreProofSource` reads a node's SQLite store directly — the API serves from it, and
`seoulchain prove --home DIR` uses it with no running node (SQLite WAL lets it read beside
a running one). `HttpProofSource` asks a node's API for the same pieces. Neither is
trusted: the bundle builder verifies everything it is given before handing a bundle out.

Light blocks need the validator set of each height, which the store does not keep by
height (the engine keeps only the sets around the tip). `ValidatorHistory` rebuilds it the
way the engine decides it: the genesis set signs heights 1 and 2; the successful
`validators.set_validator` transactions of block h give the set of h + 2. It checks each
rebuilt set against the `validators_hash` and `next_validators_hash` of the headers, and
scans the chain once, incrementally, remembering only the heights where the set changes.
"""

from __future__ import annotations

import bisect
from typing import Any

from seoulchain.errors import DecodeError, LocalError, RemoteError, StorageError
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.store import BlockStore
from seoulchain.ledger.types import Block, BlockHeader, Transaction, Validator, ValidatorSet
from seoulchain.light.bundle import (
    TxProof,
    light_block_from_json,
    state_proof_from_json,
    tx_proof_from_json,
)
from seoulchain.light.lightclient import LightBlock
from seoulchain.proofs import StateProof
from seoulchain.proofs.logtree import MemoryLog, compute_inclusion_proof
from seoulchain.proofs.smt import SparseMerkleTree, compute_value_hash

VALIDATORS_SERVICE = "validators"
SET_VALIDATOR_METHOD = "set_validator"
# The service name as it appears inside an encoded transaction (CBOR text of 10 bytes):
# a cheap filter before decoding a transaction to look for validator changes.
VALIDATORS_SERVICE_CBOR = b"\x6avalidators"
RESULT_OK = 0


class ValidatorHistory:
    """The validator set of every height of one store's chain, rebuilt from its blocks."""

    def __init__(self, genesis: Genesis, store: BlockStore):
        self.genesis = genesis
        self.store = store
        # Heights where the set changes, ascending, and the set from each such height on.
        self.change_heights: list[int] = [1]
        self.change_sets: list[ValidatorSet] = [genesis.validators]
        # Blocks 1 .. scanned_height are scanned; the sets of heights up to + 2 are known.
        self.scanned_height = 0

    def get(self, height: int) -> ValidatorSet:
        """Return the set that signs `height`."""
        if height < 1:
            raise LocalError(f"no validator set for height {height}")
        if height > self.scanned_height + 2:
            self.scan_to(height - 2)
        if height > self.scanned_height + 2:
            raise LocalError(f"height {height} is beyond the chain")
        index = bisect.bisect_right(self.change_heights, height) - 1
        return self.change_sets[index]

    def scan_to(self, height: int) -> None:
        """Scan blocks up to `height` (or the tip), recording the sets they decide."""
        for number, data, _ in self.store.iter_blocks(self.scanned_height + 1):
            if number > height:
                break
            block = Block.decode(data)
            self.check_header(block.header)
            changes = self.collect_changes(block)
            if changes:
                self.record(number + 2, apply_changes(self.get(number + 1), changes))
            self.scanned_height = number

    def check_header(self, header: BlockHeader) -> None:
        for height, expected in ((header.height, header.validators_hash),
                                 (header.height + 1, header.next_validators_hash)):
            if self.get_known(height).hash() != expected:
                raise StorageError(f"the validator set rebuilt for height {height} does not "
                                   f"match header {header.height}")

    def get_known(self, height: int) -> ValidatorSet:
        index = bisect.bisect_right(self.change_heights, height) - 1
        return self.change_sets[index]

    def collect_changes(self, block: Block) -> dict[bytes, tuple[int, str]]:
        """Return public key -> (power, name) of the block's successful set changes."""
        changes: dict[bytes, tuple[int, str]] = {}
        for raw in block.txs:
            if VALIDATORS_SERVICE_CBOR not in raw:
                continue
            tx = Transaction.decode(raw)
            if (tx.service, tx.method) != (VALIDATORS_SERVICE, SET_VALIDATOR_METHOD):
                continue
            record = self.store.get_tx(tx.hash())
            if record is None or record.code != RESULT_OK:
                continue
            changes[tx.args["public_key"]] = (tx.args["power"], tx.args.get("name", ""))
        return changes

    def record(self, height: int, validators: ValidatorSet) -> None:
        if validators != self.change_sets[-1]:
            self.change_heights.append(height)
            self.change_sets.append(validators)


def apply_changes(validators: ValidatorSet,
                  changes: dict[bytes, tuple[int, str]]) -> ValidatorSet:
    """Return `validators` with each key's new power (0 removes it), as the engine does."""
    members = {validator.public_key: validator for validator in validators.validators}
    for public_key, (power, name) in changes.items():
        if power == 0:
            members.pop(public_key, None)
        else:
            members[public_key] = Validator(public_key, power, name)
    return ValidatorSet.of(list(members.values()))


class StoreProofSource:
    """Serves light blocks and proofs from one node's store."""

    def __init__(self, genesis: Genesis, store: BlockStore):
        self.genesis = genesis
        self.store = store
        self.validators = ValidatorHistory(genesis, store)
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
        return LightBlock(block.header, commit, self.validators.get(height))

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
        db = self.store.db
        snapshot = not db.in_transaction
        if snapshot:
            db.execute("BEGIN")
        try:
            tip = self.store.get_tip()
            if tip is None:
                raise LocalError("no block has been committed yet")
            value = self.store.get_state(full_key)
            value_hash, proof = self.tree.get_with_proof(tip.height, full_key)
        finally:
            if snapshot:
                db.execute("COMMIT")
        if value_hash != (None if value is None else compute_value_hash(value)):
            raise StorageError(f"state and state tree disagree at key {full_key!r}")
        return StateProof(tip.height, full_key, value, proof.encode())


class HttpProofSource:
    """Asks a node's API for light blocks and proofs (client: `NodeClient`)."""

    def __init__(self, client: Any):
        self.client = client

    def get_light_block(self, height: int) -> LightBlock:
        body = self.client.get_light_block(height)
        try:
            return light_block_from_json(body.get("light_block") if isinstance(body, dict)
                                         else None)
        except DecodeError as exc:
            raise RemoteError(f"the node sent a malformed light block {height}: {exc}") from exc

    def get_tx_proof(self, tx_hash: bytes) -> TxProof:
        body = self.client.get_tx_proof(tx_hash)
        try:
            return tx_proof_from_json(body["proof"], require_height(body))
        except (DecodeError, KeyError, TypeError) as exc:
            raise RemoteError(f"the node sent a malformed tx proof: {exc}") from exc

    def get_state_proof(self, namespace: str, key: bytes) -> StateProof:
        body = self.client.get_state_proof(namespace, key)
        try:
            return state_proof_from_json(body["proof"], require_height(body))
        except (DecodeError, KeyError, TypeError) as exc:
            raise RemoteError(f"the node sent a malformed state proof: {exc}") from exc


def require_height(body: Any) -> int:
    height = body.get("height") if isinstance(body, dict) else None
    if type(height) is not int or height < 1:
        raise DecodeError("the answer carries no height")
    return height
