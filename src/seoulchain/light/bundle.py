"""Proof bundles: one self-contained JSON file that proves one fact about the chain offline.

Theory of operation (docs/spec/proofs.md §5–§7). A bundle carries everything a verifier
needs besides the genesis file: the *light blocks* (header, commit, validator set) that
lead from the root of trust — the genesis, or a checkpoint the verifier states it trusts —
to the *proving header*, verified one after another by the light client's rules
(`light/lightclient.py`), and then one *claim* with its Merkle proofs against that header:

- `tx`: a transaction's bytes, its RFC 9162 inclusion in the header's `log_root` /
  `log_size`, the previous header (linked by `prev_block_id`, so its `log_size` bounds the
  block from below) and the transaction's execution result with its inclusion in
  `results_root`;
- `state`: a state key's value (or absence) with its sparse Merkle proof under
  `state_root`;
- `document`: the anchored record of a document hash (or its absence) under `state_root`:
  a notary record, read as "anchored by, at, not superseded as of", or (with `service`
  `document`) an issued document's record, read as its status at the proving header's time
  (valid, revoked, superseded, expired, not yet valid, unknown);
- `vehicle`: a vehicle's record (or its absence) under `state_root` and every entry of its
  history, which the record's `history_digest` chains, read as the vehicle's history;
- `labor`: a party's labor record (or its absence) under `state_root`, the list of its
  contracts that record chains, and each contract's record with its amendments, work
  periods and payments, which the contract's digests chain: a worker's work history.

The statement text follows the grammar of docs/spec/proofs.md §7.4 exactly: keys are shown
as `ed25519 <hex>`, after the agency's name when the genesis names it; texts from the chain
(a kind, a reason, a result log) are quoted as JSON strings; times are ISO 8601 UTC.

A chain run under CometBFT carries no seoulchain commit signatures; its bundles carry a
`cometbft` section instead of `light_blocks`: CometBFT signed headers from the genesis
validators (or from a trusted checkpoint header) to h + 1 and the seoulchain header h whose
block id is that header's app hash (`light/cometbft.py`, docs/spec/proofs.md §13).

`verify_bundle` checks every field — unknown or missing fields, non-canonical hex or
base64, non-canonical CBOR all fail — so flipping any byte of a bundle makes it fail, and
it returns a `ProvenStatement` in plain words, or raises `BundleError` naming the step.
Building a bundle (`build_*_bundle`) asks a `ProofSource` (a node's store, its HTTP API,
or an in-memory chain) for the pieces and verifies the result before returning it.

Pure: no I/O here; the source is a callback object.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any, Protocol, runtime_checkable

from seoulchain.codec import decode
from seoulchain.codec.jsonview import to_jsonable
from seoulchain.crypto import is_valid_signature, sha256
from seoulchain.crypto.hashing import HASH_BYTES
from seoulchain.errors import DecodeError, LocalError, VerificationError
from seoulchain.execution.results import ResultCode
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.types import (
    BLOCK_BYTES_MAX,
    TX_BYTES_MAX,
    BlockHeader,
    Commit,
    Transaction,
    ValidatorSet,
)
from seoulchain.light import cometbft
from seoulchain.light.jsonfields import (
    decode_b64,
    decode_hex,
    encode_b64,
    require_int,
    require_list,
    require_object,
)
from seoulchain.light.lightclient import (
    DEFAULT_TRUST_LEVEL,
    LightBlock,
    LightClient,
    TrustedState,
    verify_light_block,
)
from seoulchain.proofs import StateProof, verify_state_proof
from seoulchain.proofs.logtree import (
    INCLUSION_PROOF_HASHES_MAX,
    compute_leaf_hash,
    verify_inclusion,
)
from seoulchain.proofs.smt import PROOF_BYTES_MAX
from seoulchain.services import document as document_service
from seoulchain.services import labor as labor_service
from seoulchain.services import vehicle as vehicle_service
from seoulchain.services.anchoring import compute_doc_key

BUNDLE_FORMAT = "seoulchain-proof-bundle"
BUNDLE_VERSION = 1
# A path of trust by bisection from genesis to any height needs at most about 64 light
# blocks per halving of the trusted set; 256 bounds a hostile bundle's work (~40 ms).
LIGHT_BLOCKS_MAX = 256
# A bundle is a few KiB; 4 MiB bounds the parse of a hostile file with room to spare.
BUNDLE_BYTES_MAX = 4 * 1024 * 1024
# A state value is a service record; the block size bounds it from above.
STATE_VALUE_BYTES_MAX = BLOCK_BYTES_MAX
# A result is [code, log, events]; bounded like a transaction.
RESULT_BYTES_MAX = TX_BYTES_MAX
# The validator set encoding: 150 validators of a 32-byte key, a power and a 64-char name.
VALIDATOR_SET_BYTES_MAX = 64 * 1024
NOTARY_NAMESPACE = "notary"
# The services whose records a `document` claim reads; the notary's is the default.
DOCUMENT_SERVICES = (NOTARY_NAMESPACE, document_service.DocumentService.name)
VEHICLE_NAMESPACE = vehicle_service.VehicleService.name
# A vehicle's history holds at most this many entries (the service's own limit).
VEHICLE_ENTRIES_MAX = vehicle_service.HISTORY_ENTRIES_MAX
# The result-code table of docs/spec/proofs.md §7.4.
RESULT_CODE_NAMES = {code.value: code.name for code in ResultCode}
# Times from this many ms after the Unix epoch on (year 10000) have no 4-digit ISO 8601
# year; a statement shows them as a count of milliseconds.
TIME_ISO_MS_LIMIT = 253_402_300_800_000
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DOCUMENT_RECORD_FIELDS = frozenset({
    "issuer", "kind", "metadata", "height", "time_ms", "tx", "supersedes", "superseded_by",
    "superseded_height", "superseded_reason"})
# A document claim's fields; one for an issued document's record also names its `service`.
DOCUMENT_CLAIM_FIELDS = frozenset({"kind", "doc_hash", "key_hash", "record", "proof"})
# The fields an issued document's record adds to the notary layout.
ISSUED_DOCUMENT_FIELDS = frozenset({
    "valid_from_ms", "valid_until_ms", "revoked_height", "revoked_time_ms", "revoked_reason"})
VEHICLE_RECORD_FIELDS = frozenset({
    "vin", "model", "owner", "registrar", "registered_height", "status", "odometer_km",
    "meter_replacements", "offer", "listing", "entries", "history_digest"})
LABOR_NAMESPACE = labor_service.LaborService.name
# A labor contract record as the labor service writes it from 1.1.0 on.
LABOR_CONTRACT_FIELDS = frozenset({
    "contract_hash", "employer", "worker", "employer_did", "worker_did", "document_hash",
    "hourly_wage_krw", "start_date", "end_date", "status", "proposed_height", "proposed_tx",
    "signed_height", "signed_tx", "closed_height", "amendments", "pending_amendment",
    "work_records", "worked_until", "minutes_worked", "wages_due_krw", "payments",
    "wages_paid_krw", *labor_service.DIGEST_FIELDS.values()})
LABOR_ROLES = ("employer", "worker")
LABOR_STATUSES = (labor_service.PROPOSED, labor_service.IN_FORCE, labor_service.WITHDRAWN,
                  labor_service.ENDED)
LABOR_AMENDMENT_STATUSES = (labor_service.PROPOSED, labor_service.IN_FORCE,
                            labor_service.WITHDRAWN)
# A labor claim's lists of one contract's entries, and the service's caps on each.
LABOR_ENTRY_LISTS = {"amendment": "amendment_entries", "work": "work_entries",
                     "payment": "payment_entries"}
LABOR_CLAIM_LISTS = {"amendment": ("amendments", labor_service.AMENDMENTS_MAX),
                     "work": ("work", labor_service.WORK_RECORDS_MAX),
                     "payment": ("payments", labor_service.PAYMENTS_MAX)}
# Times a prover reads a party's records again when the source's height moved on while it
# read them (each read is at the source's latest height; a bundle proves one height).
LABOR_GATHER_ATTEMPTS = 5


class BundleError(VerificationError):
    """A bundle failed verification at a named step."""

    def __init__(self, step: str, message: str):
        super().__init__(f"{step}: {message}")
        self.step = step


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A header the verifier trusts by other means: its height and block id."""

    height: int
    block_id: bytes


@dataclass(frozen=True, slots=True)
class TxProof:
    """A committed transaction with its log and result inclusion proofs at `height`."""

    height: int
    tx: bytes
    log_index: int
    log_proof: tuple[bytes, ...]
    prev_header: BlockHeader | None
    result: bytes
    result_proof: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ProvenStatement:
    """What a bundle proved, in plain words (`text`) and as fields (`facts`)."""

    kind: str
    text: str
    height: int
    facts: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class LaborContractProof:
    """One contract of a labor claim: its record's proof and its entries of each kind."""

    contract_hash: bytes
    proof: StateProof
    amendments: list[bytes]
    work: list[bytes]
    payments: list[bytes]


@dataclass(frozen=True, slots=True)
class LaborClaim:
    """A party's labor record with its list entries and every contract on the list."""

    party: bytes
    proof: StateProof
    entries: list[bytes]
    contracts: list[LaborContractProof]


class ProofSource(Protocol):
    """Where a prover gets the pieces of a bundle: a node's store, its API, a test chain."""

    def get_light_block(self, height: int) -> LightBlock: ...

    def get_tx_proof(self, tx_hash: bytes) -> TxProof: ...

    def get_state_proof(self, namespace: str, key: bytes) -> StateProof: ...


@runtime_checkable
class CometProofSource(Protocol):
    """A proof source for a chain under CometBFT: its signed headers and seoulchain headers."""

    def get_comet_light_block(self, height: int) -> cometbft.CometLightBlock: ...

    def get_header(self, height: int) -> BlockHeader: ...


# --------------------------------------------------------------------------- JSON fields


def light_block_to_json(block: LightBlock) -> dict[str, Any]:
    return {"header": encode_b64(block.header.encode()),
            "commit": encode_b64(block.commit.encode()),
            "validators": encode_b64(encode_validator_set(block.validators))}


def light_block_from_json(value: Any, name: str = "light block") -> LightBlock:
    fields = require_object(value, name, {"header", "commit", "validators"})
    header = BlockHeader.decode(decode_b64(fields["header"], f"{name} header", TX_BYTES_MAX))
    commit = Commit.decode(decode_b64(fields["commit"], f"{name} commit", BLOCK_BYTES_MAX))
    validators = decode_validator_set(
        decode_b64(fields["validators"], f"{name} validators", VALIDATOR_SET_BYTES_MAX))
    return LightBlock(header, commit, validators)


def encode_validator_set(validators: ValidatorSet) -> bytes:
    from seoulchain.codec import encode

    return encode(validators.to_cbor())


def decode_validator_set(data: bytes) -> ValidatorSet:
    return ValidatorSet.from_cbor(decode(data, VALIDATOR_SET_BYTES_MAX))


def tx_proof_to_json(proof: TxProof) -> dict[str, Any]:
    return {
        "kind": "tx",
        "tx": encode_b64(proof.tx),
        "log_index": proof.log_index,
        "log_proof": [sibling.hex() for sibling in proof.log_proof],
        "prev_header": None if proof.prev_header is None
        else encode_b64(proof.prev_header.encode()),
        "result": encode_b64(proof.result),
        "result_proof": [sibling.hex() for sibling in proof.result_proof],
    }


def tx_proof_from_json(value: Any, height: int) -> TxProof:
    fields = require_object(value, "tx proof", {"kind", "tx", "log_index", "log_proof",
                                                "prev_header", "result", "result_proof"})
    prev = fields["prev_header"]
    return TxProof(
        height=height,
        tx=decode_b64(fields["tx"], "tx", TX_BYTES_MAX),
        log_index=require_int(fields["log_index"], "log_index"),
        log_proof=decode_hashes(fields["log_proof"], "log_proof"),
        prev_header=None if prev is None else BlockHeader.decode(
            decode_b64(prev, "prev_header", TX_BYTES_MAX)),
        result=decode_b64(fields["result"], "result", RESULT_BYTES_MAX),
        result_proof=decode_hashes(fields["result_proof"], "result_proof"),
    )


def decode_hashes(value: Any, name: str) -> tuple[bytes, ...]:
    items = require_list(value, name, INCLUSION_PROOF_HASHES_MAX)
    return tuple(decode_hex(item, f"{name} hash", HASH_BYTES) for item in items)


def state_proof_to_json(proof: StateProof) -> dict[str, Any]:
    return {"kind": "state", "key": proof.key.hex(), "key_hash": sha256(proof.key).hex(),
            "value": None if proof.value is None else encode_b64(proof.value),
            "proof": encode_b64(proof.proof)}


def check_key_hash(value: Any, key: bytes) -> None:
    """Check the claim's `key_hash` is SHA-256 of its key.

    An absence proof that ends in an empty subtree holds for every key on that path, so the
    key alone could change and the proof still verify; the hash beside it binds the key.
    """
    if decode_hex(value, "key_hash", HASH_BYTES) != sha256(key):
        raise VerificationError("key_hash is not SHA-256 of the claim's state key")


def state_proof_from_json(value: Any, height: int) -> StateProof:
    fields = require_object(value, "state proof", {"kind", "key", "key_hash", "value",
                                                   "proof"})
    raw_value = fields["value"]
    key = decode_hex(fields["key"], "state key")
    check_key_hash(fields["key_hash"], key)
    return StateProof(
        height=height,
        key=key,
        value=None if raw_value is None else decode_b64(raw_value, "state value",
                                                        STATE_VALUE_BYTES_MAX),
        proof=decode_b64(fields["proof"], "state tree proof", PROOF_BYTES_MAX),
    )


def document_proof_to_json(doc_hash: bytes, proof: StateProof,
                           service: str = NOTARY_NAMESPACE) -> dict[str, Any]:
    """Return a document claim; `service` is written only when it is not the notary."""
    claim = {"kind": "document", "doc_hash": doc_hash.hex(),
             "key_hash": sha256(compute_document_key(doc_hash, service)).hex(),
             "record": None if proof.value is None else encode_b64(proof.value),
             "proof": encode_b64(proof.proof)}
    if service != NOTARY_NAMESPACE:
        claim["service"] = service
    return claim


def document_proof_from_json(value: Any, height: int) -> tuple[bytes, str, StateProof]:
    """Return (doc_hash, service, proof) of a document claim."""
    named = isinstance(value, dict) and "service" in value
    fields = require_object(value, "document proof",
                            set(DOCUMENT_CLAIM_FIELDS | ({"service"} if named else set())))
    service = fields.get("service", NOTARY_NAMESPACE)
    # The notary is named by leaving `service` out, so each claim has one text.
    if "service" in fields and service not in DOCUMENT_SERVICES[1:]:
        raise DecodeError(f"document service {service!r} is not one of "
                          f"{list(DOCUMENT_SERVICES[1:])} (the notary has no `service`)")
    doc_hash = decode_hex(fields["doc_hash"], "doc_hash", HASH_BYTES)
    key = compute_document_key(doc_hash, service)
    check_key_hash(fields["key_hash"], key)
    record = fields["record"]
    return doc_hash, service, StateProof(
        height=height,
        key=key,
        value=None if record is None else decode_b64(record, "document record",
                                                     STATE_VALUE_BYTES_MAX),
        proof=decode_b64(fields["proof"], "state tree proof", PROOF_BYTES_MAX),
    )


def compute_document_key(doc_hash: bytes, service: str = NOTARY_NAMESPACE) -> bytes:
    """Return the full state key of an anchored record: `<service>/doc/<hash>`."""
    return service.encode() + b"/" + compute_doc_key(doc_hash)


def vehicle_proof_to_json(vin: str, proof: StateProof, entries: list[bytes]
                          ) -> dict[str, Any]:
    return {"kind": "vehicle", "vin": vin,
            "key_hash": sha256(compute_vehicle_state_key(vin)).hex(),
            "record": None if proof.value is None else encode_b64(proof.value),
            "proof": encode_b64(proof.proof),
            "entries": [encode_b64(entry) for entry in entries]}


def vehicle_proof_from_json(value: Any, height: int) -> tuple[str, StateProof, list[bytes]]:
    """Return (vin, record proof, encoded history entries) of a vehicle claim."""
    fields = require_object(value, "vehicle proof", {"kind", "vin", "key_hash", "record",
                                                     "proof", "entries"})
    vin = fields["vin"]
    if not (isinstance(vin, str) and len(vin) == vehicle_service.VIN_CHARS
            and set(vin) <= vehicle_service.VIN_ALPHABET):
        raise DecodeError(f"vin {vin!r} is not 17 characters from 0-9 and upper-case A-Z "
                          "without I, O and Q")
    key = compute_vehicle_state_key(vin)
    check_key_hash(fields["key_hash"], key)
    record = fields["record"]
    entries = [decode_b64(entry, f"history entry {position}", STATE_VALUE_BYTES_MAX)
               for position, entry in enumerate(
                   require_list(fields["entries"], "entries", VEHICLE_ENTRIES_MAX), 1)]
    return vin, StateProof(
        height=height,
        key=key,
        value=None if record is None else decode_b64(record, "vehicle record",
                                                     STATE_VALUE_BYTES_MAX),
        proof=decode_b64(fields["proof"], "state tree proof", PROOF_BYTES_MAX),
    ), entries


def compute_vehicle_state_key(vin: str) -> bytes:
    """Return the full state key of a vehicle's record: `vehicle/vin/<VIN>`."""
    return VEHICLE_NAMESPACE.encode() + b"/" + vehicle_service.compute_vehicle_key(vin)


def labor_proof_to_json(claim: LaborClaim) -> dict[str, Any]:
    def encoded(items: list[bytes]) -> list[str]:
        return [encode_b64(item) for item in items]

    return {"kind": "labor", "party": claim.party.hex(),
            "key_hash": sha256(claim.proof.key).hex(),
            "record": None if claim.proof.value is None else encode_b64(claim.proof.value),
            "proof": encode_b64(claim.proof.proof), "entries": encoded(claim.entries),
            "contracts": [{"contract_hash": contract.contract_hash.hex(),
                           "record": encode_b64(contract.proof.value or b""),
                           "proof": encode_b64(contract.proof.proof),
                           "amendments": encoded(contract.amendments),
                           "work": encoded(contract.work),
                           "payments": encoded(contract.payments)}
                          for contract in claim.contracts]}


def labor_proof_from_json(value: Any, height: int) -> LaborClaim:
    """Return the party's record proof, list entries and contracts of a labor claim."""
    fields = require_object(value, "labor proof", {"kind", "party", "key_hash", "record",
                                                   "proof", "entries", "contracts"})
    party = decode_hex(fields["party"], "party", labor_service.KEY_BYTES)
    key = compute_labor_state_key(labor_service.compute_party_key(party))
    check_key_hash(fields["key_hash"], key)
    record = fields["record"]
    entries = decode_b64_list(fields["entries"], "entries", labor_service.PARTY_CONTRACTS_MAX)
    return LaborClaim(party, StateProof(
        height=height, key=key,
        value=None if record is None else decode_b64(record, "labor party record",
                                                     STATE_VALUE_BYTES_MAX),
        proof=decode_b64(fields["proof"], "state tree proof", PROOF_BYTES_MAX),
    ), entries, [labor_contract_from_json(item, height, position) for position, item in
                 enumerate(require_list(fields["contracts"], "contracts",
                                        labor_service.PARTY_CONTRACTS_MAX), 1)])


def labor_contract_from_json(value: Any, height: int, position: int) -> LaborContractProof:
    name = f"contract {position}"
    fields = require_object(value, name, {"contract_hash", "record", "proof",
                                          *(field for field, _ in LABOR_CLAIM_LISTS.values())})
    contract_hash = decode_hex(fields["contract_hash"], f"{name} contract_hash", HASH_BYTES)
    lists = {kind: decode_b64_list(fields[field], f"{name} {field}", items_max)
             for kind, (field, items_max) in LABOR_CLAIM_LISTS.items()}
    return LaborContractProof(contract_hash, StateProof(
        height=height,
        key=compute_labor_state_key(labor_service.compute_contract_key(contract_hash)),
        value=decode_b64(fields["record"], f"{name} record", STATE_VALUE_BYTES_MAX),
        proof=decode_b64(fields["proof"], f"{name} state tree proof", PROOF_BYTES_MAX),
    ), lists["amendment"], lists["work"], lists["payment"])


def decode_b64_list(value: Any, name: str, items_max: int) -> list[bytes]:
    """Decode a list of at most `items_max` canonical base64 texts of state values."""
    return [decode_b64(item, f"{name} item {position}", STATE_VALUE_BYTES_MAX)
            for position, item in enumerate(require_list(value, name, items_max), 1)]


def compute_labor_state_key(key: bytes) -> bytes:
    """Return the full state key of a labor record: `labor/` and the service's key."""
    return LABOR_NAMESPACE.encode() + b"/" + key


def render_bundle(bundle: dict[str, Any]) -> bytes:
    """Return the canonical bytes of a bundle: sorted keys, no spaces, a final newline."""
    return (json.dumps(bundle, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
            + "\n").encode("ascii")


def parse_bundle(data: bytes) -> dict[str, Any]:
    """Parse bundle bytes as strict JSON (no duplicate keys, no floats, no NaN), or raise."""
    if len(data) > BUNDLE_BYTES_MAX:
        raise BundleError("parse", f"the bundle is larger than {BUNDLE_BYTES_MAX} bytes")

    def reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not allowed")

    def reject_float(text: str) -> Any:
        raise ValueError(f"non-integer number {text}")

    def unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate key in an object")
        return dict(pairs)

    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=unique_object,
                           parse_constant=reject_constant, parse_float=reject_float)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BundleError("parse", f"the bundle is not strict JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise BundleError("parse", "the bundle must be a JSON object")
    return value


# --------------------------------------------------------------------------- building


def build_light_blocks(source: ProofSource, genesis: Genesis, height: int,
                       checkpoint_height: int | None = None) -> tuple[list[LightBlock], dict]:
    """Return the light blocks from the root of trust to `height` and the bundle's `trust`."""
    if checkpoint_height is None:
        client = LightClient.from_genesis(genesis)
        blocks: list[LightBlock] = []
        trust: dict[str, Any] = {"from": "genesis"}
    else:
        if not 1 <= checkpoint_height <= height:
            raise LocalError(f"the trusted height {checkpoint_height} must be from 1 to the "
                             f"proving height {height}")
        first = source.get_light_block(checkpoint_height)
        client = LightClient(TrustedState.from_light_block(first, genesis.chain_id))
        blocks = [first]
        trust = {"from": "checkpoint", "height": checkpoint_height,
                 "block_id": first.block_id().hex()}
    if height > client.trusted.height:
        client.verify_to(height, source.get_light_block)
    return blocks + client.trace, trust


def certify(source: ProofSource, genesis: Genesis, height: int,
            checkpoint_height: int | None) -> dict[str, Any]:
    """Return the bundle sections that prove header `height`: seoulchain light blocks, or
    CometBFT signed headers when the source is a chain run under CometBFT."""
    if isinstance(source, CometProofSource):
        return build_cometbft_sections(source, genesis, height, checkpoint_height)
    blocks, trust = build_light_blocks(source, genesis, height, checkpoint_height)
    return {"trust": trust, "light_blocks": [light_block_to_json(block) for block in blocks]}


def assemble_bundle(genesis: Genesis, sections: dict[str, Any],
                    claim: dict[str, Any]) -> dict[str, Any]:
    return {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION,
            "genesis_hash": genesis.hash().hex(), **sections, "proof": claim}


def build_tx_bundle(source: ProofSource, genesis: Genesis, tx_hash: bytes,
                    checkpoint_height: int | None = None) -> dict[str, Any]:
    """Return a bundle proving a committed transaction and its result."""
    proof = source.get_tx_proof(tx_hash)
    if sha256(proof.tx) != tx_hash:
        raise VerificationError("the source returned another transaction than the one asked")
    sections = certify(source, genesis, proof.height, checkpoint_height)
    return finish(assemble_bundle(genesis, sections, tx_proof_to_json(proof)), genesis,
                  checkpoint_height)


def build_state_bundle(source: ProofSource, genesis: Genesis, namespace: str, key: bytes,
                       checkpoint_height: int | None = None) -> dict[str, Any]:
    """Return a bundle proving a state key's value (or absence) at the source's tip."""
    proof = source.get_state_proof(namespace, key)
    sections = certify(source, genesis, proof.height, checkpoint_height)
    return finish(assemble_bundle(genesis, sections, state_proof_to_json(proof)), genesis,
                  checkpoint_height)


def build_document_bundle(source: ProofSource, genesis: Genesis, doc_hash: bytes,
                          checkpoint_height: int | None = None,
                          service: str = NOTARY_NAMESPACE) -> dict[str, Any]:
    """Return a bundle proving a document's record in `service` (notary or document), or
    its absence, at the tip."""
    if service not in DOCUMENT_SERVICES:
        raise LocalError(f"documents are anchored by {' or '.join(DOCUMENT_SERVICES)}, "
                         f"not {service!r}")
    proof = source.get_state_proof(service, compute_doc_key(doc_hash))
    sections = certify(source, genesis, proof.height, checkpoint_height)
    claim = document_proof_to_json(doc_hash, proof, service)
    return finish(assemble_bundle(genesis, sections, claim), genesis, checkpoint_height)


def build_vehicle_bundle(source: ProofSource, genesis: Genesis, vin: str,
                         checkpoint_height: int | None = None) -> dict[str, Any]:
    """Return a bundle proving a vehicle's record and its whole history at the tip."""
    vin = parse_vin(vin)
    proof = source.get_state_proof(VEHICLE_NAMESPACE, vehicle_service.compute_vehicle_key(vin))
    entries: list[bytes] = []
    if proof.value is not None:
        record = decode(proof.value, STATE_VALUE_BYTES_MAX)
        count = record.get("entries") if isinstance(record, dict) else None
        if not is_uint(count) or count > VEHICLE_ENTRIES_MAX:
            raise VerificationError(f"the source's record of {vin} is not a vehicle record")
        # Entries are written once and never change, so a later height serves the same.
        for seq in range(1, count + 1):
            entry = source.get_state_proof(VEHICLE_NAMESPACE,
                                           vehicle_service.compute_entry_key(vin, seq))
            if entry.value is None:
                raise VerificationError(f"the source has no history entry {seq} of {vin}")
            entries.append(entry.value)
    sections = certify(source, genesis, proof.height, checkpoint_height)
    claim = vehicle_proof_to_json(vin, proof, entries)
    return finish(assemble_bundle(genesis, sections, claim), genesis, checkpoint_height)


def build_labor_bundle(source: ProofSource, genesis: Genesis, party: bytes,
                       checkpoint_height: int | None = None) -> dict[str, Any]:
    """Return a bundle proving a party's labor contracts and each one's entries at the tip."""
    for _ in range(LABOR_GATHER_ATTEMPTS):
        claim = gather_labor_claim(source, party)
        if claim is not None:
            break
    else:
        raise LocalError(f"the source's height moved on while the labor records of "
                         f"{party.hex()} were read, {LABOR_GATHER_ATTEMPTS} times; try again")
    sections = certify(source, genesis, claim.proof.height, checkpoint_height)
    return finish(assemble_bundle(genesis, sections, labor_proof_to_json(claim)), genesis,
                  checkpoint_height)


def gather_labor_claim(source: ProofSource, party: bytes) -> LaborClaim | None:
    """Return a party's labor claim with every record read at one height, or None if the
    source's height moved on meanwhile."""
    proof = source.get_state_proof(LABOR_NAMESPACE, labor_service.compute_party_key(party))
    if proof.value is None:
        return LaborClaim(party, proof, [], [])
    record = decode(proof.value, STATE_VALUE_BYTES_MAX)
    count = record.get("contracts") if isinstance(record, dict) else record
    if not is_uint(count) or count > labor_service.PARTY_CONTRACTS_MAX:
        raise VerificationError(f"the source's record of {party.hex()} is not a labor party "
                                "record")
    entries = [read_labor_value(source, labor_service.compute_party_key(party, number)).value
               for number in range(1, count + 1)]
    contracts = []
    for data in entries:
        entry = decode(data or b"", STATE_VALUE_BYTES_MAX)
        if not (isinstance(entry, dict) and is_hash(entry.get("contract_hash"))):
            raise VerificationError(f"the source's list entry of {party.hex()} is not a "
                                    "labor party entry")
        contract = gather_labor_contract(source, entry["contract_hash"], proof.height)
        if contract is None:
            return None
        contracts.append(contract)
    return LaborClaim(party, proof, entries, contracts)  # type: ignore[arg-type]


def gather_labor_contract(source: ProofSource, contract_hash: bytes,
                          height: int) -> LaborContractProof | None:
    """Return a contract's record proof at `height` and its entries, or None if the source
    answered at another height."""
    proof = read_labor_value(source, labor_service.compute_contract_key(contract_hash))
    if proof.height != height:
        return None
    record = decode(proof.value or b"", STATE_VALUE_BYTES_MAX)
    lists: dict[str, list[bytes]] = {}
    for kind, count_field in labor_service.ENTRY_COUNT_FIELDS.items():
        count = record.get(count_field) if isinstance(record, dict) else None
        if not is_uint(count) or count > LABOR_CLAIM_LISTS[kind][1]:
            raise VerificationError(f"the source's record of contract {contract_hash.hex()} "
                                    "is not a labor contract record")
        entries = [read_labor_value(source, labor_service.compute_entry_key(
            contract_hash, kind, number)) for number in range(1, count + 1)]
        # Amendments change in place: they must be read at the record's height too.
        if kind == "amendment" and any(entry.height != height for entry in entries):
            return None
        lists[kind] = [entry.value for entry in entries]  # type: ignore[misc]
    return LaborContractProof(contract_hash, proof, lists["amendment"], lists["work"],
                              lists["payment"])


def read_labor_value(source: ProofSource, key: bytes) -> StateProof:
    """Return the source's proof of a labor key that must hold a value, or raise."""
    proof = source.get_state_proof(LABOR_NAMESPACE, key)
    if proof.value is None:
        raise VerificationError(f"the source has no labor record {key.decode()}")
    return proof


def parse_vin(text: str) -> str:
    """Return a VIN as the vehicle service stores it (upper case), or raise `LocalError`."""
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(vehicle_service.Vin).validate_python(text)
    except ValidationError as exc:
        raise LocalError(f"{text!r} is not a VIN: {exc.errors()[0]['msg']}") from exc


def finish(bundle: dict[str, Any], genesis: Genesis,
           checkpoint_height: int | None) -> dict[str, Any]:
    """Verify a freshly built bundle, so a prover never hands out one that fails."""
    checkpoint = None
    if checkpoint_height is not None:
        checkpoint = Checkpoint(checkpoint_height,
                                bytes.fromhex(bundle["trust"]["block_id"]))
    verify_bundle(bundle, genesis, checkpoint)
    return bundle


# --------------------------------------------------------------------------- verifying


def verify_bundle(bundle: dict[str, Any] | bytes, genesis: Genesis,
                  checkpoint: Checkpoint | None = None,
                  trust_level: Fraction | None = DEFAULT_TRUST_LEVEL) -> ProvenStatement:
    """Verify a bundle against `genesis` (and a trusted checkpoint if it starts from one)."""
    if isinstance(bundle, bytes | bytearray):
        bundle = parse_bundle(bytes(bundle))
    fields = step("format", lambda: check_envelope(bundle))
    step("genesis", lambda: check_genesis(fields["genesis_hash"], genesis))
    trusted = step("trust", lambda: compute_root_of_trust(fields, genesis, checkpoint))
    if "cometbft" in fields:
        return verify_cometbft_bundle(fields, genesis, trust_level)
    raw_blocks = step("light blocks", lambda: require_list(
        fields["light_blocks"], "light_blocks", LIGHT_BLOCKS_MAX))
    if not raw_blocks:
        raise BundleError("light blocks", "the bundle carries no light block")
    start = 0
    if fields["trust"]["from"] == "checkpoint":
        trusted = step("light block 1", lambda: check_checkpoint_block(
            raw_blocks[0], trusted, genesis.chain_id))
        start = 1
    header = None
    for position in range(start, len(raw_blocks)):
        name = f"light block {position + 1}"
        block = step(name, lambda position=position, name=name: light_block_from_json(
            raw_blocks[position], name))
        trusted = step(f"{name} (height {block.height})",
                       lambda block=block, current=trusted: verify_light_block(
                           current, block, trust_level))
        header = block.header
    if header is None:  # a checkpoint bundle proving at the checkpoint itself
        header = light_block_from_json(raw_blocks[0]).header
    return step(f"proof against header {header.height}",
                lambda: verify_claim(fields["proof"], header, genesis))


def verify_cometbft_bundle(fields: dict[str, Any], genesis: Genesis,
                           trust_level: Fraction | None) -> ProvenStatement:
    """Verify CometBFT signed headers from genesis, then the claim against the seoulchain
    header they prove (docs/spec/proofs.md §13)."""
    checkpoint = None if fields["trust"]["from"] == "genesis" else \
        Checkpoint(fields["trust"]["height"], bytes.fromhex(fields["trust"]["block_id"]))
    header = verify_cometbft_section(fields["cometbft"], genesis, trust_level, checkpoint)
    return step(f"proof against header {header.height}",
                lambda: verify_claim(fields["proof"], header, genesis))


def step(name: str, action: Callable[[], Any]) -> Any:
    """Run one verification step, turning any failure into a `BundleError` naming it."""
    try:
        return action()
    except BundleError:
        raise
    except (DecodeError, VerificationError) as exc:
        raise BundleError(name, str(exc)) from exc


def check_envelope(bundle: Any) -> dict[str, Any]:
    certificate = "cometbft" if isinstance(bundle, dict) and "cometbft" in bundle \
        else "light_blocks"
    fields = require_object(bundle, "bundle", {"format", "version", "genesis_hash", "trust",
                                               certificate, "proof"})
    if fields["format"] != BUNDLE_FORMAT:
        raise DecodeError(f"format is {fields['format']!r}, not {BUNDLE_FORMAT!r}")
    if type(fields["version"]) is not int or fields["version"] != BUNDLE_VERSION:
        raise DecodeError(f"bundle version {fields['version']!r} is not supported "
                          f"(this verifier reads version {BUNDLE_VERSION})")
    return fields


def check_genesis(value: Any, genesis: Genesis) -> None:
    if decode_hex(value, "genesis_hash", HASH_BYTES) != genesis.hash():
        raise VerificationError(f"the bundle is for genesis {value}, the given genesis is "
                                f"{genesis.hash().hex()}")


def compute_root_of_trust(fields: dict[str, Any], genesis: Genesis,
                          checkpoint: Checkpoint | None) -> TrustedState | Checkpoint:
    trust = fields["trust"]
    if isinstance(trust, dict) and trust.get("from") == "genesis":
        require_object(trust, "trust", {"from"})
        return TrustedState.from_genesis(genesis)
    if not (isinstance(trust, dict) and trust.get("from") == "checkpoint"):
        raise DecodeError('trust must be {"from": "genesis"} or a checkpoint')
    require_object(trust, "trust", {"from", "height", "block_id"})
    stated = Checkpoint(require_int(trust["height"], "trust height", 1),
                        decode_hex(trust["block_id"], "trust block_id", HASH_BYTES))
    if checkpoint is None:
        raise VerificationError(
            f"the bundle starts from a checkpoint (height {stated.height}, block "
            f"{stated.block_id.hex()}), not from genesis; verify it only if you trust that "
            "checkpoint, by stating it")
    if stated != checkpoint:
        raise VerificationError(f"the bundle's checkpoint (height {stated.height}, block "
                                f"{stated.block_id.hex()}) is not the trusted one (height "
                                f"{checkpoint.height}, block {checkpoint.block_id.hex()})")
    return stated


def check_checkpoint_block(raw: Any, checkpoint: Any, chain_id: str) -> TrustedState:
    block = light_block_from_json(raw, "light block 1")
    if (block.height, block.block_id()) != (checkpoint.height, checkpoint.block_id):
        raise VerificationError("the first light block is not the trusted checkpoint")
    return TrustedState.from_light_block(block, chain_id)


def verify_claim(claim: Any, header: BlockHeader, genesis: Genesis) -> ProvenStatement:
    kind = claim.get("kind") if isinstance(claim, dict) else None
    if kind == "tx":
        return verify_tx_claim(tx_proof_from_json(claim, header.height), header, genesis)
    if kind == "state":
        return verify_state_claim(state_proof_from_json(claim, header.height), header)
    if kind == "document":
        doc_hash, service, proof = document_proof_from_json(claim, header.height)
        if service == NOTARY_NAMESPACE:
            return verify_document_claim(doc_hash, proof, header, genesis)
        return verify_issued_document_claim(doc_hash, proof, header, genesis)
    if kind == "vehicle":
        vin, proof, entries = vehicle_proof_from_json(claim, header.height)
        return verify_vehicle_claim(vin, proof, entries, header, genesis)
    if kind == "labor":
        return verify_labor_claim(labor_proof_from_json(claim, header.height), header, genesis)
    raise DecodeError(f"proof kind {kind!r} is not one of tx, state, document, vehicle, "
                      "labor")


def verify_tx_claim(proof: TxProof, header: BlockHeader, genesis: Genesis) -> ProvenStatement:
    """Check a tx proof against its block's header; see docs/spec/proofs.md §7.1."""
    tx = Transaction.decode(proof.tx)
    if not is_valid_signature(tx.signer, tx.sign_bytes(), tx.signature):
        raise VerificationError("the transaction's signature does not verify")
    if tx.chain_id != header.chain_id:
        raise VerificationError(f"the transaction is for chain {tx.chain_id!r}")
    verify_inclusion(compute_leaf_hash(proof.tx), proof.log_index, header.log_size,
                     list(proof.log_proof), header.log_root)
    block_start = check_previous_header(proof.prev_header, header)
    if proof.log_index < block_start:
        raise VerificationError(f"log index {proof.log_index} was already in the log at height "
                                f"{header.height - 1} (size {block_start})")
    position = proof.log_index - block_start
    block_txs = header.log_size - block_start
    verify_inclusion(compute_leaf_hash(proof.result), position, block_txs,
                     list(proof.result_proof), header.results_root)
    code, log = decode_result(proof.result)
    tx_hash = sha256(proof.tx)
    code_name = RESULT_CODE_NAMES.get(code, f"code {code}")
    outcome = code_name + (f" {quote_text(log)}" if log else "")
    text = (f"transaction sha256:{tx_hash.hex()} ({tx.service}.{tx.method}, signed by "
            f"{render_public_key(tx.signer, genesis)}, nonce {tx.nonce}) was committed at "
            f"height {header.height}, time {format_time(header.time_ms)}, as transaction "
            f"{position} of its block (log index {proof.log_index}); result: {outcome}")
    return ProvenStatement("tx", text, header.height, {
        "chain_id": header.chain_id, "tx_hash": tx_hash.hex(), "service": tx.service,
        "method": tx.method, "signer": tx.signer.hex(),
        "signer_name": genesis.get_agency_name(tx.signer), "nonce": tx.nonce,
        "time_ms": header.time_ms, "log_index": proof.log_index, "position": position,
        "code": code, "code_name": code_name, "log": log})


def check_previous_header(prev: BlockHeader | None, header: BlockHeader) -> int:
    """Return the log size before `header`'s block, from the header linked before it."""
    if header.height == 1:
        if prev is not None:
            raise VerificationError("a transaction of block 1 has no previous header")
        return 0
    if prev is None:
        raise VerificationError(f"the header of height {header.height - 1} is missing")
    if prev.block_id() != header.prev_block_id or prev.height != header.height - 1:
        raise VerificationError(f"the previous header does not link to header {header.height}")
    if prev.log_size > header.log_size:
        raise VerificationError("the log shrank between the previous header and this one")
    return prev.log_size


def decode_result(data: bytes) -> tuple[int, str]:
    """Return (code, log) of an encoded result `[code, log, events]`, checking its shape."""
    value = decode(data, RESULT_BYTES_MAX)
    if not (isinstance(value, list) and len(value) == 3 and type(value[0]) is int
            and value[0] >= 0 and isinstance(value[1], str) and isinstance(value[2], list)):
        raise DecodeError("a result is [code, log, events]")
    return value[0], value[1]


def verify_state_claim(proof: StateProof, header: BlockHeader) -> ProvenStatement:
    """Check a state proof against the header's state root; see docs/spec/proofs.md §7.2."""
    verify_state_proof(header.state_root, proof)
    when = f"height {header.height} (time {format_time(header.time_ms)})"
    key_text = describe_key(proof.key)
    if proof.value is None:
        text = f"state key {key_text} was absent at {when}"
        value_hash = None
    else:
        value_hash = sha256(proof.value)
        text = (f"state key {key_text} held a value of {len(proof.value)} bytes, "
                f"sha256:{value_hash.hex()}, at {when}")
    return ProvenStatement("state", text, header.height, {
        "chain_id": header.chain_id, "key": proof.key.hex(), "time_ms": header.time_ms,
        "value": None if proof.value is None else proof.value.hex(),
        "value_hash": None if value_hash is None else value_hash.hex()})


def verify_document_claim(doc_hash: bytes, proof: StateProof, header: BlockHeader,
                          genesis: Genesis) -> ProvenStatement:
    """Check a notary record against the state root and read it; docs/spec/proofs.md §7.3."""
    verify_state_proof(header.state_root, proof)
    as_of = f"as of height {header.height} (time {format_time(header.time_ms)})"
    name = f"document sha256:{doc_hash.hex()}"
    facts: dict[str, Any] = {"chain_id": header.chain_id, "doc_hash": doc_hash.hex(),
                             "as_of_height": header.height, "as_of_time_ms": header.time_ms}
    if proof.value is None:
        return ProvenStatement("document", f"{name} was not anchored {as_of}", header.height,
                               {**facts, "anchored": False})
    record = decode_document_record(proof.value)
    text = (f"{name} was anchored by {render_public_key(record['issuer'], genesis)} at height "
            f"{record['height']}, time {format_time(record['time_ms'])} (kind "
            f"{quote_text(record['kind'])}, transaction sha256:{record['tx'].hex()})")
    if record["supersedes"] is not None:
        text += f" as a correction of sha256:{record['supersedes'].hex()}"
    if record["superseded_by"] is None:
        text += f"; not superseded {as_of}"
    else:
        text += (f"; superseded by sha256:{record['superseded_by'].hex()} at height "
                 f"{record['superseded_height']} (reason: "
                 f"{quote_text(record['superseded_reason'])}), {as_of}")
    facts.update(anchored=True, issuer=record["issuer"].hex(),
                 issuer_name=genesis.get_agency_name(record["issuer"]), kind=record["kind"],
                 height=record["height"], time_ms=record["time_ms"], tx=record["tx"].hex(),
                 supersedes=None if record["supersedes"] is None
                 else record["supersedes"].hex(),
                 superseded_reason=record["superseded_reason"],
                 superseded_by=None if record["superseded_by"] is None
                 else record["superseded_by"].hex(),
                 superseded_height=record["superseded_height"])
    return ProvenStatement("document", text, header.height, facts)


def decode_document_record(data: bytes,
                           extra_fields: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Decode a notary record (with `extra_fields` beside) and check the fields read."""
    record = decode(data, STATE_VALUE_BYTES_MAX)
    if not isinstance(record, dict) or set(record) != DOCUMENT_RECORD_FIELDS | extra_fields:
        raise DecodeError("the state value is not a " + (
            "notary document record" if not extra_fields else "issued document record"))
    checks = {
        "issuer": isinstance(record["issuer"], bytes) and len(record["issuer"]) == 32,
        "kind": isinstance(record["kind"], str),
        "height": type(record["height"]) is int and record["height"] >= 1,
        "time_ms": type(record["time_ms"]) is int and record["time_ms"] >= 0,
        "tx": isinstance(record["tx"], bytes) and len(record["tx"]) == HASH_BYTES,
        "supersedes": record["supersedes"] is None or (
            isinstance(record["supersedes"], bytes) and len(record["supersedes"]) == 32),
        "superseded_by": record["superseded_by"] is None or (
            isinstance(record["superseded_by"], bytes) and len(record["superseded_by"]) == 32),
        "superseded_height": (record["superseded_by"] is None) == (
            record["superseded_height"] is None) and (
            record["superseded_height"] is None or (
                type(record["superseded_height"]) is int and record["superseded_height"] >= 1)),
        "superseded_reason": (record["superseded_by"] is None) == (
            record["superseded_reason"] is None) and (
            record["superseded_reason"] is None or isinstance(record["superseded_reason"], str)),
        "metadata": isinstance(record["metadata"], dict) and all(
            isinstance(key, str) and isinstance(value, str)
            for key, value in record["metadata"].items()),
    }
    for name, ok in checks.items():
        if not ok:
            raise DecodeError(f"the document record's {name} is malformed")
    return record


def verify_issued_document_claim(doc_hash: bytes, proof: StateProof, header: BlockHeader,
                                 genesis: Genesis) -> ProvenStatement:
    """Check an issued document's record and judge it at the header's time; §7.3."""
    verify_state_proof(header.state_root, proof)
    record = None
    if proof.value is not None:
        record = decode_issued_document_record(proof.value)
    status = document_service.compute_status(record, header.time_ms)
    view = {"doc_hash": doc_hash.hex(), **to_jsonable(record or {})}
    text = render_document_status(view, status, header.height, header.time_ms, genesis)
    facts = {"chain_id": header.chain_id, "service": document_service.DocumentService.name,
             "doc_hash": doc_hash.hex(), "status": status, "as_of_height": header.height,
             "as_of_time_ms": header.time_ms, "anchored": record is not None}
    if record is not None:
        facts.update({name: value for name, value in view.items() if name != "metadata"},
                     issuer_name=genesis.get_agency_name(record["issuer"]))
    return ProvenStatement("document", text, header.height, facts)


def decode_issued_document_record(data: bytes) -> dict[str, Any]:
    """Decode an issued document's record: the notary layout plus validity and revocation."""
    record = decode_document_record(data, ISSUED_DOCUMENT_FIELDS)
    revoked = record["revoked_height"] is not None
    checks = {
        "valid_from_ms": is_uint(record["valid_from_ms"]),
        "valid_until_ms": record["valid_until_ms"] is None or is_uint(record["valid_until_ms"]),
        "revoked_height": not revoked or (is_uint(record["revoked_height"])
                                          and record["revoked_height"] >= 1),
        "revoked_time_ms": (record["revoked_time_ms"] is not None) == revoked and (
            not revoked or is_uint(record["revoked_time_ms"])),
        "revoked_reason": (record["revoked_reason"] is not None) == revoked and (
            not revoked or isinstance(record["revoked_reason"], str)),
    }
    for name, ok in checks.items():
        if not ok:
            raise DecodeError(f"the document record's {name} is malformed")
    return record


def is_uint(value: Any) -> bool:
    return type(value) is int and value >= 0


def render_document_status(view: dict[str, Any], status: str, as_of_height: int,
                           as_of_time_ms: int, genesis: Genesis) -> str:
    """Say an issued document's status in plain words, status first, then why.

    `view` is the record as JSON (bytes as hex) with `doc_hash`, and `latest` (the end of
    its correction chain) when the caller knows it.
    """
    name = f"document sha256:{view['doc_hash']}"
    as_of = f"as of height {as_of_height} (time {format_time(as_of_time_ms)})"
    if status == document_service.STATUS_UNKNOWN:
        return f"UNKNOWN: {name} was never issued on this chain, {as_of}"
    issuer = render_public_key(bytes.fromhex(view["issuer"]), genesis)
    issued = (f"{name} (kind {quote_text(view['kind'])}) was issued by {issuer} at height "
              f"{view['height']}, time {format_time(view['time_ms'])}")
    until = ("with no end" if view["valid_until_ms"] is None
             else f"until {format_time(view['valid_until_ms'])}")
    latest = f"; the current version is sha256:{view['latest']}" if "latest" in view else ""
    reasons = {
        "valid": lambda: f"VALID: {issued}; valid {until}",
        "revoked": lambda: (f"REVOKED: {issued}; revoked at height {view['revoked_height']}, "
                            f"time {format_time(view['revoked_time_ms'])} (reason: "
                            f"{quote_text(view['revoked_reason'])})"),
        "superseded": lambda: (f"SUPERSEDED: {issued}; corrected by "
                               f"sha256:{view['superseded_by']} at height "
                               f"{view['superseded_height']} (reason: "
                               f"{quote_text(view['superseded_reason'])}){latest}"),
        "expired": lambda: (f"EXPIRED: {issued}; its validity ended "
                            f"{format_time(view['valid_until_ms'])}"),
        "not_yet_valid": lambda: (f"NOT YET VALID: {issued}; valid from "
                                  f"{format_time(view['valid_from_ms'])} {until}"),
    }
    return f"{reasons[status]()}, {as_of}"


def verify_vehicle_claim(vin: str, proof: StateProof, entries: list[bytes],
                         header: BlockHeader, genesis: Genesis) -> ProvenStatement:
    """Check a vehicle's record and that its entries are its whole history; §7.5."""
    verify_state_proof(header.state_root, proof)
    as_of = f"as of height {header.height} (time {format_time(header.time_ms)})"
    facts: dict[str, Any] = {"chain_id": header.chain_id, "vin": vin,
                             "as_of_height": header.height, "as_of_time_ms": header.time_ms}
    if proof.value is None:
        if entries:
            raise VerificationError(f"vehicle {vin} is not registered, yet the claim carries "
                                    f"{len(entries)} history entries")
        return ProvenStatement("vehicle", f"vehicle {vin} was not registered {as_of}",
                               header.height, {**facts, "registered": False})
    record = decode_vehicle_record(proof.value, vin)
    decoded = check_vehicle_history(record, entries)
    owner = render_public_key(record["owner"], genesis)
    lines = [f"vehicle {vin} (model {quote_text(record['model'])}), {as_of}: "
             f"{record['status']}, owner {owner}, last odometer reading "
             f"{record['odometer_km']} km, {len(decoded)} history entries:"]
    lines += [render_vehicle_entry(entry, genesis) for entry in decoded]
    facts.update(registered=True, status=record["status"], owner=record["owner"].hex(),
                 odometer_km=record["odometer_km"], model=record["model"],
                 history_digest=record["history_digest"].hex(),
                 entries=to_jsonable(decoded))
    return ProvenStatement("vehicle", "\n".join(lines), header.height, facts)


def decode_vehicle_record(data: bytes, vin: str) -> dict[str, Any]:
    """Decode a vehicle record and check the fields a statement reads."""
    record = decode(data, STATE_VALUE_BYTES_MAX)
    if not isinstance(record, dict) or set(record) != VEHICLE_RECORD_FIELDS:
        raise DecodeError("the state value is not a vehicle record")
    checks = {
        "vin": record["vin"] == vin,
        "model": isinstance(record["model"], str),
        "owner": isinstance(record["owner"], bytes) and len(record["owner"]) == 32,
        "registrar": isinstance(record["registrar"], bytes)
        and len(record["registrar"]) == 32,
        "registered_height": is_uint(record["registered_height"]),
        "meter_replacements": is_uint(record["meter_replacements"]),
        "offer": record["offer"] is None or isinstance(record["offer"], dict),
        "listing": record["listing"] is None or isinstance(record["listing"], dict),
        "status": record["status"] in (vehicle_service.STATUS_ACTIVE,
                                       vehicle_service.STATUS_SCRAPPED),
        "odometer_km": is_uint(record["odometer_km"]),
        "entries": is_uint(record["entries"]) and record["entries"] <= VEHICLE_ENTRIES_MAX,
        "history_digest": isinstance(record["history_digest"], bytes)
        and len(record["history_digest"]) == HASH_BYTES,
    }
    for name, ok in checks.items():
        if not ok:
            raise DecodeError(f"the vehicle record's {name} is malformed")
    return record


def check_vehicle_history(record: dict[str, Any], entries: list[bytes]
                          ) -> list[dict[str, Any]]:
    """Return the decoded entries if they are exactly the history the record chains."""
    if len(entries) != record["entries"]:
        raise VerificationError(f"the record counts {record['entries']} history entries, the "
                                f"claim carries {len(entries)}")
    decoded = []
    for seq, data in enumerate(entries, 1):
        entry = decode(data, STATE_VALUE_BYTES_MAX)
        if not (isinstance(entry, dict) and entry.get("seq") == seq
                and isinstance(entry.get("kind"), str) and is_uint(entry.get("height"))
                and is_uint(entry.get("time_ms")) and isinstance(entry.get("signer"), bytes)):
            raise DecodeError(f"history entry {seq} is not a vehicle history entry numbered "
                              f"{seq}")
        decoded.append(entry)
    if vehicle_service.compute_history_digest(decoded) != record["history_digest"]:
        raise VerificationError("the history entries do not chain to the record's "
                                "history_digest: an entry was changed, dropped or reordered")
    return decoded


def render_vehicle_entry(entry: dict[str, Any], genesis: Genesis) -> str:
    """Say one history entry in plain words: `#seq time (height h): what, by whom`."""
    def key(name: str) -> str:
        return render_public_key(entry_field(entry, name, bytes), genesis)

    def km(name: str = "odometer_km") -> str:
        value = entry_field(entry, name, int, optional=True)
        return "" if value is None else f" at {value} km"

    def krw(name: str = "price_krw") -> str:
        value = entry_field(entry, name, int, optional=True)
        return "" if value is None else f" for {value} KRW"

    def note(name: str = "note") -> str:
        value = entry_field(entry, name, str)
        return f" (note: {quote_text(value)})" if value else ""

    kind = entry["kind"]
    texts: dict[str, Callable[[], str]] = {
        "registered": lambda: f"registered to owner {key('owner')}{km()}",
        "inspection": lambda: (f"inspection {quote_text(entry_field(entry, 'result', str))}"
                               f"{km()}{note()}"),
        "meter_replaced": lambda: (f"odometer replaced: old meter read "
                                   f"{entry_field(entry, 'old_meter_km', int)} km, new meter "
                                   f"{entry_field(entry, 'new_meter_km', int)} km{note()}"),
        "accident": lambda: (f"accident: {quote_text(entry_field(entry, 'description', str))}"
                             f"{km()}"),
        "repair": lambda: f"repair: {quote_text(entry_field(entry, 'description', str))}{km()}",
        "listed": lambda: f"listed for sale{krw()}{km()}",
        "transfer_offered": lambda: (f"transfer offered by {key('seller')} to "
                                     f"{key('buyer')}{krw()}"),
        "offer_cancelled": lambda: f"offer to {key('buyer')} cancelled",
        "transferred": lambda: f"sold by {key('seller')} to {key('buyer')}{krw()}",
        "scrapped": lambda: f"scrapped (last owner {key('owner')})",
    }
    what = texts[kind]() if kind in texts else f"entry of kind {quote_text(kind)}"
    return (f"  #{entry['seq']} {format_time(entry['time_ms'])} (height {entry['height']}): "
            f"{what}; signed by {render_public_key(entry['signer'], genesis)}")


def entry_field(entry: dict[str, Any], name: str, kind: type, optional: bool = False) -> Any:
    """Return a history entry's field if it has the type a statement reads, or raise."""
    value = entry.get(name)
    if (value is None and optional) or (type(value) is kind and (kind is not int or value >= 0)):
        return value
    raise DecodeError(f"history entry {entry['seq']} ({entry['kind']}) has no valid {name}")


def verify_labor_claim(claim: LaborClaim, header: BlockHeader,
                       genesis: Genesis) -> ProvenStatement:
    """Check a party's labor record, its contract list and every contract's entries; §7.6."""
    verify_state_proof(header.state_root, claim.proof)
    as_of = {"as_of_height": header.height, "as_of_time": format_time(header.time_ms)}
    party = render_public_key(claim.party, genesis)
    facts: dict[str, Any] = {"chain_id": header.chain_id, "party": claim.party.hex(),
                             "as_of_height": header.height, "as_of_time_ms": header.time_ms}
    if claim.proof.value is None:
        if claim.entries or claim.contracts:
            raise VerificationError("the party has no labor record, yet the claim carries "
                                    f"{len(claim.entries)} contracts")
        text = (f"{party} was party to no labor contract as of height {as_of['as_of_height']} "
                f"(time {as_of['as_of_time']})")
        return ProvenStatement("labor", text, header.height, {**facts, "contracts": []})
    listed = check_labor_party(claim)
    contracts = [check_labor_contract(claim.party, number, entry, proven, header)
                 for number, (entry, proven) in enumerate(
                     zip(listed, claim.contracts, strict=True), 1)]
    lines = [f"labor history of {party}, as of height {as_of['as_of_height']} (time "
             f"{as_of['as_of_time']}): {len(contracts)} contracts"]
    for contract in contracts:
        lines += render_labor_contract(contract, genesis)
    return ProvenStatement("labor", "\n".join(lines), header.height,
                           {**facts, "contracts": to_jsonable(contracts)})


def check_labor_party(claim: LaborClaim) -> list[dict[str, Any]]:
    """Return the party's index entries if they are exactly the list its record chains."""
    record = decode(claim.proof.value, STATE_VALUE_BYTES_MAX)
    if isinstance(record, int):
        raise VerificationError("the party's record is a bare count written by labor 1.0.0: "
                                "it carries no digest of its contracts yet")
    if not (isinstance(record, dict) and set(record) == {"contracts", "contracts_digest"}
            and is_uint(record["contracts"]) and is_hash(record["contracts_digest"])):
        raise DecodeError("the state value is not a labor party record")
    if len(claim.entries) != record["contracts"] or len(claim.contracts) != len(claim.entries):
        raise VerificationError(f"the party's record counts {record['contracts']} contracts, "
                                f"the claim carries {len(claim.entries)} list entries and "
                                f"{len(claim.contracts)} contracts")
    listed = []
    for number, data in enumerate(claim.entries, 1):
        entry = decode(data, STATE_VALUE_BYTES_MAX)
        if not (isinstance(entry, dict) and set(entry) == {"contract_hash", "role"}
                and is_hash(entry["contract_hash"]) and entry["role"] in LABOR_ROLES):
            raise DecodeError(f"list entry {number} is not a labor party entry")
        listed.append(entry)
    if labor_service.compute_history_digest(listed) != record["contracts_digest"]:
        raise VerificationError("the list entries do not chain to the party's "
                                "contracts_digest: a contract was changed, dropped, added or "
                                "reordered")
    return listed


def check_labor_contract(party: bytes, number: int, entry: dict[str, Any],
                         proven: LaborContractProof, header: BlockHeader) -> dict[str, Any]:
    """Return contract `number` of the party's list with its entries, each check passed."""
    verify_state_proof(header.state_root, proven.proof)
    if proven.proof.value is None:
        raise VerificationError(f"contract {number} of the list has no record")
    record = decode_labor_contract(proven.proof.value, number)
    if not entry["contract_hash"] == proven.contract_hash == record["contract_hash"]:
        raise VerificationError(f"contract {number} of the claim is not contract "
                                f"sha256:{entry['contract_hash'].hex()} of the party's list")
    if record[entry["role"]] != party:
        raise VerificationError(f"contract {number} (sha256:{record['contract_hash'].hex()}) "
                                f"names another key as its {entry['role']}: it is not this "
                                "party's contract")
    contract = {"role": entry["role"], **record}
    for kind, items in (("amendment", proven.amendments), ("work", proven.work),
                        ("payment", proven.payments)):
        contract[LABOR_ENTRY_LISTS[kind]] = check_labor_entries(record, kind, items, number)
    return contract


def decode_labor_contract(data: bytes, number: int) -> dict[str, Any]:
    """Decode a labor contract record and check the fields a statement reads."""
    record = decode(data, STATE_VALUE_BYTES_MAX)
    if isinstance(record, dict) and set(record) == LABOR_CONTRACT_FIELDS - set(
            labor_service.DIGEST_FIELDS.values()):
        raise VerificationError(f"contract {number} was written by labor 1.0.0 and not since "
                                "the upgrade: it carries no digests of its entries yet")
    if not isinstance(record, dict) or set(record) != LABOR_CONTRACT_FIELDS:
        raise DecodeError(f"contract {number}'s state value is not a labor contract record")
    signed = record["signed_height"] is not None
    checks = {
        "keys": all(is_key(record[name]) for name in ("employer", "worker")),
        "hashes": all(is_hash(record[name]) for name in (
            "contract_hash", "document_hash", "proposed_tx", *labor_service.DIGEST_FIELDS
            .values())),
        "dates": is_date(record["start_date"]) and (
            record["end_date"] is None or is_date(record["end_date"])),
        "status": record["status"] in LABOR_STATUSES,
        "signed": (record["signed_tx"] is not None) == signed and (
            not signed or (is_uint(record["signed_height"]) and is_hash(record["signed_tx"]))),
        "integers": all(is_uint(record[name]) for name in (
            "hourly_wage_krw", "proposed_height", "amendments", "work_records", "payments",
            "minutes_worked", "wages_due_krw", "wages_paid_krw")),
    }
    for name, ok in checks.items():
        if not ok:
            raise DecodeError(f"contract {number}'s record has malformed {name}")
    return record


def check_labor_entries(record: dict[str, Any], kind: str, items: list[bytes],
                        number: int) -> list[dict[str, Any]]:
    """Return a contract's decoded entries of `kind` if they are exactly those it chains."""
    count = record[labor_service.ENTRY_COUNT_FIELDS[kind]]
    if len(items) != count:
        raise VerificationError(f"contract {number} counts {count} {kind} entries, the claim "
                                f"carries {len(items)}")
    decoded = []
    for position, data in enumerate(items, 1):
        entry = decode(data, STATE_VALUE_BYTES_MAX)
        if not isinstance(entry, dict) or not LABOR_ENTRY_CHECKS[kind](entry):
            raise DecodeError(f"{kind} entry {position} of contract {number} is not a labor "
                              f"{kind} entry")
        decoded.append(entry)
    if labor_service.compute_history_digest(decoded) != record[
            labor_service.DIGEST_FIELDS[kind]]:
        raise VerificationError(f"contract {number}'s {kind} entries do not chain to its "
                                f"{labor_service.DIGEST_FIELDS[kind]}: an entry was changed, "
                                "dropped, added or reordered")
    return decoded


def is_key(value: Any) -> bool:
    return isinstance(value, bytes) and len(value) == 32


def is_hash(value: Any) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_BYTES


def is_date(value: Any) -> bool:
    return isinstance(value, str) and labor_service.DATE_PATTERN.fullmatch(value) is not None


def is_amendment_entry(entry: dict[str, Any]) -> bool:
    closed = entry.get("closed_height")
    return (set(entry) == {"document_hash", "hourly_wage_krw", "proposed_by",
                           "proposed_height", "proposed_tx", "status", "closed_height"}
            and is_hash(entry["document_hash"]) and is_uint(entry["hourly_wage_krw"])
            and entry["proposed_by"] in LABOR_ROLES and is_uint(entry["proposed_height"])
            and is_hash(entry["proposed_tx"]) and entry["status"] in LABOR_AMENDMENT_STATUSES
            and (closed is None) == (entry["status"] == labor_service.PROPOSED)
            and (closed is None or is_uint(closed)))


def is_work_entry(entry: dict[str, Any]) -> bool:
    return (set(entry) == {"period_start", "period_end", "minutes", "hourly_wage_krw",
                           "wage_due_krw", "height", "tx"}
            and is_date(entry["period_start"]) and is_date(entry["period_end"])
            and all(is_uint(entry[name]) for name in ("minutes", "hourly_wage_krw",
                                                      "wage_due_krw", "height"))
            and is_hash(entry["tx"]))


def is_payment_entry(entry: dict[str, Any]) -> bool:
    return (set(entry) == {"amount_krw", "period_start", "period_end", "height", "tx"}
            and is_date(entry["period_start"]) and is_date(entry["period_end"])
            and is_uint(entry["amount_krw"]) and is_uint(entry["height"])
            and is_hash(entry["tx"]))


LABOR_ENTRY_CHECKS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "amendment": is_amendment_entry, "work": is_work_entry, "payment": is_payment_entry}


def render_labor_contract(contract: dict[str, Any], genesis: Genesis) -> list[str]:
    """Say one contract in plain words: its terms line, then its amendments, work, payments."""
    until = "" if contract["end_date"] is None else f" to {contract['end_date']}"
    signed = "" if contract["signed_height"] is None else (
        f", signed by the worker at height {contract['signed_height']} (transaction "
        f"sha256:{contract['signed_tx'].hex()})")
    lines = [
        f"contract sha256:{contract['contract_hash'].hex()} as {contract['role']} (employer "
        f"{render_public_key(contract['employer'], genesis)}, worker "
        f"{render_public_key(contract['worker'], genesis)}): "
        f"{contract['status'].replace('_', ' ')}, from {contract['start_date']}{until}, "
        f"{contract['hourly_wage_krw']} KRW an hour (document "
        f"sha256:{contract['document_hash'].hex()}), proposed at height "
        f"{contract['proposed_height']} (transaction sha256:{contract['proposed_tx'].hex()})"
        f"{signed}; {contract['work_records']} work periods, {contract['minutes_worked']} "
        f"minutes, {contract['wages_due_krw']} KRW due, {contract['wages_paid_krw']} KRW paid"]
    for number, amendment in enumerate(contract["amendment_entries"], 1):
        status = {labor_service.PROPOSED: "pending",
                  labor_service.IN_FORCE: f"in force from height {amendment['closed_height']}",
                  labor_service.WITHDRAWN: f"withdrawn at height {amendment['closed_height']}"}
        lines.append(f"  amendment #{number} by the {amendment['proposed_by']} at height "
                     f"{amendment['proposed_height']}: {amendment['hourly_wage_krw']} KRW an "
                     f"hour (document sha256:{amendment['document_hash'].hex()}), "
                     f"{status[amendment['status']]}")
    for number, work in enumerate(contract["work_entries"], 1):
        lines.append(f"  work #{number} {work['period_start']} to {work['period_end']}: "
                     f"{work['minutes']} minutes at {work['hourly_wage_krw']} KRW an hour, "
                     f"{work['wage_due_krw']} KRW due (height {work['height']})")
    for number, payment in enumerate(contract["payment_entries"], 1):
        lines.append(f"  payment #{number}: {payment['amount_krw']} KRW for "
                     f"{payment['period_start']} to {payment['period_end']} (height "
                     f"{payment['height']})")
    return lines


def describe_key(key: bytes) -> str:
    """Show a state key as its printable prefix (bytes 0x21-0x7E), quoted, and hex of the rest."""
    prefix = bytearray()
    for byte in key:
        if not 0x20 < byte < 0x7F:
            break
        prefix.append(byte)
    rest = key[len(prefix):]
    return quote_text(prefix.decode("ascii")) + (f" + 0x{rest.hex()}" if rest else "")


def render_public_key(public_key: bytes, genesis: Genesis) -> str:
    """Show a public key as `ed25519 <hex>`, after its agency's name if genesis names it."""
    shown = f"ed25519 {public_key.hex()}"
    name = genesis.get_agency_name(public_key)
    return shown if name is None else f"{name} ({shown})"


def quote_text(text: str) -> str:
    """Quote chain text as a JSON string: `"` and `\\` escaped, control characters as escapes.

    Short escapes for backspace, form feed, newline, carriage return and tab, `\\u00xx`
    (lower-case hex) for other characters below U+0020; everything else as is, in UTF-8.
    """
    return json.dumps(text, ensure_ascii=False)


def format_time(time_ms: int) -> str:
    """Return a block time as ISO 8601 UTC with milliseconds (exact integer arithmetic)."""
    if time_ms >= TIME_ISO_MS_LIMIT:
        return f"{time_ms} ms after the Unix epoch"
    moment = UNIX_EPOCH + timedelta(milliseconds=time_ms)
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
            f"{moment.minute:02d}:{moment.second:02d}.{time_ms % 1000:03d}Z")


# --------------------------------------------------------------------------- CometBFT


def build_cometbft_sections(source: CometProofSource, genesis: Genesis, height: int,
                            checkpoint_height: int | None = None) -> dict[str, Any]:
    """Return a bundle's `trust` and `cometbft` sections proving seoulchain header `height`:
    CometBFT signed headers from the genesis set, or from the signed header of
    `checkpoint_height` (a CometBFT height the verifier trusts by its header hash)."""
    header = source.get_header(height)
    trusted = cometbft.CometTrustedState.from_genesis(genesis)
    trace: list[cometbft.CometLightBlock] = []
    trust: dict[str, Any] = {"from": "genesis"}
    if checkpoint_height is not None:
        if not 1 <= checkpoint_height <= height + 1:
            raise LocalError(f"the trusted CometBFT height {checkpoint_height} must be from 1 "
                             f"to {height + 1}, the signed header that proves height {height}")
        first = source.get_comet_light_block(checkpoint_height)
        trusted = cometbft.trust_checkpoint(genesis.chain_id, first)
        trace.append(first)
        trust = {"from": "checkpoint", "height": checkpoint_height,
                 "block_id": first.header.hash().hex()}
    if height + 1 > trusted.height:
        trace += cometbft.trace_to(trusted, height + 1, source.get_comet_light_block)
    if trace[-1].header.app_hash != header.block_id():
        raise VerificationError(f"CometBFT's header {height + 1} names app hash "
                                f"{trace[-1].header.app_hash.hex()}, not the source's block "
                                f"{height} ({header.block_id().hex()})")
    blocks = [cometbft.light_block_to_json(block) for block in trace]
    return {"trust": trust,
            "cometbft": {"light_blocks": blocks, "header": encode_b64(header.encode())}}


def verify_cometbft_section(section: Any, genesis: Genesis,
                            trust_level: Fraction | None = DEFAULT_TRUST_LEVEL,
                            checkpoint: Checkpoint | None = None) -> BlockHeader:
    """Verify a bundle's `cometbft` section from the genesis validators (or from its first
    signed header, the trusted `checkpoint`); return the proven seoulchain header (the one
    whose block id is the last signed header's app hash)."""
    fields = step("cometbft", lambda: require_object(section, "cometbft",
                                                     {"light_blocks", "header"}))
    raw_blocks = step("cometbft", lambda: require_list(
        fields["light_blocks"], "cometbft light_blocks", LIGHT_BLOCKS_MAX))
    if not raw_blocks:
        raise BundleError("cometbft", "the bundle carries no CometBFT signed header")
    trusted = cometbft.CometTrustedState.from_genesis(genesis)
    start = 0
    if checkpoint is not None:
        block = step("cometbft light block 1", lambda: cometbft.light_block_from_json(
            raw_blocks[0], "cometbft light block 1"))
        trusted = step("cometbft light block 1", lambda: check_comet_checkpoint(
            block, checkpoint, genesis.chain_id))
        start = 1
    for position in range(start, len(raw_blocks)):
        raw = raw_blocks[position]
        name = f"cometbft light block {position + 1}"
        block = step(name, lambda raw=raw, name=name: cometbft.light_block_from_json(raw, name))
        if trust_level is None and block.height != trusted.height + 1:
            raise BundleError(f"{name} (height {block.height})", "skipping is not allowed")
        trusted = step(f"{name} (height {block.height})",
                       lambda block=block, current=trusted: cometbft.verify_signed_header(
                           current, block, trust_level or DEFAULT_TRUST_LEVEL))
    return step("cometbft header", lambda: check_app_header(fields["header"], block, genesis))


def check_comet_checkpoint(block: cometbft.CometLightBlock, checkpoint: Checkpoint,
                           chain_id: str) -> cometbft.CometTrustedState:
    """The first signed header is the trusted checkpoint: its height and header hash."""
    if (block.height, block.header.hash()) != (checkpoint.height, checkpoint.block_id):
        raise VerificationError("the first signed header is not the trusted checkpoint")
    return cometbft.trust_checkpoint(chain_id, block)


def check_app_header(value: Any, block: cometbft.CometLightBlock, genesis: Genesis) -> BlockHeader:
    """The seoulchain header of height h whose block id is CometBFT header h + 1's app hash."""
    header = BlockHeader.decode(decode_b64(value, "cometbft header", TX_BYTES_MAX))
    if header.chain_id != genesis.chain_id:
        raise VerificationError(f"the header is of chain {header.chain_id!r}")
    if header.height + 1 != block.height:
        raise VerificationError(f"the header is of height {header.height}; the last signed "
                                f"header ({block.height}) proves height {block.height - 1}")
    if header.block_id() != block.header.app_hash:
        raise VerificationError(f"the header's block id {header.block_id().hex()} is not the "
                                f"app hash {block.header.app_hash.hex()} of signed header "
                                f"{block.height}")
    return header
