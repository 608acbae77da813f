"""Notary: anchor a document's hash, look it up, and correct it by superseding.

An agency (role `notary.issuer`) anchors the SHA-256 of a document with its kind and a little
public metadata. The document itself — and any personal data — never goes on chain; only its
hash. Its public fields (kind, metadata, a correction's reason) are refused when they hold a
resident registration number or a phone number (`execution/personal_data.py`): that check
is part of the argument schema, so the mempool refuses such a transaction and execution
records it as BAD_ARGS on every node alike. A record is never deleted or edited: a
correction anchors the corrected document and marks the old record as superseded, linking
both ways, so the history stays verifiable.

State (namespace `notary`): `doc/<32-byte hash>` → record map, in the layout and with the
correction chain of `services/anchoring.py` (which the issued-documents service shares).

Parameter: `notary.metadata_entries_max`, the metadata entries a record may carry (the
agencies may lower it by governance; the argument schema's METADATA_ENTRIES_MAX bounds it).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

from seoulchain.execution.personal_data import describe_kind, find_personal_data
from seoulchain.execution.platform import ParamSpec
from seoulchain.execution.service import (
    HexBytes,
    QueryArgs,
    Service,
    ServiceState,
    StrictArgs,
    TxContext,
    query,
    tx_method,
)
from seoulchain.services.anchoring import (
    DOC_HASH_BYTES,
    check_metadata_entries,
    compute_doc_key,  # noqa: F401  (the record key, importable from here as before)
    find_latest,
    get_record,
    get_supersedable,
    mark_superseded,
)
from seoulchain.services.anchoring import put_new_record as put_anchored_record

ISSUER_ROLE = "notary.issuer"
# Metadata is for public facts (a certificate number, an issuing office), not personal data.
# The schema's bound; the chain parameter notary.metadata_entries_max may set a lower one.
METADATA_ENTRIES_MAX = 16
METADATA_ENTRIES_PARAM = "notary.metadata_entries_max"
METADATA_KEY_CHARS_MAX = 32
METADATA_VALUE_CHARS_MAX = 256
KIND_CHARS_MAX = 64
REASON_CHARS_MAX = 256


def refuse_personal_data(text: str) -> str:
    """Return a public text field, or fail its validation if it holds personal data."""
    finding = find_personal_data(text)
    if finding is not None:
        raise PydanticCustomError("personal_data", describe_kind(finding.kind))
    return text


PublicText = AfterValidator(refuse_personal_data)
DocHash = Annotated[bytes, Field(min_length=DOC_HASH_BYTES, max_length=DOC_HASH_BYTES)]
Kind = Annotated[str, StringConstraints(min_length=1, max_length=KIND_CHARS_MAX), PublicText]
Metadata = Annotated[
    dict[Annotated[str, StringConstraints(min_length=1, max_length=METADATA_KEY_CHARS_MAX),
                   PublicText],
         Annotated[str, StringConstraints(max_length=METADATA_VALUE_CHARS_MAX), PublicText]],
    Field(max_length=METADATA_ENTRIES_MAX),
]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=REASON_CHARS_MAX),
                   PublicText]


class AnchorArgs(StrictArgs):
    doc_hash: DocHash
    kind: Kind
    metadata: Metadata = Field(default_factory=dict)


class SupersedeArgs(StrictArgs):
    old_hash: DocHash
    new_hash: DocHash
    reason: Reason
    kind: Kind | None = None
    metadata: Metadata = Field(default_factory=dict)


class DocumentQuery(QueryArgs):
    doc_hash: Annotated[HexBytes, Field(min_length=DOC_HASH_BYTES, max_length=DOC_HASH_BYTES)]


class NotaryService(Service):
    """Anchors document hashes and records corrections as superseding records."""

    name = "notary"
    version = "1.0.0"
    params: ClassVar[dict[str, ParamSpec]] = {"metadata_entries_max": ParamSpec(
        int, METADATA_ENTRIES_MAX, "metadata entries an anchored record may carry",
        minimum=0, maximum=METADATA_ENTRIES_MAX)}

    @tx_method(args=AnchorArgs, roles={ISSUER_ROLE})
    def anchor(self, ctx: TxContext, args: AnchorArgs) -> None:
        """Anchor a new document hash."""
        self.put_new_record(ctx, args.doc_hash, args.kind, args.metadata, supersedes=None)
        ctx.emit("notary.anchored", doc_hash=args.doc_hash, issuer=ctx.signer, kind=args.kind)

    @tx_method(args=SupersedeArgs, roles={ISSUER_ROLE})
    def supersede(self, ctx: TxContext, args: SupersedeArgs) -> None:
        """Anchor a corrected document and mark the old record as superseded by it."""
        old = get_supersedable(ctx, args.old_hash)
        kind = args.kind if args.kind is not None else old["kind"]
        self.put_new_record(ctx, args.new_hash, kind, args.metadata, supersedes=args.old_hash)
        mark_superseded(ctx, args.old_hash, old, args.new_hash, args.reason)
        ctx.emit("notary.superseded", old_hash=args.old_hash, new_hash=args.new_hash,
                 issuer=ctx.signer)

    def put_new_record(self, ctx: TxContext, doc_hash: bytes, kind: str,
                       metadata: dict[str, str], supersedes: bytes | None) -> None:
        check_metadata_entries(ctx, metadata, METADATA_ENTRIES_PARAM)
        put_anchored_record(ctx, doc_hash, kind, metadata, supersedes)

    @query(args=DocumentQuery)
    def document(self, state: ServiceState, args: DocumentQuery) -> dict[str, Any] | None:
        """Return a document's record, its status, and the latest record in its chain."""
        record = get_record(state, args.doc_hash)
        if record is None:
            return None
        latest = find_latest(state, args.doc_hash, record)
        status = "valid" if record["superseded_by"] is None else "superseded"
        return {"doc_hash": args.doc_hash, "status": status, "latest": latest, **record}
