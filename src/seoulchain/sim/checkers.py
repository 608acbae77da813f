"""The simulator's checkers: agreement, validity, integrity and identical state, over honest stores.

Theory of operation: checkers read what honest nodes durably committed — their block
stores, which survive crashes — and what the cluster knows from outside (the transactions
clients submitted, the genesis). They never trust a node's own account: commits are
verified again, chains are re-linked, state tables are hashed. Byzantine nodes (twins
included) are not checked; what they store is their business.

- agreement: no two honest nodes committed different blocks at one height;
- validity: every committed block links to its predecessor and carries a commit that
  verifies (> 2/3 of the voting power of the validator set its header names: genesis's,
  or one an honest engine adopted); every committed transaction is one a client (or the
  admin) submitted, and it executed successfully;
- integrity: no transaction is committed twice in one chain;
- state: at each height every honest node computed the same state root (the one in the
  header), and nodes at the same tip hold byte-identical state tables.

Liveness is checked by the campaign (`seoulchain.sim.campaign`), which owns the time bound.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from seoulchain.consensus.messages import verify_commit
from seoulchain.crypto import sha256
from seoulchain.errors import DecodeError, VerificationError
from seoulchain.execution.results import ResultCode
from seoulchain.ledger.types import Block, Commit, ValidatorSet

if TYPE_CHECKING:
    from seoulchain.sim.cluster import Cluster, SimNode

# Violations reported per checker; the first few tell the story, the rest is noise.
VIOLATIONS_PER_CHECKER_MAX = 5


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken property: which checker found it and where."""

    checker: str
    message: str

    def __str__(self) -> str:
        return f"{self.checker}: {self.message}"


@dataclass(frozen=True, slots=True)
class StoredBlock:
    """A block as an honest node's store holds it, with its commit."""

    height: int
    block: Block
    commit: Commit | None


def read_chain(node: SimNode) -> list[StoredBlock]:
    """Return every block in `node`'s store, in height order."""
    chain = []
    for height, block_bytes, commit_bytes in node.store.iter_blocks():
        commit = None if commit_bytes is None else Commit.decode(commit_bytes)
        chain.append(StoredBlock(height, Block.decode(block_bytes), commit))
    return chain


def check_cluster(cluster: Cluster) -> list[Violation]:
    """Run every checker over the cluster's honest nodes; return what they found."""
    honest = cluster.honest_nodes
    chains = {node.index: read_chain(node) for node in honest}
    return [
        *cap(check_agreement(chains)),
        *cap(check_validity(cluster, chains)),
        *cap(check_integrity(chains)),
        *cap(check_state(honest, chains)),
    ]


def cap(violations: list[Violation]) -> list[Violation]:
    return violations[:VIOLATIONS_PER_CHECKER_MAX]


def check_agreement(chains: dict[int, list[StoredBlock]]) -> list[Violation]:
    """Agreement: at each height, every honest node committed the same block id."""
    decided: dict[int, tuple[bytes, int]] = {}
    violations = []
    for index, chain in chains.items():
        for stored in chain:
            block_id = stored.block.block_id()
            first = decided.setdefault(stored.height, (block_id, index))
            if first[0] != block_id:
                violations.append(Violation(
                    "agreement", f"height {stored.height}: node {first[1]} committed "
                    f"{first[0].hex()[:16]}, node {index} committed {block_id.hex()[:16]}"))
    return violations


def check_validity(cluster: Cluster, chains: dict[int, list[StoredBlock]]) -> list[Violation]:
    """Validity: linked chains, verifying commits, and only successful client transactions."""
    validator_sets: dict[bytes, ValidatorSet] = cluster.validator_sets
    verified: set[tuple[int, bytes]] = set()
    violations = []
    for index, chain in chains.items():
        previous: StoredBlock | None = None
        for stored in chain:
            violations.extend(check_link(index, previous, stored))
            block_id = stored.block.block_id()
            if (stored.height, block_id) not in verified:
                verified.add((stored.height, block_id))
                violations.extend(check_commit(cluster.chain_id, validator_sets, index, stored))
            violations.extend(check_txs(cluster, index, stored))
            previous = stored
    return violations


def check_link(index: int, previous: StoredBlock | None, stored: StoredBlock) -> list[Violation]:
    """Return a violation unless `stored` follows `previous` (height, block id, commit)."""
    header = stored.block.header
    expected_height = 1 if previous is None else previous.height + 1
    if stored.height != expected_height or header.height != stored.height:
        return [Violation("validity", f"node {index}: height {stored.height} follows "
                          f"{expected_height - 1}")]
    if previous is None:
        return []
    previous_id = previous.block.block_id()
    last_commit = stored.block.last_commit
    if header.prev_block_id != previous_id or last_commit is None or (
            last_commit.block_id != previous_id):
        return [Violation("validity", f"node {index}: block {stored.height} does not link "
                          f"to block {previous.height}")]
    return []


def check_commit(chain_id: str, validator_sets: dict[bytes, ValidatorSet], index: int,
                 stored: StoredBlock) -> list[Violation]:
    """Return a violation unless the stored commit proves the block for its validator set."""
    validator_set = validator_sets.get(stored.block.header.validators_hash)
    if validator_set is None:
        return [Violation("validity", f"node {index}: block {stored.height} names an unknown "
                          "validator set")]
    if stored.commit is None:
        return [Violation("validity", f"node {index}: block {stored.height} has no commit")]
    try:
        verify_commit(chain_id, validator_set, stored.commit, stored.block.block_id(),
                      stored.height)  # type: ignore[arg-type]
    except (VerificationError, DecodeError) as exc:
        return [Violation("validity", f"node {index}: commit of block {stored.height} does "
                          f"not verify: {exc}")]
    return []


def check_txs(cluster: Cluster, index: int, stored: StoredBlock) -> list[Violation]:
    """Return violations for transactions no client submitted or that did not execute."""
    violations = []
    store = cluster.nodes[index].store
    for raw in stored.block.txs:
        tx_hash = sha256(raw)
        if tx_hash not in cluster.submitted:
            violations.append(Violation("validity", f"node {index}: block {stored.height} "
                                        f"carries tx {tx_hash.hex()[:16]} no client submitted"))
            continue
        record = store.get_tx(tx_hash)
        if record is None or record.height != stored.height or record.code != ResultCode.OK:
            violations.append(Violation("validity", f"node {index}: tx {tx_hash.hex()[:16]} in "
                                        f"block {stored.height} is not recorded as successful"))
    return violations


def check_integrity(chains: dict[int, list[StoredBlock]]) -> list[Violation]:
    """Integrity: no transaction appears twice in one honest node's chain."""
    violations = []
    for index, chain in chains.items():
        seen: dict[bytes, int] = {}
        for stored in chain:
            for raw in stored.block.txs:
                tx_hash = sha256(raw)
                if tx_hash in seen:
                    violations.append(Violation(
                        "integrity", f"node {index}: tx {tx_hash.hex()[:16]} committed at "
                        f"heights {seen[tx_hash]} and {stored.height}"))
                seen[tx_hash] = stored.height
    return violations


def check_state(honest: list[SimNode], chains: dict[int, list[StoredBlock]]) -> list[Violation]:
    """State: equal computed roots per height, and equal state tables at equal tips."""
    violations = []
    roots: dict[int, tuple[bytes, int]] = {}
    for node in honest:
        headers = {stored.height: stored.block.header.state_root for stored in chains[node.index]}
        for height, root in sorted(node.state_roots.items()):
            if height in headers and headers[height] != root:
                violations.append(Violation("state", f"node {node.index}: computed state root "
                                            f"at height {height} differs from its header"))
            first = roots.setdefault(height, (root, node.index))
            if first[0] != root:
                violations.append(Violation("state", f"height {height}: node {first[1]} and "
                                            f"node {node.index} computed different state roots"))
    digests: dict[int, tuple[str, int]] = {}
    for node in honest:
        height = len(chains[node.index])
        digest = compute_state_digest(node)
        first_digest = digests.setdefault(height, (digest, node.index))
        if first_digest[0] != digest:
            violations.append(Violation("state", f"height {height}: nodes {first_digest[1]} and "
                                        f"{node.index} hold different state tables"))
    return violations


def compute_state_digest(node: SimNode) -> str:
    """Return a digest of every (key, value) row of the node's state table."""
    digest = hashlib.sha256()
    for key, value in node.store.iter_state():
        digest.update(len(key).to_bytes(4, "big") + key + len(value).to_bytes(4, "big") + value)
    return digest.hexdigest()
