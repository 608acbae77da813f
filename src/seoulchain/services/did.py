"""DIDs of the `did:seoul` method: create, rotate keys, change controller, deactivate, resolve.

Theory of operation. A registrar (role `did.registrar`, the agency that issues citizen
cards) creates a DID for a subject's Ed25519 public key, with a salted commitment to the
subject's record that the vault computed off chain (SHA-256 over a secret salt and the
record): the chain holds keys and that commitment, never a name, resident registration
number, phone number or address. The DID's identifier is derived from the create
transaction's hash (`compute_did`), so it is fixed before the transaction is sent and no
two creates can share one.

Every change makes a new version of the document: versions are never overwritten, each
keeps the height and block time of the transaction that made it, so `resolve(did, height)`
answers as of any height, as DID Core's `versionId`/`versionTime` resolution does. Keys,
controller changes and deactivation are authorised by a current authentication key of the
DID's controller (the DID itself unless set otherwise); a key rotated away authorises
nothing any more. Deactivation is final. The record commitment is replaced with
`supersede_record` (by a registrar or the controller); the old one stays in the history,
marked superseded by the new one.

State (namespace `did`): `did/<id>` → head {versions, next_key_index, commitments};
`ver/<id>/<version, 8 digits>` → a version {version, height, time_ms, tx, controller, keys,
deactivated}. Documents are built from versions by `compute_document`.

The method's specification: docs/spec/did-seoul.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Annotated, Any, Literal

import base58
from pydantic import Field

from seoulchain.crypto.hashing import sha256
from seoulchain.crypto.keys import PUBLIC_KEY_BYTES
from seoulchain.crypto.multikey import (
    MultikeyError,
    decode_multikey,
    encode_multikey,
    is_valid_ed25519_public_key,
)
from seoulchain.errors import VerificationError
from seoulchain.execution.service import (
    QueryArgs,
    Service,
    ServiceError,
    ServiceState,
    StrictArgs,
    TxContext,
    query,
    tx_method,
)

REGISTRAR_ROLE = "did.registrar"
METHOD_PREFIX = "did:seoul:"
# The identifier is base58btc of the first 16 bytes of SHA-256(create tx hash): 128 bits,
# as a UUID, far beyond any collision among a city's DIDs.
DID_ID_BYTES = 16
# base58btc of 16 bytes is 16 (all zero bytes) to 22 characters.
DID_ID_CHARS_MIN = 16
DID_ID_CHARS_MAX = 22
DID_CHARS_MAX = len(METHOD_PREFIX) + DID_ID_CHARS_MAX
# A verification method id: the DID, "#key-", and a key number below 10^6 (see below).
VERIFICATION_METHOD_ID_CHARS_MAX = DID_CHARS_MAX + len("#key-") + 6
# Keys one DID document holds at once: a citizen card plus a few devices. With it the
# largest document stays near 1.5 KiB, well inside one state value (64 KiB).
KEYS_PER_DID_MAX = 8
# Versions of one DID's document: a key rotation for each card reissue or lost device over
# a lifetime, with room to spare. The last version is kept for deactivation, so a DID at
# its limit can still be deactivated (and a new one created).
VERSIONS_PER_DID_MAX = 64
# Record commitments one DID keeps in its history (the current one and those it replaced):
# one per correction of a person's record; each entry is about 150 bytes of the head.
COMMITMENTS_PER_DID_MAX = 32
COMMITMENT_BYTES = 32
# Why a record commitment is replaced: fixed codes, so no free text (and no personal data)
# reaches the chain. correction: the record had an error; update: the person's record
# changed (a move, a new name); reissue: the vault re-salted the record (the old salt is
# retired); legal: a court or statutory order.
SUPERSEDE_REASONS = ("correction", "update", "reissue", "legal")
# Verification relationships `find_verification_key` looks keys up in.
RELATIONSHIPS = ("authentication", "assertionMethod")
DID_CONTEXTS = ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"]
DID_CONTENT_TYPE = "application/did+ld+json"
# XML datetimes stop at year 9999: block times at or past 10000-01-01 are refused.
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DATETIME_MS_LIMIT = 253_402_300_800_000
HEAD_PREFIX = b"did/"
VERSION_PREFIX = b"ver/"

DidText = Annotated[str, Field(min_length=len(METHOD_PREFIX) + DID_ID_CHARS_MIN,
                               max_length=DID_CHARS_MAX,
                               pattern=r"^did:seoul:[1-9A-HJ-NP-Za-km-z]+$")]
PublicKey = Annotated[bytes, Field(min_length=PUBLIC_KEY_BYTES, max_length=PUBLIC_KEY_BYTES)]
Commitment = Annotated[bytes, Field(min_length=COMMITMENT_BYTES, max_length=COMMITMENT_BYTES)]
KeyId = Annotated[str, Field(min_length=1, max_length=VERIFICATION_METHOD_ID_CHARS_MAX)]


class DidKeyError(VerificationError):
    """A verification method is not in a document, or not in the asked relationship."""


class CreateArgs(StrictArgs):
    public_key: PublicKey
    record_commitment: Commitment
    controller: DidText | None = None


class RotateArgs(StrictArgs):
    did: DidText
    new_public_key: PublicKey
    retire_key_id: KeyId | None = None


class SetControllerArgs(StrictArgs):
    did: DidText
    controller: DidText


class DeactivateArgs(StrictArgs):
    did: DidText


class SupersedeRecordArgs(StrictArgs):
    did: DidText
    new_commitment: Commitment
    reason: Literal["correction", "update", "reissue", "legal"]


class ResolveQuery(QueryArgs):
    did: Annotated[str, Field(max_length=VERIFICATION_METHOD_ID_CHARS_MAX)]
    height: Annotated[int, Field(ge=0)] | None = None


class HistoryQuery(QueryArgs):
    did: DidText


def compute_did(tx_hash: bytes) -> str:
    """Return the DID a create transaction makes: base58btc(SHA-256(tx hash)[:16])."""
    return METHOD_PREFIX + base58.b58encode(sha256(tx_hash)[:DID_ID_BYTES]).decode()


def parse_did(did: str) -> bytes | None:
    """Return the 16 identifier bytes of a well-formed `did:seoul` DID, else None.

    The identifier must be the canonical base58btc of exactly 16 bytes.
    """
    if not isinstance(did, str) or not did.startswith(METHOD_PREFIX):
        return None
    text = did[len(METHOD_PREFIX):]
    if not DID_ID_CHARS_MIN <= len(text) <= DID_ID_CHARS_MAX:
        return None
    try:
        raw = base58.b58decode(text)
    except ValueError:
        return None
    if len(raw) != DID_ID_BYTES or base58.b58encode(raw).decode() != text:
        return None
    return raw


def compute_key_id(did: str, index: int) -> str:
    """Return the id of a DID's key number `index`: `did:seoul:...#key-<index>`."""
    return f"{did}#key-{index}"


def format_xml_datetime(time_ms: int) -> str:
    """Return a block time as DID Core's XML datetime: UTC, whole seconds, 'Z'."""
    moment = UNIX_EPOCH + timedelta(seconds=time_ms // 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def compute_document(did: str, version: dict[str, Any]) -> dict[str, Any]:
    """Return the DID Core document of one stored version (JSON: only strings and lists)."""
    methods = [{"id": compute_key_id(did, key["index"]), "type": "Multikey",
                "controller": did, "publicKeyMultibase": encode_multikey(key["public_key"])}
               for key in version["keys"]]
    ids = [method["id"] for method in methods]
    return {"@context": list(DID_CONTEXTS), "id": did, "controller": version["controller"],
            "verificationMethod": methods, "authentication": list(ids),
            "assertionMethod": list(ids)}


def find_verification_key(document: dict[str, Any], verification_method_id: str,
                          relationship: str) -> bytes:
    """Return the Ed25519 key of `verification_method_id` if `document` lists it under
    `relationship` ("assertionMethod" or "authentication"), else raise `DidKeyError`."""
    if relationship not in RELATIONSHIPS:
        raise DidKeyError(f"unknown verification relationship {relationship!r}; expected "
                          f"one of {', '.join(RELATIONSHIPS)}")
    did = document.get("id") if isinstance(document, dict) else None
    if not isinstance(did, str) or not isinstance(verification_method_id, str) or \
            verification_method_id.partition("#")[0] != did:
        raise DidKeyError(f"{verification_method_id!r} is not a verification method of "
                          f"the document of {did!r}")
    methods = {method.get("id"): method for method in get_list(document, "verificationMethod")
               if isinstance(method, dict)}
    for entry in get_list(document, relationship):
        if isinstance(entry, dict):
            methods.setdefault(entry.get("id"), entry)
            entry = entry.get("id")
        if isinstance(entry, str) and entry.startswith("#"):
            entry = did + entry
        if entry == verification_method_id:
            return decode_method_key(methods.get(verification_method_id),
                                     verification_method_id)
    raise DidKeyError(f"{verification_method_id} is not in the {relationship} of {did} "
                      f"(a key rotated away or never added)")


def get_list(document: dict[str, Any], name: str) -> list[Any]:
    """Return a document's list property, or [] when it is absent or not a list."""
    value = document.get(name)
    return value if isinstance(value, list) else []


def decode_method_key(method: dict[str, Any] | None, method_id: str) -> bytes:
    """Return the Ed25519 key of a Multikey verification method, or raise `DidKeyError`."""
    if method is None or method.get("type") != "Multikey":
        raise DidKeyError(f"{method_id} is not a Multikey verification method of the document")
    try:
        return decode_multikey(method.get("publicKeyMultibase", ""))
    except MultikeyError as exc:
        raise DidKeyError(f"{method_id}: {exc}") from None


def compute_head_key(did: str) -> bytes:
    return HEAD_PREFIX + did.encode()


def compute_version_key(did: str, version: int) -> bytes:
    return VERSION_PREFIX + did.encode() + b"/" + f"{version:08d}".encode()


def get_version(state: ServiceState, did: str, version: int) -> dict[str, Any]:
    """Return stored version `version` (1-based) of a DID's document."""
    stored = state.get(compute_version_key(did, version))
    assert stored is not None, f"{did} lacks version {version}"
    return stored


def find_version_at(state: ServiceState, did: str, count: int, height: int) -> int:
    """Return the last version made at or before `height` (0: none yet), by bisection."""
    low, high = 0, count
    while low < high:
        middle = (low + high + 1) // 2
        if get_version(state, did, middle)["height"] <= height:
            low = middle
        else:
            high = middle - 1
    return low


def build_not_found(error: str, message: str) -> dict[str, Any]:
    """Return a DID Resolution result that carries an error (notFound, invalidDid...)."""
    return {"didDocument": None, "didDocumentMetadata": {},
            "didResolutionMetadata": {"error": error, "errorMessage": message}}


def build_metadata(state: ServiceState, did: str, count: int,
                   version: dict[str, Any]) -> dict[str, Any]:
    """Return DID Core document metadata of `version`, with the heights beside the times."""
    first = version if version["version"] == 1 else get_version(state, did, 1)
    metadata: dict[str, Any] = {
        "created": format_xml_datetime(first["time_ms"]), "createdHeight": first["height"],
        "deactivated": version["deactivated"], "versionId": str(version["version"]),
    }
    if version["version"] > 1:
        metadata.update(updated=format_xml_datetime(version["time_ms"]),
                        updatedHeight=version["height"])
    if version["version"] < count:
        following = get_version(state, did, version["version"] + 1)
        metadata.update(nextUpdate=format_xml_datetime(following["time_ms"]),
                        nextUpdateHeight=following["height"],
                        nextVersionId=str(following["version"]))
    return metadata


class DidService(Service):
    """DIDs of the did:seoul method: keys, controller, deactivation, record commitments."""

    name = "did"
    version = "1.0.0"

    @tx_method(args=CreateArgs, roles={REGISTRAR_ROLE})
    def create(self, ctx: TxContext, args: CreateArgs) -> None:
        """Create a DID for a subject's key and record commitment (a registrar's issuance)."""
        check_block_time(ctx)
        check_new_key(args.public_key)
        did = compute_did(ctx.tx_hash)
        if ctx.state.has(compute_head_key(did)):
            raise ServiceError(f"{did} already exists")
        controller = did if args.controller in (None, did) else args.controller
        if controller != did:
            require_active(ctx.state, controller, "the controller")
        ctx.state.set(compute_head_key(did), {
            "versions": 0, "next_key_index": 2,
            "commitments": [make_commitment_entry(ctx, args.record_commitment, None)]})
        self.put_version(ctx, did, controller, [{"index": 1, "public_key": args.public_key}],
                         deactivated=False)
        ctx.emit("did.created", did=did, registrar=ctx.signer, controller=controller)

    @tx_method(args=RotateArgs, roles=None)
    def rotate(self, ctx: TxContext, args: RotateArgs) -> None:
        """Add a key to a DID and retire an old one (or add only); the controller signs."""
        head, current = require_update_by_controller(ctx, args.did)
        check_new_key(args.new_public_key)
        if any(key["public_key"] == args.new_public_key for key in current["keys"]):
            raise ServiceError(f"the key is already in the document of {args.did}")
        keys = list(current["keys"])
        if args.retire_key_id is not None:
            index = parse_key_index(args.did, args.retire_key_id)
            if all(key["index"] != index for key in keys):
                raise ServiceError(f"{compute_key_id(args.did, index)} is not a current key "
                                   f"of {args.did}")
            keys = [key for key in keys if key["index"] != index]
        if len(keys) >= KEYS_PER_DID_MAX:
            raise ServiceError(f"a DID document holds at most {KEYS_PER_DID_MAX} keys: retire "
                               f"one (retire_key_id) to add another")
        index = head["next_key_index"]
        keys.append({"index": index, "public_key": args.new_public_key})
        head["next_key_index"] = index + 1
        ctx.state.set(compute_head_key(args.did), head)
        self.put_version(ctx, args.did, current["controller"], keys, deactivated=False)
        ctx.emit("did.rotated", did=args.did, added=compute_key_id(args.did, index),
                 retired=args.retire_key_id)

    @tx_method(args=SetControllerArgs, roles=None)
    def set_controller(self, ctx: TxContext, args: SetControllerArgs) -> None:
        """Give a DID a new controller (another active DID, or itself); the controller signs."""
        _, current = require_update_by_controller(ctx, args.did)
        if args.controller == current["controller"]:
            raise ServiceError(f"{args.controller} already controls {args.did}")
        if args.controller != args.did:
            require_active(ctx.state, args.controller, "the new controller")
        self.put_version(ctx, args.did, args.controller, current["keys"], deactivated=False)
        ctx.emit("did.controller_set", did=args.did, controller=args.controller)

    @tx_method(args=DeactivateArgs, roles=None)
    def deactivate(self, ctx: TxContext, args: DeactivateArgs) -> None:
        """Deactivate a DID for good: its last version has no keys; the controller signs."""
        _, current = require_update_by_controller(ctx, args.did, deactivating=True)
        self.put_version(ctx, args.did, current["controller"], [], deactivated=True)
        ctx.emit("did.deactivated", did=args.did)

    @tx_method(args=SupersedeRecordArgs, roles=None)
    def supersede_record(self, ctx: TxContext, args: SupersedeRecordArgs) -> None:
        """Replace a DID's record commitment (a registrar or the controller signs)."""
        head, current = require_active(ctx.state, args.did, "the DID")
        if not ctx.has_role(ctx.signer, REGISTRAR_ROLE):
            require_controller_key(ctx, args.did, current)
        commitments = head["commitments"]
        if any(entry["commitment"] == args.new_commitment for entry in commitments):
            raise ServiceError("the commitment was already used by this DID: the vault salts "
                               "every new commitment afresh")
        if len(commitments) >= COMMITMENTS_PER_DID_MAX:
            raise ServiceError(f"{args.did} has reached {COMMITMENTS_PER_DID_MAX} record "
                               f"commitments; create a new DID")
        old = commitments[-1]
        old.update(superseded_by=args.new_commitment, superseded_height=ctx.height,
                   superseded_reason=args.reason)
        commitments.append(make_commitment_entry(ctx, args.new_commitment, old["commitment"]))
        ctx.state.set(compute_head_key(args.did), head)
        ctx.emit("did.record_superseded", did=args.did, reason=args.reason, signer=ctx.signer)

    def check_invariants(self, entries: Iterable[tuple[bytes, Any]]) -> list[str]:
        """Check each DID's versions (numbered 1..n, heights in order, bounded, only the
        last deactivated) and its record-commitment chain."""
        heads: dict[str, dict[str, Any]] = {}
        versions: dict[str, list[dict[str, Any]]] = {}
        for key, value in entries:
            if key.startswith(HEAD_PREFIX):
                heads[key[len(HEAD_PREFIX):].decode()] = value
            elif key.startswith(VERSION_PREFIX):
                did = key[len(VERSION_PREFIX):].decode().rpartition("/")[0]
                versions.setdefault(did, []).append(value)
        problems = [problem for did, head in sorted(heads.items())
                    for problem in compute_did_problems(did, head, versions.pop(did, []))]
        return problems + [f"{did} has versions but no head" for did in sorted(versions)]

    def put_version(self, ctx: TxContext, did: str, controller: str,
                    keys: list[dict[str, Any]], deactivated: bool) -> None:
        """Append a version of `did`'s document made by this transaction."""
        head = ctx.state.get(compute_head_key(did))
        assert head is not None
        number = head["versions"] + 1
        head["versions"] = number
        ctx.state.set(compute_head_key(did), head)
        ctx.state.set(compute_version_key(did, number), {
            "version": number, "height": ctx.height, "time_ms": ctx.time_ms,
            "tx": ctx.tx_hash, "controller": controller, "keys": keys,
            "deactivated": deactivated})

    @query(args=ResolveQuery)
    def resolve(self, state: ServiceState, args: ResolveQuery) -> dict[str, Any]:
        """Resolve a DID as of a height (default: the latest): DID Core resolution result.

        A height past the answering node's tip resolves as of the tip; the answer's height
        says which (the client helpers check it).
        """
        if not args.did.startswith("did:") or args.did.count(":") < 2:
            return build_not_found("invalidDid", f"{args.did!r} is not a DID")
        if not args.did.startswith(METHOD_PREFIX):
            return build_not_found("methodNotSupported", "only did:seoul is resolved here")
        if parse_did(args.did) is None:
            return build_not_found("invalidDid", f"{args.did!r} is not a did:seoul DID "
                                                 f"(base58btc of 16 bytes)")
        head = state.get(compute_head_key(args.did))
        if head is None:
            return build_not_found("notFound", f"{args.did} does not exist")
        count = head["versions"]
        number = count if args.height is None else find_version_at(state, args.did, count,
                                                                   args.height)
        if number == 0:
            return build_not_found("notFound", f"{args.did} did not exist yet at height "
                                               f"{args.height}")
        version = get_version(state, args.did, number)
        return {"didDocument": compute_document(args.did, version),
                "didDocumentMetadata": build_metadata(state, args.did, count, version),
                "didResolutionMetadata": {"contentType": DID_CONTENT_TYPE}}

    @query(args=HistoryQuery)
    def history(self, state: ServiceState, args: HistoryQuery) -> dict[str, Any] | None:
        """Return every version of a DID's document and its record-commitment history."""
        head = state.get(compute_head_key(args.did))
        if head is None:
            return None
        versions = []
        for number in range(1, head["versions"] + 1):
            version = get_version(state, args.did, number)
            versions.append({"versionId": str(number), "height": version["height"],
                             "time": format_xml_datetime(version["time_ms"]),
                             "time_ms": version["time_ms"], "tx": version["tx"],
                             "deactivated": version["deactivated"],
                             "didDocument": compute_document(args.did, version)})
        return {"did": args.did, "versions": versions,
                "recordCommitments": head["commitments"]}


def make_commitment_entry(ctx: TxContext, commitment: bytes,
                          supersedes: bytes | None) -> dict[str, Any]:
    """Return a record-commitment history entry made by this transaction."""
    return {"commitment": commitment, "height": ctx.height, "time_ms": ctx.time_ms,
            "tx": ctx.tx_hash, "supersedes": supersedes, "superseded_by": None,
            "superseded_height": None, "superseded_reason": None}


def check_block_time(ctx: TxContext) -> None:
    """Refuse a block time that DID Core's datetime format cannot show (year 10000 on)."""
    if ctx.time_ms >= DATETIME_MS_LIMIT:
        raise ServiceError("the block time is past year 9999, which DID metadata cannot show")


def check_new_key(public_key: bytes) -> None:
    """Refuse 32 bytes that are not a usable Ed25519 public key."""
    if not is_valid_ed25519_public_key(public_key):
        raise ServiceError("the public key is not a valid Ed25519 public key (not a point "
                           "of the curve, or of small order)")


def parse_key_index(did: str, key_id: str) -> int:
    """Return N of a key id given as `did#key-N`, `#key-N` or `key-N`."""
    fragment = key_id.removeprefix(did).removeprefix("#")
    number = fragment.removeprefix("key-")
    if fragment == number or not number.isdigit() or not number.isascii() or \
            len(number) > 6 or number.startswith("0"):
        raise ServiceError(f"{key_id!r} is not a key id of {did} (e.g. {did}#key-1)")
    return int(number)


def require_active(state: ServiceState, did: str, what: str
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return a DID's head and current version, refusing an unknown or deactivated DID."""
    head = state.get(compute_head_key(did)) if parse_did(did) is not None else None
    if head is None:
        raise ServiceError(f"{what} {did} does not exist")
    current = get_version(state, did, head["versions"])
    if current["deactivated"]:
        raise ServiceError(f"{what} {did} was deactivated at height {current['height']}")
    return head, current


def require_controller_key(ctx: TxContext, did: str, current: dict[str, Any]) -> None:
    """Refuse a signer that is not a current authentication key of the DID's controller."""
    controller = current["controller"]
    if controller == did:
        keys = current["keys"]
    else:
        _, controlling = require_active(ctx.state, controller, "the controller")
        keys = controlling["keys"]
    if all(key["public_key"] != ctx.signer for key in keys):
        raise ServiceError(f"the signer is not a current authentication key of {controller}, "
                           f"the controller of {did}")


def require_update_by_controller(ctx: TxContext, did: str, deactivating: bool = False
                                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the head and current version of a DID its controller may update now."""
    check_block_time(ctx)
    head, current = require_active(ctx.state, did, "the DID")
    require_controller_key(ctx, did, current)
    reserved = 0 if deactivating else 1  # the last version is kept for deactivation
    if head["versions"] + reserved >= VERSIONS_PER_DID_MAX:
        raise ServiceError(f"{did} has reached {VERSIONS_PER_DID_MAX - reserved} versions; "
                           f"it can only be deactivated (and a new DID created)")
    return head, current


def compute_did_problems(did: str, head: dict[str, Any],
                         versions: list[dict[str, Any]]) -> list[str]:
    """Return a description of each broken invariant of one DID (empty: all hold)."""
    problems = []
    if [version["version"] for version in versions] != list(range(1, head["versions"] + 1)):
        problems.append(f"{did}: versions are not numbered 1 to {head['versions']}")
    heights = [version["height"] for version in versions]
    if heights != sorted(heights) or len(versions) > VERSIONS_PER_DID_MAX:
        problems.append(f"{did}: version heights out of order or too many versions")
    if any(version["deactivated"] for version in versions[:-1]):
        problems.append(f"{did}: a version follows its deactivation")
    for version in versions:
        indexes = [key["index"] for key in version["keys"]]
        if len(indexes) > KEYS_PER_DID_MAX or not all(
                0 < index < head["next_key_index"] for index in indexes):
            problems.append(f"{did}: version {version['version']} has keys out of bounds")
    commitments = head["commitments"]
    linked = all(old["superseded_by"] == new["commitment"]
                 and new["supersedes"] == old["commitment"]
                 for old, new in pairwise(commitments))
    if not (linked and 1 <= len(commitments) <= COMMITMENTS_PER_DID_MAX
            and commitments[-1]["superseded_by"] is None):
        problems.append(f"{did}: the record-commitment chain is broken")
    return problems
