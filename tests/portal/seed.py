"""A single-validator home with a few city records in it, for the portal's tests."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seoulchain.crypto import SigningKey
from seoulchain.ledger.types import Transaction
from seoulchain.node.home import Home, init_home
from seoulchain.node.node import Node
from seoulchain.services.did import compute_did
from tests.conftest import commit_next_height

CHAIN_ID = "portal-test"
VIN = "KMHEC41DBFA123456"
DOCUMENT_TEXT = b"Building permit 2026-0042: 3-storey community library, Mapo-gu.\n"
ROLES = ("vehicle.registrar", "vehicle.inspector", "vehicle.repairer", "document.issuer",
         "mileage.minter", "funds.organiser", "did.registrar")
# A citizen's DID subject key (a fixed seed, so runs are alike) and record commitment.
CITIZEN_SEED = bytes(range(32))
RECORD_COMMITMENT = hashlib.sha256(b"citizen record, salted off chain").digest()


@dataclass(frozen=True)
class SeededHome:
    """The home, the hashes of its txs by name, the DID it created, the last height."""

    home: Home
    tx_hashes: dict[str, str]
    did: str
    height: int


def seed_home(root: Path, api_port: int) -> SeededHome:
    """Create a home whose chain holds a vehicle's history, a document, mileage points, a
    campaign and a citizen's DID, one transaction a block."""
    created = init_home(root, chain_id=CHAIN_ID, api_port=api_port)
    operator = created.load_key("operator")
    genesis = created.load_genesis()
    genesis.roles.update({role: (operator.public_key,) for role in ROLES})
    genesis.save(created.genesis_path)
    steps: list[tuple[str, str, str, dict[str, Any]]] = [
        ("register", "vehicle", "register", {"vin": VIN, "odometer_km": 5, "model": "Kia Ray"}),
        ("inspect", "vehicle", "inspect", {"vin": VIN, "odometer_km": 20_000,
                                           "result": "pass"}),
        ("repair", "vehicle", "repair", {"vin": VIN, "accident": False,
                                         "description": "brake pads", "odometer_km": 21_000}),
        ("document", "document", "issue", {"doc_hash": hashlib.sha256(DOCUMENT_TEXT).digest(),
                                           "kind": "building-permit"}),
        ("mint", "mileage", "mint", {"to": operator.public_key, "amount": 500,
                                     "reason": "recycling"}),
        ("campaign", "funds", "register_campaign", {"purpose": "winter shelter",
                                                    "target_krw": 1_000_000}),
        ("did", "did", "create", {"public_key": SigningKey(CITIZEN_SEED).public_key,
                                  "record_commitment": RECORD_COMMITMENT}),
    ]
    node = Node(created)
    hashes = {}
    try:
        for nonce, (name, service, method, args) in enumerate(steps, 1):
            tx = Transaction.create(operator, chain_id=CHAIN_ID, nonce=nonce,
                                    expiry_height=1000, service=service, method=method,
                                    args=args)
            check = node.submit(tx.encode())
            assert check.ok, (name, check.log)
            hashes[name] = check.hash.hex()
            commit_next_height(node)
        height = node.get_height()
    finally:
        node.close()
    return SeededHome(created, hashes, compute_did(bytes.fromhex(hashes["did"])), height)
