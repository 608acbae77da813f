"""Verifiable credentials (`vc`): issuers, credential anchors and status lists, on chain.

Theory of operation. Credentials themselves travel off chain (W3C Verifiable Credentials
with Data Integrity proofs, see `seoulchain.credentials`); the chain holds what a verifier
cannot learn from the credential alone, and never any of its content:

- Issuers. Governance grants an agency's key the role of a credential type
  (`vc.issuer.<type>`). That key, being a current authentication key of the agency's DID,
  registers the DID as an issuer of the type (`register_issuer`).
- Anchors. `issue` records the SHA-256 of a signed credential with its type, issuer DID, the
  signing chain key and its status entries. The anchor's height is the credential's
  issuance height: the verifier resolves the issuer's DID key and checks the issuer's role
  as of that height (`gov.role_history`). The signer must hold the type's role and be a
  current authentication key of the issuer DID, registered for the type.
- Status lists (W3C Bitstring Status List). A registered issuer creates a list with a
  purpose (revocation or suspension) and a size; its authentication keys set or clear bits.
  A revocation is final; a suspension may be lifted. The chain keeps the set bits in chunks
  of CHUNK_ENTRIES indices, so one update rewrites a few bytes, not the 16 KiB bitstring;
  `anchor_status_list` records the hash of the signed BitstringStatusListCredential the
  issuer publishes for the list's current bits.

State (namespace `vc`): `issuer/<did>` → {did, types: {type: {height, key}}};
`anchor/<32-byte hash>` → an anchor; `list/<list id>` → a list's record;
`bits/<list id>/<chunk, 4 bytes>` → [[index, height set], ...] sorted by index;
`slot/<list id>/<index, 4 bytes>` → the hash of the credential given that index (an index
is given to one credential only); `count/<type>` → {anchored, revoked}: how many credentials
of the type were anchored and how many of those were revoked (a poll open to the type's
holders publishes at most anchored - revoked voting credentials, see the `vote` service).

Counts (version 1.1.0): until the chain's upgrade height the service writes exactly what
1.0.0 wrote (no counts); from it on, each anchor and each revocation of an anchored
credential is counted. A chain that ran 1.0.0 first counts only what was anchored and
revoked since its upgrade.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, StringConstraints

from seoulchain.crypto.hashing import sha256
from seoulchain.errors import VerificationError
from seoulchain.execution.service import (
    HexBytes,
    QueryArgs,
    Service,
    ServiceError,
    ServiceState,
    StrictArgs,
    TxContext,
    query,
    tx_method,
)
from seoulchain.services.did import (
    DidText,
    compute_document,
    find_verification_key,
    require_active,
)
from seoulchain.services.notary import PublicText

DID_SERVICE = "did"
CredentialType = Literal["residency", "age-band", "youth-allowance", "business-licence",
                         "training"]
CREDENTIAL_TYPES: tuple[str, ...] = get_args(CredentialType)
ROLE_PREFIX = "vc.issuer."
StatusPurpose = Literal["revocation", "suspension"]
HASH_BYTES = 32
# W3C Bitstring Status List v1.0 §5.1: a list has at least 131,072 entries (16 KiB), so
# that one index reveals little about which credential it is.
STATUS_LIST_ENTRIES_MIN = 131_072
# Eight times the minimum (128 KiB of bits before compression): room for a year of a large
# agency's credentials in one list; more need another list.
STATUS_LIST_ENTRIES_MAX = 8 * STATUS_LIST_ENTRIES_MIN
# Indices per stored chunk of set bits: a chunk holds at most this many [index, height]
# pairs, about 12 KiB in CBOR when full, inside one state value (64 KiB).
CHUNK_ENTRIES = 1024
# A credential carries at most one status entry per purpose.
STATUS_ENTRIES_MAX = len(get_args(StatusPurpose))
ISSUER_KEY_PREFIX = b"issuer/"
ANCHOR_KEY_PREFIX = b"anchor/"
LIST_KEY_PREFIX = b"list/"
BITS_KEY_PREFIX = b"bits/"
SLOT_KEY_PREFIX = b"slot/"
COUNT_KEY_PREFIX = b"count/"
# The version that kept no counts: a chain upgraded from it runs it until the upgrade.
UNCOUNTED_VERSION = "1.0.0"

# A list id is public: lower-case letters, digits and '-', and never personal data.
ListId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$"), PublicText]
Hash = Annotated[bytes, Field(min_length=HASH_BYTES, max_length=HASH_BYTES)]
QueryHash = Annotated[HexBytes, Field(min_length=HASH_BYTES, max_length=HASH_BYTES)]
Index = Annotated[int, Field(ge=0, lt=STATUS_LIST_ENTRIES_MAX)]


class StatusRef(StrictArgs):
    list_id: ListId
    index: Index


class RegisterIssuerArgs(StrictArgs):
    did: DidText
    type: CredentialType


class IssueArgs(StrictArgs):
    credential_hash: Hash
    type: CredentialType
    issuer: DidText
    status: Annotated[list[StatusRef], Field(max_length=STATUS_ENTRIES_MAX)] = Field(
        default_factory=list)


class CreateStatusListArgs(StrictArgs):
    list_id: ListId
    issuer: DidText
    purpose: StatusPurpose
    size: Annotated[int, Field(ge=STATUS_LIST_ENTRIES_MIN, le=STATUS_LIST_ENTRIES_MAX)]


class SetStatusArgs(StrictArgs):
    list_id: ListId
    index: Index
    value: bool


class AnchorStatusListArgs(StrictArgs):
    list_id: ListId
    sha256: Hash


class StatusQuery(QueryArgs):
    list_id: ListId
    index: Annotated[int, Field(ge=0)]


class ListQuery(QueryArgs):
    list_id: ListId


class AnchorQuery(QueryArgs):
    hash: QueryHash


class IssuerQuery(QueryArgs):
    did: DidText


class CountQuery(QueryArgs):
    type: CredentialType


def compute_role(credential_type: str) -> str:
    """Return the role that lets a key issue credentials of `credential_type`."""
    return ROLE_PREFIX + credential_type


def compute_credential_hash(credential_bytes: bytes) -> bytes:
    """Return the anchor hash of a signed credential: SHA-256 of its file's bytes."""
    return sha256(credential_bytes)


def compute_chunk_key(list_id: str, index: int) -> bytes:
    """Return the key of the chunk of set bits that holds `index` of list `list_id`."""
    return BITS_KEY_PREFIX + list_id.encode() + b"/" + \
        (index // CHUNK_ENTRIES).to_bytes(4, "big")


def compute_slot_key(list_id: str, index: int) -> bytes:
    """Return the key recording which credential was given index `index` of a list."""
    return SLOT_KEY_PREFIX + list_id.encode() + b"/" + index.to_bytes(4, "big")


def compute_count_key(credential_type: str) -> bytes:
    """Return the key of the anchored and revoked counts of `credential_type`."""
    return COUNT_KEY_PREFIX + credential_type.encode()


def get_type_count(state: ServiceState, credential_type: str) -> dict[str, int]:
    """Return how many credentials of a type were anchored and how many of them revoked."""
    return state.get(compute_count_key(credential_type)) or {"anchored": 0, "revoked": 0}


def is_counting_version(version: str | None) -> bool:
    """Return True when the chain runs a version of `vc` that keeps the counts (1.1.0 on)."""
    return version is not None and version != UNCOUNTED_VERSION


def add_to_count(ctx: TxContext, credential_type: str, name: str) -> None:
    """Count one more anchored or revoked credential of a type."""
    counts = get_type_count(ctx.state, credential_type)
    counts[name] += 1
    ctx.state.set(compute_count_key(credential_type), counts)


def is_revoked(state: ServiceState, status: list[dict[str, Any]]) -> bool:
    """Return True if a credential's revocation entry names a set bit."""
    return any(entry["purpose"] == "revocation" and
               get_set_height(state, entry["list_id"], entry["index"]) is not None
               for entry in status)


def get_set_height(state: ServiceState, list_id: str, index: int) -> int | None:
    """Return the height at which bit `index` of a list was set, or None if it is clear."""
    for entry_index, height in state.get(compute_chunk_key(list_id, index)) or []:
        if entry_index == index:
            return height
    return None


def require_authentication_key(ctx: TxContext, did: str) -> None:
    """Refuse a signer that is not a current authentication key of the active DID `did`."""
    did_state = ctx.read_service_state(DID_SERVICE)
    _, current = require_active(did_state, did, "the issuer DID")
    document = compute_document(did, current)
    for method_id in document["authentication"]:
        try:
            if find_verification_key(document, method_id, "authentication") == ctx.signer:
                return
        except VerificationError:
            continue
    raise ServiceError(f"the signer is not a current authentication key of {did}")


def require_list(ctx: TxContext, list_id: str) -> dict[str, Any]:
    """Return a status list's record, refusing an unknown list."""
    record = ctx.state.get(LIST_KEY_PREFIX + list_id.encode())
    if record is None:
        raise ServiceError(f"status list {list_id!r} does not exist")
    return record


def require_index(record: dict[str, Any], index: int) -> None:
    """Refuse an index outside a status list."""
    if not 0 <= index < record["size"]:
        raise ServiceError(f"index {index} is outside status list {record['list_id']!r} "
                           f"(0 to {record['size'] - 1})")


def describe_list_anchor(record: dict[str, Any]) -> dict[str, Any] | None:
    """Return a list's anchored credential hash, its height, and whether it is current (no
    bit changed since), or None if none was anchored."""
    anchor = record["anchor"]
    return None if anchor is None else {**anchor,
                                        "current": anchor["changes"] == record["changes"]}


def split_list_key(key: bytes, prefix: bytes) -> tuple[str, int]:
    """Return the list id and the 4-byte number of a `bits/` or `slot/` key."""
    body = key[len(prefix):]
    return body[:-5].decode(), int.from_bytes(body[-4:], "big")


def compute_list_problems(record: dict[str, Any], indices: list[int]) -> list[str]:
    """Return what is wrong with a list's set bits (-1 marks a malformed chunk)."""
    problems = []
    if -1 in indices:
        problems.append("a chunk of set bits is unsorted, repeats or holds another chunk's "
                        "index")
    if any(not 0 <= index < record["size"] for index in indices if index != -1):
        problems.append(f"a set bit lies outside its {record['size']} entries")
    count = len([index for index in indices if index != -1])
    if count != record["set_count"]:
        problems.append(f"{count} bits are set but set_count says {record['set_count']}")
    return problems


def compute_count_problems(anchors: Iterable[dict[str, Any]],
                           set_indices: set[tuple[str, int]],
                           counts: dict[str, dict[str, int]]) -> list[str]:
    """Return each type whose counts differ from its counted anchors and their revocations."""
    found: dict[str, dict[str, int]] = {}
    for anchor in anchors:
        if not anchor.get("counted"):
            continue
        tally = found.setdefault(anchor["type"], {"anchored": 0, "revoked": 0})
        tally["anchored"] += 1
        tally["revoked"] += any(entry["purpose"] == "revocation" and
                                (entry["list_id"], entry["index"]) in set_indices
                                for entry in anchor["status"])
    return [f"{kind} credentials: counts say {counts.get(kind)} but the anchors give "
            f"{found.get(kind)}" for kind in sorted(set(found) | set(counts))
            if counts.get(kind) != found.get(kind)]


class VcService(Service):
    """Verifiable credentials: issuers by type, credential anchors, status lists."""

    name = "vc"
    version = "1.1.0"

    @tx_method(args=RegisterIssuerArgs, roles=None)
    def register_issuer(self, ctx: TxContext, args: RegisterIssuerArgs) -> None:
        """Bind an issuer DID to a credential type; the signer holds the type's role and is
        a current authentication key of the DID."""
        role = compute_role(args.type)
        if not ctx.has_role(ctx.signer, role):
            raise ServiceError(f"the signer does not hold {role}, which registering an "
                               f"issuer of {args.type} credentials requires")
        require_authentication_key(ctx, args.did)
        key = ISSUER_KEY_PREFIX + args.did.encode()
        record = ctx.state.get(key) or {"did": args.did, "types": {}}
        if args.type in record["types"]:
            raise ServiceError(f"{args.did} is already an issuer of {args.type} credentials")
        record["types"][args.type] = {"height": ctx.height, "key": ctx.signer}
        ctx.state.set(key, record)
        ctx.emit("vc.issuer_registered", did=args.did, type=args.type, key=ctx.signer)

    @tx_method(args=IssueArgs, roles=None)
    def issue(self, ctx: TxContext, args: IssueArgs) -> None:
        """Anchor a signed credential's hash with its type, issuer and status entries."""
        role = compute_role(args.type)
        if not ctx.has_role(ctx.signer, role):
            raise ServiceError(f"the signer does not hold {role} at height {ctx.height}: it "
                               f"may not issue {args.type} credentials")
        issuer = ctx.state.get(ISSUER_KEY_PREFIX + args.issuer.encode())
        if issuer is None or args.type not in issuer["types"]:
            raise ServiceError(f"{args.issuer} is not a registered issuer of {args.type} "
                               f"credentials (register_issuer first)")
        require_authentication_key(ctx, args.issuer)
        key = ANCHOR_KEY_PREFIX + args.credential_hash
        if ctx.state.has(key):
            raise ServiceError(f"credential {args.credential_hash.hex()} is already anchored")
        status = self.check_status_refs(ctx, args.issuer, args.status)
        for entry in status:
            ctx.state.set(compute_slot_key(entry["list_id"], entry["index"]),
                          args.credential_hash)
        anchor = {"hash": args.credential_hash, "type": args.type, "issuer": args.issuer,
                  "signer": ctx.signer, "height": ctx.height, "time_ms": ctx.time_ms,
                  "tx": ctx.tx_hash, "status": status}
        if is_counting_version(ctx.get_service_version()):
            anchor["counted"] = True
            add_to_count(ctx, args.type, "anchored")
            if is_revoked(ctx.state, status):
                add_to_count(ctx, args.type, "revoked")
        ctx.state.set(key, anchor)
        ctx.emit("vc.issued", hash=args.credential_hash, type=args.type, issuer=args.issuer)

    def check_status_refs(self, ctx: TxContext, issuer: str,
                          refs: list[StatusRef]) -> list[dict[str, Any]]:
        """Return a credential's status entries as stored, refusing a list that is unknown,
        not the issuer's, of a repeated purpose, or too small for the index."""
        entries: list[dict[str, Any]] = []
        for ref in refs:
            record = require_list(ctx, ref.list_id)
            if record["issuer"] != issuer:
                raise ServiceError(f"status list {ref.list_id!r} belongs to "
                                   f"{record['issuer']}, not to {issuer}")
            require_index(record, ref.index)
            if any(entry["purpose"] == record["purpose"] for entry in entries):
                raise ServiceError(f"a credential has one status entry per purpose; "
                                   f"{record['purpose']} is given twice")
            if ctx.state.has(compute_slot_key(ref.list_id, ref.index)):
                raise ServiceError(f"index {ref.index} of {ref.list_id!r} is already "
                                   f"assigned to another credential; draw another")
            entries.append({"list_id": ref.list_id, "index": ref.index,
                            "purpose": record["purpose"]})
        return entries

    @tx_method(args=CreateStatusListArgs, roles=None)
    def create_status_list(self, ctx: TxContext, args: CreateStatusListArgs) -> None:
        """Create a status list of a registered issuer, for revocation or suspension."""
        if not ctx.state.has(ISSUER_KEY_PREFIX + args.issuer.encode()):
            raise ServiceError(f"{args.issuer} is not a registered issuer")
        require_authentication_key(ctx, args.issuer)
        key = LIST_KEY_PREFIX + args.list_id.encode()
        if ctx.state.has(key):
            raise ServiceError(f"status list {args.list_id!r} already exists")
        ctx.state.set(key, {"list_id": args.list_id, "issuer": args.issuer,
                            "purpose": args.purpose, "size": args.size,
                            "created_height": ctx.height, "set_count": 0, "changes": 0,
                            "updated_height": ctx.height, "anchor": None})
        ctx.emit("vc.status_list_created", list_id=args.list_id, issuer=args.issuer,
                 purpose=args.purpose)

    @tx_method(args=SetStatusArgs, roles=None)
    def set_status(self, ctx: TxContext, args: SetStatusArgs) -> None:
        """Set or clear one bit of a status list; a revocation bit is never cleared."""
        record = require_list(ctx, args.list_id)
        require_authentication_key(ctx, record["issuer"])
        require_index(record, args.index)
        chunk_key = compute_chunk_key(args.list_id, args.index)
        chunk = ctx.state.get(chunk_key) or []
        was_set = any(index == args.index for index, _ in chunk)
        if args.value and was_set:
            raise ServiceError(f"index {args.index} of {args.list_id!r} is already set")
        if not args.value and record["purpose"] == "revocation":
            raise ServiceError("a revocation is final: its bit cannot be cleared")
        if not args.value and not was_set:
            raise ServiceError(f"index {args.index} of {args.list_id!r} is not set")
        if args.value:
            chunk = sorted([*chunk, [args.index, ctx.height]])
        else:
            chunk = [entry for entry in chunk if entry[0] != args.index]
        if chunk:
            ctx.state.set(chunk_key, chunk)
        else:
            ctx.state.delete(chunk_key)
        if args.value and record["purpose"] == "revocation":
            self.count_revocation(ctx, args.list_id, args.index)
        record["set_count"] += 1 if args.value else -1
        record["changes"] += 1
        record["updated_height"] = ctx.height
        ctx.state.set(LIST_KEY_PREFIX + args.list_id.encode(), record)
        ctx.emit("vc.status_set", list_id=args.list_id, index=args.index, value=args.value)

    def count_revocation(self, ctx: TxContext, list_id: str, index: int) -> None:
        """Count the revocation of the counted credential given `index` of a list."""
        credential_hash = ctx.state.get(compute_slot_key(list_id, index))
        anchor = None if credential_hash is None else \
            ctx.state.get(ANCHOR_KEY_PREFIX + credential_hash)
        if anchor is not None and anchor.get("counted"):
            add_to_count(ctx, anchor["type"], "revoked")

    @tx_method(args=AnchorStatusListArgs, roles=None)
    def anchor_status_list(self, ctx: TxContext, args: AnchorStatusListArgs) -> None:
        """Anchor the SHA-256 of the signed BitstringStatusListCredential of a list's bits."""
        record = require_list(ctx, args.list_id)
        require_authentication_key(ctx, record["issuer"])
        record["anchor"] = {"sha256": args.sha256, "height": ctx.height,
                            "changes": record["changes"]}
        ctx.state.set(LIST_KEY_PREFIX + args.list_id.encode(), record)
        ctx.emit("vc.status_list_anchored", list_id=args.list_id, sha256=args.sha256)

    def check_invariants(self, entries: Iterable[tuple[bytes, Any]]) -> list[str]:
        """Check each status list's set bits (inside the list, in their chunk, sorted,
        counted in `set_count`), that every given index names an anchored credential
        whose status entries list it, and each type's counts."""
        lists: dict[str, dict[str, Any]] = {}
        anchors: dict[bytes, dict[str, Any]] = {}
        set_bits: dict[str, list[int]] = {}
        slots: list[tuple[str, int, bytes]] = []
        counts: dict[str, dict[str, int]] = {}
        for key, value in entries:
            if key.startswith(COUNT_KEY_PREFIX):
                counts[key[len(COUNT_KEY_PREFIX):].decode()] = value
            elif key.startswith(LIST_KEY_PREFIX):
                lists[key[len(LIST_KEY_PREFIX):].decode()] = value
            elif key.startswith(ANCHOR_KEY_PREFIX):
                anchors[key[len(ANCHOR_KEY_PREFIX):]] = value
            elif key.startswith(BITS_KEY_PREFIX):
                list_id, chunk = split_list_key(key, BITS_KEY_PREFIX)
                indices = [index for index, _ in value]
                if indices != sorted(set(indices)) or any(
                        index // CHUNK_ENTRIES != chunk for index in indices):
                    set_bits.setdefault(list_id, []).append(-1)
                set_bits.setdefault(list_id, []).extend(indices)
            elif key.startswith(SLOT_KEY_PREFIX):
                list_id, index = split_list_key(key, SLOT_KEY_PREFIX)
                slots.append((list_id, index, value))
        set_indices = {(list_id, index) for list_id, indices in set_bits.items()
                       for index in indices}
        problems = compute_count_problems(anchors.values(), set_indices, counts)
        problems += [f"status list {list_id!r}: {problem}"
                    for list_id, record in sorted(lists.items())
                    for problem in compute_list_problems(record, set_bits.pop(list_id, []))]
        problems += [f"set bits of an unknown status list {list_id!r}" for list_id in set_bits]
        for list_id, index, credential_hash in slots:
            anchor = anchors.get(credential_hash)
            if anchor is None or {"list_id": list_id, "index": index} not in [
                    {"list_id": entry["list_id"], "index": entry["index"]}
                    for entry in anchor["status"]]:
                problems.append(f"index {index} of {list_id!r} names credential "
                                f"{credential_hash.hex()}, whose anchor does not list it")
        return problems

    # ------------------------------------------------------------------ queries

    @query(args=StatusQuery)
    def status(self, state: ServiceState, args: StatusQuery) -> dict[str, Any] | None:
        """Return one index of a status list: set or not, since which height."""
        record = state.get(LIST_KEY_PREFIX + args.list_id.encode())
        if record is None or args.index >= record["size"]:
            return None
        height = get_set_height(state, args.list_id, args.index)
        return {"list_id": args.list_id, "index": args.index, "purpose": record["purpose"],
                "issuer": record["issuer"], "set": height is not None, "set_height": height,
                "credential": state.get(compute_slot_key(args.list_id, args.index)),
                "anchor": describe_list_anchor(record)}

    @query(args=ListQuery)
    def status_list(self, state: ServiceState, args: ListQuery) -> dict[str, Any] | None:
        """Return a status list: purpose, size, the set indices and the anchored hash."""
        record = state.get(LIST_KEY_PREFIX + args.list_id.encode())
        if record is None:
            return None
        indices: list[int] = []
        for chunk in range((record["size"] + CHUNK_ENTRIES - 1) // CHUNK_ENTRIES):
            stored = state.get(compute_chunk_key(args.list_id, chunk * CHUNK_ENTRIES))
            indices.extend(index for index, _ in stored or [])
        return {**record, "set_indices": indices, "anchor": describe_list_anchor(record)}

    @query(args=AnchorQuery)
    def anchor(self, state: ServiceState, args: AnchorQuery) -> dict[str, Any] | None:
        """Return a credential's anchor: type, issuer, signer, issuance height, status."""
        return state.get(ANCHOR_KEY_PREFIX + args.hash)

    @query(args=CountQuery)
    def count(self, state: ServiceState, args: CountQuery) -> dict[str, int]:
        """Return how many credentials of a type were anchored, revoked, and are live."""
        counts = get_type_count(state, args.type)
        return {**counts, "live": counts["anchored"] - counts["revoked"]}

    @query(args=IssuerQuery)
    def issuer(self, state: ServiceState, args: IssuerQuery) -> dict[str, Any] | None:
        """Return an issuer DID's registered credential types with their heights and keys."""
        return state.get(ISSUER_KEY_PREFIX + args.did.encode())
