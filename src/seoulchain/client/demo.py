"""Demo city data: documents that Seoul's agencies might notarise, anchored through the API.

The documents are generated text files written under HOME/demo-docs/ so that a newcomer can
look one up (`seoulchain query notary HOME/demo-docs/<file> --home HOME`), correct one, or
alter a byte and see the lookup fail. Only their hashes go on chain. Each document is
anchored by the agency that issues it, with that agency's own key (the genesis names the
agencies: `seoulchain query` and `verify` show who anchored). Seeding is idempotent: a rerun
skips documents that are already anchored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from seoulchain.client.http import NodeClient
from seoulchain.crypto import SigningKey, sha256
from seoulchain.ledger.types import Transaction
from seoulchain.node.agencies import OPERATOR_KEY_NAME, load_agency_keys
from seoulchain.node.home import Home

EXPIRY_BLOCKS = 100


@dataclass(frozen=True)
class DemoDocument:
    file_name: str
    kind: str
    agency: str  # the genesis name of the agency that anchors it (node/agencies.py)
    office: str
    text: str


DEMO_DOCUMENTS = [
    DemoDocument("building-permit-2026-0042.txt", "building-permit", "mapo-gu", "Mapo-gu Office",
                 "Building permit 2026-0042: 3-storey community library, lot 112-7, Mapo-gu."),
    DemoDocument("business-licence-2026-1187.txt", "business-licence", "jongno-gu",
                 "Jongno-gu Office",
                 "Business licence 2026-1187: bakery, 41 Insadong-gil, Jongno-gu."),
    DemoDocument("vehicle-inspection-2026-5531.txt", "vehicle-inspection", "city-hall",
                 "Seoul Vehicle Inspection Center",
                 "Inspection 2026-5531: passenger car, odometer 48,211 km, passed."),
    DemoDocument("graduation-certificate-2026-0917.txt", "certificate", "city-hall",
                 "Seoul Metropolitan Office of Education",
                 "Certificate of completion 2026-0917: vocational training, 240 hours."),
    DemoDocument("donation-receipt-2026-3310.txt", "donation-receipt", "city-hall",
                 "Seoul Welfare Foundation",
                 "Donation receipt 2026-3310: 500,000 KRW to the winter shelter fund."),
    DemoDocument("road-contract-2026-0077.txt", "contract", "gangnam-gu",
                 "Seoul Infrastructure Division",
                 "Sub-contract payment record 2026-0077: pavement repair, Gangnam-daero."),
]
CORRECTION = DemoDocument("building-permit-2026-0042-rev1.txt", "building-permit", "mapo-gu",
                          "Mapo-gu Office",
                          "Building permit 2026-0042 (revised): 3-storey community library, "
                          "lot 112-8, Mapo-gu.")


def write_documents(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for document in [*DEMO_DOCUMENTS, CORRECTION]:
        path = directory / document.file_name
        if not path.exists():
            path.write_text(document.text + "\n")


def seed_demo_data(client: NodeClient, keys: Mapping[str, SigningKey], fallback: SigningKey,
                   directory: Path, report: Callable[[str], None]) -> int:
    """Anchor the demo documents and one correction; return how many txs were committed.

    `keys` holds the agencies' keys by genesis name; a document whose agency has none (a
    home made before agencies were named) is signed with `fallback`.
    """
    write_documents(directory)
    status = client.get_status()
    chain_id = status["chain_id"]
    committed = 0
    for document in DEMO_DOCUMENTS:
        doc_hash = sha256((directory / document.file_name).read_bytes())
        if client.query("notary", "document", doc_hash=doc_hash.hex())["result"] is not None:
            continue
        args = {"doc_hash": doc_hash, "kind": document.kind,
                "metadata": {"office": document.office}}
        key = keys.get(document.agency, fallback)
        committed += submit(client, key, chain_id, "anchor", args)
        report(f"anchored {document.file_name} ({document.office}, signed by "
               f"{document.agency if document.agency in keys else 'the operator key'})")
    old_hash = sha256((directory / DEMO_DOCUMENTS[0].file_name).read_bytes())
    record = client.query("notary", "document", doc_hash=old_hash.hex())["result"]
    if record is not None and record["superseded_by"] is None:
        new_hash = sha256((directory / CORRECTION.file_name).read_bytes())
        args = {"old_hash": old_hash, "new_hash": new_hash,
                "reason": "lot number corrected from 112-7 to 112-8",
                "metadata": {"office": CORRECTION.office}}
        issuer = next((key for key in (keys.get(CORRECTION.agency), fallback)
                       if key is not None and key.public_key.hex() == record["issuer"]), None)
        if issuer is None:
            report(f"not correcting {DEMO_DOCUMENTS[0].file_name}: its issuer's key is not here")
            return committed
        committed += submit(client, issuer, chain_id, "supersede", args)
        report(f"corrected {DEMO_DOCUMENTS[0].file_name} -> {CORRECTION.file_name}")
    return committed


def seed_demo_from_home(client: NodeClient, home: Home, directory: Path,
                        report: Callable[[str], None]) -> int:
    """Seed the demo data with the agencies' keys found in a home's (or devnet's) keys/."""
    keys = load_agency_keys(home.keys_dir, home.load_genesis())
    return seed_demo_data(client, keys, home.load_key(OPERATOR_KEY_NAME), directory, report)


def submit(client: NodeClient, key: SigningKey, chain_id: str, method: str,
           args: dict[str, object]) -> int:
    height = client.get_status()["height"]
    tx = Transaction.create(key, chain_id=chain_id, nonce=client.get_next_nonce(key.public_key),
                            expiry_height=height + EXPIRY_BLOCKS, service="notary",
                            method=method, args=args)
    client.submit(tx)
    client.wait_for_commit(tx.hash())
    return 1
