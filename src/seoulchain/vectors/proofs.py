"""Test vectors for light-client and proof-bundle verification (docs/spec/proofs.md §9).

Theory of operation: `MemoryChain` builds a small chain entirely in memory — real headers,
real commits signed by fixed-seed keys, a real RFC 9162 log, a real state tree and results
roots — with any validator-set schedule and any subset of signers per commit. It serves the
pieces of a bundle as a `ProofSource` would, so the bundle builder runs on it exactly as on
a node. Its state holds only what the vectors put there (notary records, issued documents
and one vehicle's history, laid out as those services write them); it does not run the
engine, so its roots are those of this synthetic history, not of any real node.

`build_vectors()` returns valid bundles with the statement each proves and invalid bundles
(each a small mutation of a valid one) with the step that MUST reject it. Keys come from
fixed seeds and Ed25519 signing is deterministic, so the output is the same on every run;
docs/spec/vectors/proofs.json is that output, and a test regenerates it.

Run: `python -m seoulchain.vectors.proofs [output path]` (or scripts/make-vectors).
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seoulchain.codec import decode, encode
from seoulchain.crypto import SigningKey, sha256
from seoulchain.errors import LocalError
from seoulchain.ledger.genesis import Agency, Genesis
from seoulchain.ledger.types import (
    BlockHeader,
    Commit,
    CommitSig,
    Transaction,
    Validator,
    ValidatorSet,
    VoteType,
    compute_vote_sign_bytes,
)
from seoulchain.light.bundle import (
    BundleError,
    Checkpoint,
    TxProof,
    build_document_bundle,
    build_labor_bundle,
    build_state_bundle,
    build_tx_bundle,
    build_vehicle_bundle,
    decode_b64,
    encode_b64,
    render_bundle,
    verify_bundle,
)
from seoulchain.light.lightclient import LightBlock
from seoulchain.proofs import StateProof
from seoulchain.proofs.logtree import MemoryLog, compute_leaf_hash, compute_root
from seoulchain.proofs.smt import MemoryNodeStore, SparseMerkleTree
from seoulchain.services import labor
from seoulchain.services.vehicle import chain_digest
from seoulchain.vectors import render_vectors_file, write_vectors_file

DEFAULT_PATH = Path("docs/spec/vectors/proofs.json")
CHAIN_ID = "seoul-proofs-1"
# 2026-01-01T00:00:00Z in milliseconds since the Unix epoch.
GENESIS_TIME_MS = 1_767_225_600_000
BLOCK_INTERVAL_MS = 1_000
# Key i has seed bytes([0x70 + i]) * 32: validators 0-7, then the issuer.
VALIDATOR_KEYS = 8
ISSUER_INDEX = 8
# The name the genesis gives the issuer's agency, shown in statements.
ISSUER_AGENCY = "mapo-gu"
# The vectors' vehicle: a Korean VIN (no check digit) and the owner, key 9.
VIN = "KMHEC41DBFA123456"
OWNER_INDEX = 9
OTHER_VIN = "KMHEC41DBFA654321"
# The vectors' labor contracts: the issuer's agency employs worker key 10, and key 11 on a
# contract of its own; key 12 is party to none.
WORKER_INDEX, OTHER_WORKER_INDEX, NO_PARTY_INDEX = 10, 11, 12


def make_key(index: int) -> SigningKey:
    """Return vector key `index` (fixed seed)."""
    return SigningKey(bytes([0x70 + index]) * 32)


def make_validator_set(indexes: list[int], power: int = 10) -> ValidatorSet:
    return ValidatorSet.of([Validator(make_key(index).public_key, power, f"v{index}")
                            for index in indexes])


def sign_commit(chain_id: str, keys: list[SigningKey], height: int, block_id: bytes,
                round_: int = 0) -> Commit:
    """Return the commit of `block_id` signed by `keys`, in public-key order."""
    sign_bytes = compute_vote_sign_bytes(chain_id, VoteType.PRECOMMIT, height, round_, block_id)
    signatures = tuple(CommitSig(key.public_key, key.sign(sign_bytes))
                       for key in sorted(keys, key=lambda key: key.public_key))
    return Commit(height, round_, block_id, signatures)


class MemoryChain:
    """An in-memory chain with a validator-set schedule; serves light blocks and proofs."""

    def __init__(self, genesis: Genesis, keys: list[SigningKey]):
        self.genesis = genesis
        self.keys = {key.public_key: key for key in keys}
        self.log = MemoryLog()
        self.tree = SparseMerkleTree(MemoryNodeStore())
        self.tree_store = self.tree.store
        self.state: dict[bytes, bytes] = {}
        self.blocks: list[LightBlock] = []
        self.txs: dict[bytes, tuple[int, int, bytes]] = {}   # hash -> (height, log index, raw)
        self.results: dict[int, list[bytes]] = {}
        # The set of each height; a set scheduled in block h signs from h + 2.
        self.sets: dict[int, ValidatorSet] = {1: genesis.validators, 2: genesis.validators}
        self.store_tree_version(0, {})

    def store_tree_version(self, version: int, writes: dict[bytes, bytes | None]) -> bytes:
        batch = self.tree.apply_batch(version, writes)
        self.tree_store.write_batch(batch)
        return batch.root

    @property
    def height(self) -> int:
        return len(self.blocks)

    def add_block(self, txs: list[tuple[bytes, bytes]] = (),  # type: ignore[assignment]
                  writes: dict[bytes, bytes | None] | None = None,
                  next_set: ValidatorSet | None = None,
                  signers: list[bytes] | None = None) -> LightBlock:
        """Commit a block of (raw tx, encoded result) pairs and state writes.

        `next_set` becomes the set of height h + 2; `signers` (public keys) sign the commit,
        by default every member of the height's set.
        """
        height = self.height + 1
        self.sets[height + 2] = next_set or self.sets[height + 1]
        for raw, _ in txs:
            self.txs[sha256(raw)] = (height, self.log.size, raw)
            self.log.append(raw)
        self.results[height] = [result for _, result in txs]
        writes = writes or {}
        for key, value in writes.items():
            if value is None:
                self.state.pop(key, None)
            else:
                self.state[key] = value
        state_root = self.store_tree_version(height, writes)
        previous = self.blocks[-1] if self.blocks else None
        validators = self.sets[height]
        header = BlockHeader(
            chain_id=self.genesis.chain_id, height=height,
            time_ms=self.genesis.genesis_time_ms + height * BLOCK_INTERVAL_MS,
            prev_block_id=b"" if previous is None else previous.block_id(),
            tx_root=compute_root([compute_leaf_hash(raw) for raw, _ in txs]),
            log_root=self.log.root(), log_size=self.log.size, state_root=state_root,
            results_root=compute_root([compute_leaf_hash(result) for _, result in txs]),
            evidence_root=compute_root([]), validators_hash=validators.hash(),
            next_validators_hash=self.sets[height + 1].hash(),
            proposer=validators.validators[0].public_key,
            last_commit_hash=b"" if previous is None else previous.commit.hash())
        chosen = signers if signers is not None else [
            validator.public_key for validator in validators.validators]
        commit = sign_commit(self.genesis.chain_id, [self.keys[key] for key in chosen], height,
                             header.block_id())
        block = LightBlock(header, commit, validators)
        self.blocks.append(block)
        return block

    # ProofSource ------------------------------------------------------------------

    def get_light_block(self, height: int) -> LightBlock:
        if not 1 <= height <= self.height:
            raise LocalError(f"no block at height {height}")
        return self.blocks[height - 1]

    def get_tx_proof(self, tx_hash: bytes) -> TxProof:
        height, log_index, raw = self.txs[tx_hash]
        header = self.blocks[height - 1].header
        prev = None if height == 1 else self.blocks[height - 2].header
        start = 0 if prev is None else prev.log_size
        results = MemoryLog()
        for result in self.results[height]:
            results.append(result)
        position = log_index - start
        return TxProof(height, raw, log_index,
                       tuple(self.log.inclusion_proof(log_index, header.log_size)), prev,
                       self.results[height][position],
                       tuple(results.inclusion_proof(position)))

    def get_state_proof(self, namespace: str, key: bytes) -> StateProof:
        full_key = namespace.encode() + b"/" + key
        _, proof = self.tree.get_with_proof(self.height, full_key)
        return StateProof(self.height, full_key, self.state.get(full_key), proof.encode())


# --------------------------------------------------------------------------- the story


def make_genesis() -> Genesis:
    """Return the vectors' genesis: set A, and the issuer as the agency `ISSUER_AGENCY`."""
    issuer = make_key(ISSUER_INDEX)
    return Genesis(CHAIN_ID, GENESIS_TIME_MS, make_validator_set([0, 1, 2, 3]),
                   {"notary.issuer": (issuer.public_key,)},
                   (Agency(ISSUER_AGENCY, issuer.public_key),), threshold=1)


def make_anchor(nonce: int, doc_hash: bytes, height: int, supersedes: bytes | None = None,
                reason: str = "") -> tuple[Transaction, bytes, dict[str, Any]]:
    """Return a signed notary tx, its OK result and the record it writes."""
    issuer = make_key(ISSUER_INDEX)
    if supersedes is None:
        method, args = "anchor", {"doc_hash": doc_hash, "kind": "permit"}
    else:
        method, args = "supersede", {"old_hash": supersedes, "new_hash": doc_hash,
                                     "reason": reason}
    tx = Transaction.create(issuer, chain_id=CHAIN_ID, nonce=nonce, expiry_height=1000,
                            service="notary", method=method, args=args)
    result = encode([0, "", [["notary.anchored", {"doc_hash": doc_hash,
                                                  "issuer": issuer.public_key}]]])
    record = {"issuer": issuer.public_key, "kind": "permit", "metadata": {}, "height": height,
              "time_ms": GENESIS_TIME_MS + height * BLOCK_INTERVAL_MS, "tx": tx.hash(),
              "supersedes": supersedes, "superseded_by": None, "superseded_height": None,
              "superseded_reason": None}
    return tx, result, record


def doc_key(doc_hash: bytes, service: str = "notary") -> bytes:
    return service.encode() + b"/doc/" + doc_hash


def make_issued_document(doc_hash: bytes, height: int, valid_until_ms: int | None
                         ) -> dict[str, Any]:
    """Return an issued document's record as the document service writes it (no tx)."""
    return {"issuer": make_key(ISSUER_INDEX).public_key, "kind": "business licence",
            "metadata": {}, "height": height,
            "time_ms": GENESIS_TIME_MS + height * BLOCK_INTERVAL_MS,
            "tx": sha256(b"issue " + doc_hash), "supersedes": None, "superseded_by": None,
            "superseded_height": None, "superseded_reason": None,
            "valid_from_ms": GENESIS_TIME_MS + height * BLOCK_INTERVAL_MS,
            "valid_until_ms": valid_until_ms, "revoked_height": None,
            "revoked_time_ms": None, "revoked_reason": None}


class VehicleStory:
    """One vehicle's record and history entries, written as the vehicle service writes them."""

    def __init__(self) -> None:
        owner = make_key(OWNER_INDEX).public_key
        self.record: dict[str, Any] = {
            "vin": VIN, "model": "Hyundai Sonata 2015", "owner": owner,
            "registrar": make_key(ISSUER_INDEX).public_key, "registered_height": 1,
            "status": "active", "odometer_km": 12, "meter_replacements": 0, "offer": None,
            "listing": None, "entries": 0, "history_digest": bytes(32)}

    def append(self, height: int, kind: str, **fields: Any) -> dict[bytes, bytes]:
        """Return the state writes of one more history entry and the record."""
        seq = self.record["entries"] + 1
        entry = {"seq": seq, "kind": kind, "height": height,
                 "time_ms": GENESIS_TIME_MS + height * BLOCK_INTERVAL_MS,
                 "tx": sha256(f"vehicle tx {seq}".encode()),
                 "signer": make_key(ISSUER_INDEX).public_key, **fields}
        self.record.update(entries=seq,
                           history_digest=chain_digest(self.record["history_digest"], entry))
        if "odometer_km" in fields and fields["odometer_km"] is not None:
            self.record["odometer_km"] = fields["odometer_km"]
        prefix = b"vehicle/vin/" + VIN.encode()
        return {prefix + b"/" + str(seq).zfill(8).encode(): encode(entry),
                prefix: encode(self.record)}


class LaborStory:
    """Labor contracts, their entries and the parties' lists, as the labor service writes
    them (1.1.0, with digests)."""

    def __init__(self) -> None:
        self.contracts: dict[bytes, dict[str, Any]] = {}
        self.amendments: dict[bytes, list[dict[str, Any]]] = {}
        self.parties: dict[bytes, dict[str, Any]] = {}

    def propose(self, height: int, contract_hash: bytes, worker: bytes) -> dict[bytes, bytes]:
        """Return the writes of the employer's (the issuer's) proposal."""
        employer = make_key(ISSUER_INDEX).public_key
        self.contracts[contract_hash] = {
            "contract_hash": contract_hash, "employer": employer, "worker": worker,
            "employer_did": None, "worker_did": None, "document_hash": contract_hash,
            "hourly_wage_krw": 10_320, "start_date": "2026-01-05", "end_date": None,
            "status": labor.PROPOSED, "proposed_height": height,
            "proposed_tx": sha256(b"labor propose " + contract_hash), "signed_height": None,
            "signed_tx": None, "closed_height": None, "amendments": 0,
            "pending_amendment": None, "work_records": 0, "worked_until": None,
            "minutes_worked": 0, "wages_due_krw": 0, "payments": 0, "wages_paid_krw": 0,
            **{name: bytes(32) for name in labor.DIGEST_FIELDS.values()}}
        self.amendments[contract_hash] = []
        return {**self.add_party(employer, contract_hash, "employer"),
                **self.save(contract_hash)}

    def accept(self, height: int, contract_hash: bytes) -> dict[bytes, bytes]:
        """Return the writes of the worker's acceptance."""
        contract = self.contracts[contract_hash]
        contract.update(status=labor.IN_FORCE, signed_height=height,
                        signed_tx=sha256(b"labor accept " + contract_hash))
        return {**self.add_party(contract["worker"], contract_hash, "worker"),
                **self.save(contract_hash)}

    def add(self, contract_hash: bytes, kind: str, entry: dict[str, Any]) -> dict[bytes, bytes]:
        """Return the writes of one more work record, payment or amendment proposal."""
        contract = self.contracts[contract_hash]
        number = contract[labor.ENTRY_COUNT_FIELDS[kind]] + 1
        contract[labor.ENTRY_COUNT_FIELDS[kind]] = number
        name = labor.DIGEST_FIELDS[kind]
        if kind == "amendment":
            self.amendments[contract_hash].append(entry)
            contract.update(pending_amendment=number, **{
                name: labor.compute_history_digest(self.amendments[contract_hash])})
        else:
            contract[name] = chain_digest(contract[name], entry)
        if kind == "work":
            contract.update(worked_until=entry["period_end"],
                            minutes_worked=contract["minutes_worked"] + entry["minutes"],
                            wages_due_krw=contract["wages_due_krw"] + entry["wage_due_krw"])
        if kind == "payment":
            contract["wages_paid_krw"] += entry["amount_krw"]
        key = b"labor/" + labor.compute_entry_key(contract_hash, kind, number)
        return {key: encode(entry), **self.save(contract_hash)}

    def add_party(self, party: bytes, contract_hash: bytes, role: str) -> dict[bytes, bytes]:
        record = self.parties.setdefault(party, {"contracts": 0,
                                                 "contracts_digest": bytes(32)})
        entry = {"contract_hash": contract_hash, "role": role}
        record.update(contracts=record["contracts"] + 1,
                      contracts_digest=chain_digest(record["contracts_digest"], entry))
        return {b"labor/" + labor.compute_party_key(party, record["contracts"]): encode(entry),
                b"labor/" + labor.compute_party_key(party): encode(record)}

    def save(self, contract_hash: bytes) -> dict[bytes, bytes]:
        return {b"labor/" + labor.compute_contract_key(contract_hash):
                encode(self.contracts[contract_hash])}


def write_labor_story(chain_blocks: list[dict[bytes, bytes]]) -> None:
    """Add the vectors' labor story to the writes of blocks 1-3: a contract signed, worked,
    paid and with an amendment pending, and another worker's contract."""
    story = LaborStory()
    worker, other = make_key(WORKER_INDEX).public_key, make_key(OTHER_WORKER_INDEX).public_key
    cafe, bakery = sha256(b"labor contract, cafe"), sha256(b"labor contract, bakery")
    chain_blocks[0].update(story.propose(1, cafe, worker))
    chain_blocks[1].update({**story.accept(2, cafe), **story.add(cafe, "work", {
        "period_start": "2026-01-05", "period_end": "2026-01-11", "minutes": 630,
        "hourly_wage_krw": 10_320, "wage_due_krw": 108_360, "height": 2,
        "tx": sha256(b"labor work 1")})})
    chain_blocks[2].update({**story.add(cafe, "payment", {
        "amount_krw": 108_360, "period_start": "2026-01-05", "period_end": "2026-01-11",
        "height": 3, "tx": sha256(b"labor payment 1")}), **story.add(cafe, "amendment", {
            "document_hash": sha256(b"labor contract, cafe, amended"),
            "hourly_wage_krw": 11_000, "proposed_by": "worker", "proposed_height": 3,
            "proposed_tx": sha256(b"labor amendment 1"), "status": labor.PROPOSED,
            "closed_height": None}), **story.propose(3, bakery, other)})
    chain_blocks[2].update(story.accept(3, bakery))


def build_story_chain() -> tuple[MemoryChain, dict[str, bytes]]:
    """Return the vectors' chain: three documents, then the set changes A -> B -> C.

    A = validators 0-3, B = 0, 1, 4, 5 (decided in block 4, signs from 6), C = 4-7 (decided
    in block 8, signs from 10). C shares no key with A, so reaching height 12 from genesis
    needs a pivot signed by B (bisection picks height 6).
    """
    chain = MemoryChain(make_genesis(), [make_key(index) for index in range(VALIDATOR_KEYS)])
    docs = {name: sha256(name.encode()) for name in ("permit-1", "permit-2", "permit-1b",
                                                     "never-anchored")}
    docs.update({name: sha256(name.encode()) for name in ("licence-1", "licence-2")})
    car = VehicleStory()
    labor_writes: list[dict[bytes, bytes]] = [{}, {}, {}]
    write_labor_story(labor_writes)
    licence_1 = make_issued_document(docs["licence-1"], 1, None)
    licence_2 = make_issued_document(docs["licence-2"], 1, GENESIS_TIME_MS + 3_600_000)
    tx1, result1, record1 = make_anchor(1, docs["permit-1"], 1)
    chain.add_block([(tx1.encode(), result1)], {
        doc_key(docs["permit-1"]): encode(record1),
        doc_key(docs["licence-1"], "document"): encode(licence_1),
        doc_key(docs["licence-2"], "document"): encode(licence_2),
        **car.append(1, "registered", owner=car.record["owner"], model=car.record["model"],
                     odometer_km=12), **labor_writes[0]})
    tx2, result2, record2 = make_anchor(2, docs["permit-2"], 2)
    # Block 2 is committed by three of the four validators (30 of 40: more than 2/3).
    chain.add_block([(tx2.encode(), result2)], {
        doc_key(docs["permit-2"]): encode(record2),
        **car.append(2, "inspection", odometer_km=40_000, result="pass", note=""),
        **labor_writes[1]},
        signers=[make_key(index).public_key for index in (0, 1, 3)])
    tx3, result3, record3 = make_anchor(3, docs["permit-1b"], 3, supersedes=docs["permit-1"],
                                        reason="typo in the holder's address")
    record1.update(superseded_by=docs["permit-1b"], superseded_height=3,
                   superseded_reason="typo in the holder's address")
    licence_2.update(revoked_height=3, revoked_time_ms=GENESIS_TIME_MS + 3 * BLOCK_INTERVAL_MS,
                     revoked_reason="business closed")
    chain.add_block([(tx3.encode(), result3)], {
        doc_key(docs["permit-1b"]): encode(record3), doc_key(docs["permit-1"]): encode(record1),
        doc_key(docs["licence-2"], "document"): encode(licence_2),
        **car.append(3, "accident", description="front bumper collision",
                     odometer_km=41_000), **labor_writes[2]})
    chain.add_block(next_set=make_validator_set([0, 1, 4, 5]))
    for _ in range(5, 8):
        chain.add_block()
    chain.add_block(next_set=make_validator_set([4, 5, 6, 7]))
    for _ in range(9, 13):
        chain.add_block()
    hashes = {"tx1": tx1.hash(), "tx2": tx2.hash(), "tx3": tx3.hash(), **docs}
    return chain, hashes


# --------------------------------------------------------------------------- vectors


def build_valid_bundles(chain: MemoryChain, hashes: dict[str, bytes]
                        ) -> list[tuple[str, dict[str, Any], Checkpoint | None]]:
    genesis = chain.genesis
    checkpoint_block = chain.get_light_block(10)
    return [
        ("tx in block 1, from genesis", build_tx_bundle(chain, genesis, hashes["tx1"]), None),
        ("tx in block 3 (a supersession)", build_tx_bundle(chain, genesis, hashes["tx3"]),
         None),
        ("document anchored, not superseded",
         build_document_bundle(chain, genesis, hashes["permit-2"]), None),
        ("document superseded", build_document_bundle(chain, genesis, hashes["permit-1"]),
         None),
        ("document never anchored",
         build_document_bundle(chain, genesis, hashes["never-anchored"]), None),
        ("state key present",
         build_state_bundle(chain, genesis, "notary", b"doc/" + hashes["permit-1b"]), None),
        ("state key absent", build_state_bundle(chain, genesis, "notary", b"doc/none"), None),
        ("document from a trusted checkpoint at height 10",
         build_document_bundle(chain, genesis, hashes["permit-2"], checkpoint_height=10),
         Checkpoint(10, checkpoint_block.block_id())),
        ("issued document valid", build_document_bundle(
            chain, genesis, hashes["licence-1"], service="document"), None),
        ("issued document revoked", build_document_bundle(
            chain, genesis, hashes["licence-2"], service="document"), None),
        ("issued document unknown", build_document_bundle(
            chain, genesis, hashes["never-anchored"], service="document"), None),
        ("vehicle history", build_vehicle_bundle(chain, genesis, VIN), None),
        ("vehicle never registered", build_vehicle_bundle(chain, genesis, OTHER_VIN), None),
        ("labor history of a worker", build_labor_bundle(
            chain, genesis, make_key(WORKER_INDEX).public_key), None),
        ("labor: party to no contract", build_labor_bundle(
            chain, genesis, make_key(NO_PARTY_INDEX).public_key), None),
    ]


def mutate(bundle: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    copied = copy.deepcopy(bundle)
    change(copied)
    return copied


def replace_light_block(index: int, chain: MemoryChain, block: LightBlock
                        ) -> Callable[[dict[str, Any]], None]:
    from seoulchain.light.bundle import light_block_to_json

    def change(bundle: dict[str, Any]) -> None:
        bundle["light_blocks"][index] = light_block_to_json(block)
    return change


def build_invalid_bundles(chain: MemoryChain, valid: dict[str, dict[str, Any]]
                          ) -> list[tuple[str, dict[str, Any], str, str]]:
    """Return (name, bundle, failing step, reason) for each invalid vector."""
    tx_bundle = valid["tx in block 1, from genesis"]
    doc_bundle = valid["document anchored, not superseded"]
    state_bundle = valid["state key present"]
    block_12 = chain.get_light_block(12)
    # One of the four members of set C signs: 10 of 40 power.
    lone_commit = sign_commit(CHAIN_ID, [make_key(4)], 12, block_12.block_id())
    forged = LightBlock(block_12.header, lone_commit, block_12.validators)
    sig = block_12.commit.signatures[0]
    bad_sig = CommitSig(sig.validator, bytes([sig.signature[0] ^ 1]) + sig.signature[1:])
    bad_sig_block = LightBlock(block_12.header, Commit(12, 0, block_12.block_id(),
                                                       (bad_sig, *block_12.commit.signatures[1:])),
                               block_12.validators)
    wrong_set = LightBlock(block_12.header, block_12.commit, make_validator_set([0, 1, 2, 3]))
    # A chain that forks from genesis with keys the genesis never named.
    impostor = MemoryChain(Genesis(CHAIN_ID, GENESIS_TIME_MS, make_validator_set([4, 5, 6, 7]),
                                   {}), [make_key(index) for index in range(VALIDATOR_KEYS)])
    impostor_block = impostor.add_block()

    def set_path(*path: Any, value: Any) -> Callable[[dict[str, Any]], None]:
        def change(bundle: dict[str, Any]) -> None:
            target = bundle
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = value
        return change

    def drop_light_block(index: int) -> Callable[[dict[str, Any]], None]:
        def change(bundle: dict[str, Any]) -> None:
            del bundle["light_blocks"][index]
        return change

    other_genesis = "00" * 32
    doc_record = doc_bundle["proof"]["record"]
    car_bundle = valid["vehicle history"]
    entries = car_bundle["proof"]["entries"]
    second = decode(decode_b64(entries[1], "entry", 1 << 16))
    rolled_back = encode_b64(encode({**second, "odometer_km": 4_000}))
    issued_bundle = valid["issued document revoked"]
    return [
        ("format name changed", mutate(tx_bundle, set_path("format", value="other")), "format",
         "the bundle format string is fixed"),
        ("version 2", mutate(tx_bundle, set_path("version", value=2)), "format",
         "unknown bundle version"),
        ("unknown top-level field", mutate(tx_bundle, set_path("extra", value=1)), "format",
         "unknown fields are rejected, never skipped"),
        ("another genesis", mutate(tx_bundle, set_path("genesis_hash", value=other_genesis)),
         "genesis", "the bundle names another genesis"),
        ("upper-case hex", mutate(tx_bundle, set_path(
            "genesis_hash", value=tx_bundle["genesis_hash"].upper())), "genesis",
         "hex must be lower case: one text per value"),
        ("commit below 2/3 (one of four signers)", mutate(
            doc_bundle, replace_light_block(-1, chain, forged)), "light block",
         "the header's own set did not sign it with more than 2/3"),
        ("a commit signature flipped", mutate(
            doc_bundle, replace_light_block(-1, chain, bad_sig_block)), "light block",
         "every commit signature must verify"),
        ("validator set not the header's", mutate(
            doc_bundle, replace_light_block(-1, chain, wrong_set)), "light block",
         "the set must hash to the header's validators_hash"),
        ("bisection pivot removed", mutate(doc_bundle, drop_light_block(0)), "light block",
         "the genesis set holds none of the power that signed height 12: no skipping"),
        ("impostor chain from genesis", mutate(
            tx_bundle, replace_light_block(0, chain, impostor_block)), "light block",
         "header 1 is signed by a set the genesis did not name"),
        ("log index changed", mutate(tx_bundle, set_path("proof", "log_index", value=1)),
         "proof", "the inclusion proof binds the index"),
        ("state value changed", mutate(state_bundle, set_path(
            "proof", "value", value=encode_b64(b"\xa0"))), "proof",
         "the value's hash is not the one under the state root"),
        ("document record dropped (absence claimed)", mutate(doc_bundle, set_path(
            "proof", "record", value=None)), "proof",
         "the proof ends in the document's leaf: absence does not verify"),
        ("document record not canonical base64", mutate(doc_bundle, set_path(
            "proof", "record", value=doc_record.rstrip("=") if doc_record.endswith("=")
            else doc_record + "=")), "proof", "base64 must be canonical, padded"),
        ("checkpoint bundle without a trusted checkpoint",
         valid["document from a trusted checkpoint at height 10"], "trust",
         "a bundle from a checkpoint verifies only for a verifier who trusts that checkpoint"),
        ("issued document read as a notary record", mutate(issued_bundle, lambda bundle:
         bundle["proof"].pop("service")), "proof",
         "without `service` the key is the notary's: key_hash no longer matches"),
        ("issued document with `service` notary", mutate(issued_bundle, set_path(
            "proof", "service", value="notary")), "proof",
         "the notary is named by leaving `service` out: one text per claim"),
        ("vehicle history entry changed (odometer rolled back)", mutate(car_bundle, set_path(
            "proof", "entries", 1, value=rolled_back)), "proof",
         "the entries no longer chain to the record's history_digest"),
        ("vehicle history entry dropped", mutate(car_bundle, set_path(
            "proof", "entries", value=entries[:1] + entries[2:])), "proof",
         "the record counts the entries of the history"),
        ("vehicle VIN changed", mutate(car_bundle, set_path(
            "proof", "vin", value=OTHER_VIN)), "proof",
         "key_hash binds the VIN's state key"),
        *build_invalid_labor_bundles(chain, valid["labor history of a worker"]),
    ]


def build_invalid_labor_bundles(chain: MemoryChain, bundle: dict[str, Any]
                                ) -> list[tuple[str, dict[str, Any], str, str]]:
    """Return the invalid labor vectors: a record changed, dropped or slipped in."""
    other = build_labor_bundle(chain, chain.genesis, make_key(OTHER_WORKER_INDEX).public_key)
    work = bundle["proof"]["contracts"][0]["work"]
    first = decode(decode_b64(work[0], "work", 1 << 16))
    padded = encode_b64(encode({**first, "minutes": 6_300, "wage_due_krw": 1_083_600}))

    def slip_in(claim: dict[str, Any]) -> None:
        claim["proof"]["entries"].append(other["proof"]["entries"][0])
        claim["proof"]["contracts"].append(other["proof"]["contracts"][0])

    def swap_in(claim: dict[str, Any]) -> None:
        claim["proof"]["entries"][0] = other["proof"]["entries"][0]
        claim["proof"]["contracts"][0] = other["proof"]["contracts"][0]

    def drop_payment(claim: dict[str, Any]) -> None:
        claim["proof"]["contracts"][0]["payments"] = []

    def change_work(claim: dict[str, Any]) -> None:
        claim["proof"]["contracts"][0]["work"][0] = padded

    return [
        ("labor work record changed (minutes padded)", mutate(bundle, change_work), "proof",
         "the work records no longer chain to the contract's work_digest"),
        ("labor payment dropped", mutate(bundle, drop_payment), "proof",
         "the contract counts its payments"),
        ("labor: another worker's contract slipped in", mutate(bundle, slip_in), "proof",
         "the party's record counts its contracts"),
        ("labor: another worker's contract swapped in", mutate(bundle, swap_in), "proof",
         "the list entries no longer chain to the party's contracts_digest"),
    ]


def build_vectors() -> dict[str, Any]:
    """Return every vector as one JSON-ready value."""
    chain, hashes = build_story_chain()
    genesis = chain.genesis
    valid = build_valid_bundles(chain, hashes)
    valid_vectors = []
    for name, bundle, checkpoint in valid:
        statement = verify_bundle(bundle, genesis, checkpoint)
        valid_vectors.append({
            "name": name, "bundle": bundle,
            "checkpoint": None if checkpoint is None else {
                "height": checkpoint.height, "block_id": checkpoint.block_id.hex()},
            "statement": statement.text, "bundle_bytes": len(render_bundle(bundle))})
    invalid_vectors = []
    for name, bundle, failing_step, reason in build_invalid_bundles(
            chain, {name: bundle for name, bundle, _ in valid}):
        try:
            verify_bundle(bundle, genesis)
        except BundleError as exc:
            assert exc.step.startswith(failing_step), (name, exc.step, failing_step)
            message = str(exc)
        else:
            raise AssertionError(f"invalid vector {name!r} verifies")
        invalid_vectors.append({"name": name, "bundle": bundle, "step": failing_step,
                                "reason": reason, "error": message})
    return {
        "description": "seoulchain proof bundle test vectors; see docs/spec/proofs.md. "
                       "Generated by `python -m seoulchain.vectors.proofs`; do not edit.",
        "notes": [
            "The chain is built in memory: headers, commits, log, state tree and results "
            "roots are real, but its state holds only the notary records, issued documents "
            "and vehicle history put there.",
            "Validator key i has seed bytes([0x70 + i]) * 32; the issuer is key 8, named "
            "mapo-gu in the genesis's agencies.",
            "Verify each valid bundle against `genesis` (and `checkpoint` when not null) and "
            "compare the statement; every invalid bundle MUST be rejected (verified against "
            "`genesis` with no checkpoint), at the named step.",
        ],
        "genesis": genesis.to_json(),
        "genesis_hash": genesis.hash().hex(),
        "valid": valid_vectors,
        "invalid": invalid_vectors,
    }


def render_vectors() -> str:
    """Return the vectors file's exact text."""
    return render_vectors_file(build_vectors())


def main(argv: list[str]) -> int:
    return write_vectors_file(render_vectors(), argv, DEFAULT_PATH)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
