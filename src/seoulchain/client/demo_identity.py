"""Demo identity data: agency and citizen DIDs, vault records, credentials and a status list.

Governance grants city hall `did.registrar` and Mapo-gu `vc.issuer.youth-allowance`. City
hall then registers DIDs as `seoulchain vault register` does: each record goes into the
vault (HOME/data/vault.sqlite; node-0's of a devnet) under the DID its create transaction
makes, and only the salted commitment goes on chain. Mapo-gu registers its DID as an issuer,
creates a revocation list, issues a youth-allowance credential to each demo citizen (files
under HOME/demo-docs/identity/), revokes the second and publishes the list.

A DID is derived from its create transaction, so the DIDs the demo made are kept in
demo-docs/identity/dids.json, written before the transaction is sent; every other record is
found on chain by its list id or hash. Each round checks the chain first, so a rerun submits
only what is missing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from seoulchain.client import credentials as vc
from seoulchain.client.demo import (
    CITIZEN_KEY_NAMES,
    Batch,
    DemoStep,
    grant_demo_roles,
    load_demo_key,
    run_round,
)
from seoulchain.client.did import resolve_did
from seoulchain.client.http import NodeClient
from seoulchain.credentials import integrity
from seoulchain.credentials.statuslist import StatusList, build_status_list_credential
from seoulchain.crypto import SigningKey
from seoulchain.node.agencies import load_agency_keys
from seoulchain.node.devnet import Devnet, is_devnet
from seoulchain.node.home import Home
from seoulchain.services.did import compute_did
from seoulchain.vault import Vault, compute_commitment, encode_record, generate_salt

# The vault's files in a node home, as `seoulchain vault` names them (cli/vault.py).
VAULT_FILE = "vault.sqlite"
VAULT_KEY_FILE = "vault.secret"
REGISTRAR_AGENCY = "city-hall"
ISSUER_AGENCY = "mapo-gu"
CREDENTIAL_TYPE = "youth-allowance"
IDENTITY_ROLE_GRANTS = ((REGISTRAR_AGENCY, "did.registrar"),
                        (ISSUER_AGENCY, f"vc.issuer.{CREDENTIAL_TYPE}"))
STATUS_LIST_ID = "youth-allowance-2026"
# The smallest list W3C Bitstring Status List allows (services/vc.py's minimum).
STATUS_LIST_ENTRIES = 131_072
CREDENTIAL_VALID_DAYS = 365
IDENTITY_DIRECTORY = "identity"
DIDS_FILE = "dids.json"
PUBLISHED_LIST_FILE = f"{STATUS_LIST_ID}.json"
# Subjects of the vault: Mapo-gu's public name, and fictional citizens (the vault is where
# personal data belongs; the chain gets their commitments only).
DEMO_RECORDS: Mapping[str, dict[str, Any]] = {
    ISSUER_AGENCY: {"agency": "Mapo-gu Office", "district_code": "11440"},
    CITIZEN_KEY_NAMES[0]: {"name": "Kim Minji", "birth_date": "2001-04-17",
                           "address": "12 Mapo-daero, Mapo-gu", "phone": "010-5512-0417"},
    CITIZEN_KEY_NAMES[1]: {"name": "Park Jihoon", "birth_date": "1998-11-02",
                           "address": "7 Worldcup-ro, Mapo-gu", "phone": "010-7734-1102"},
}
ALLOWANCE_CLAIMS = {"youthAllowanceEligible": True,
                    "allowanceProgramme": "Seoul youth allowance 2026"}


def get_credential_path(directory: Path, citizen: str) -> Path:
    """Return the file of the demo's youth-allowance credential for a citizen key name."""
    return directory / IDENTITY_DIRECTORY / f"{CREDENTIAL_TYPE}-{citizen}.json"


@dataclass
class IdentityDemo:
    """What the identity rounds share: the node, the keys, the vault and the files."""

    client: NodeClient
    keys: Mapping[str, SigningKey]
    vault: Vault
    directory: Path

    @property
    def dids_path(self) -> Path:
        return self.directory / IDENTITY_DIRECTORY / DIDS_FILE

    def read_dids(self) -> dict[str, str]:
        path = self.dids_path
        return json.loads(path.read_text()) if path.exists() else {}

    def is_did_on_chain(self, name: str) -> bool:
        did = self.read_dids().get(name)
        return did is not None and resolve_did(self.client, did)["didDocument"] is not None

    def add_did(self, batch: Batch, name: str) -> None:
        """Sign a DID's create tx, store the record under its DID, then add it to the batch."""
        record, salt = DEMO_RECORDS[name], generate_salt()
        batch.add(self.keys[REGISTRAR_AGENCY], "did", "create",
                  public_key=self.keys[name].public_key,
                  record_commitment=compute_commitment(salt, encode_record(record)))
        did = compute_did(batch.txs[-1].hash())
        self.vault.put(did, record, salt)
        dids = {**self.read_dids(), name: did}
        self.dids_path.parent.mkdir(parents=True, exist_ok=True)
        self.dids_path.write_text(json.dumps(dids, indent=2) + "\n")

    def get_issuer(self) -> str:
        return self.read_dids()[ISSUER_AGENCY]

    def is_issuer_registered(self) -> bool:
        record = vc.get_result(self.client, "vc", "issuer", did=self.get_issuer())
        return record is not None and CREDENTIAL_TYPE in record["types"]

    def is_anchored(self, path: Path) -> bool:
        if not path.exists():
            return False
        credential = json.loads(path.read_text())
        return vc.get_result(self.client, "vc", "anchor",
                             hash=vc.compute_anchor_hash(credential).hex()) is not None

    def get_assertion_method(self) -> str:
        document = resolve_did(self.client, self.get_issuer())["didDocument"]
        return str(document["assertionMethod"][0])

    def add_credential(self, batch: Batch, citizen: str) -> None:
        """Sign a citizen's youth-allowance credential, write its file, add its anchoring."""
        issuer, key = self.get_issuer(), self.keys[ISSUER_AGENCY]
        status = [vc.draw_status_entry(self.client, STATUS_LIST_ID, "revocation")]
        now = datetime.now(UTC).replace(microsecond=0)
        unsigned = vc.build_credential(CREDENTIAL_TYPE, issuer, self.read_dids()[citizen],
                                       ALLOWANCE_CLAIMS, now,
                                       now + timedelta(days=CREDENTIAL_VALID_DAYS), status,
                                       credential_id=f"urn:uuid:{uuid.uuid4()}")
        credential = integrity.sign(unsigned, key, self.get_assertion_method(), now)
        path = get_credential_path(self.directory, citizen)
        path.write_text(json.dumps(credential, indent=2, ensure_ascii=False) + "\n")
        batch.add(key, "vc", "issue", credential_hash=vc.compute_anchor_hash(credential),
                  type=CREDENTIAL_TYPE, issuer=issuer,
                  status=[{"list_id": STATUS_LIST_ID,
                           "index": int(status[0]["statusListIndex"])}])

    def get_revoked_index(self) -> int:
        credential = json.loads(get_credential_path(self.directory,
                                                    CITIZEN_KEY_NAMES[1]).read_text())
        return int(credential["credentialStatus"][0]["statusListIndex"])

    def is_revoked(self) -> bool:
        return bool(vc.get_result(self.client, "vc", "status", list_id=STATUS_LIST_ID,
                                  index=self.get_revoked_index())["set"])

    def is_list_published(self) -> bool:
        """Return True if the demo's list file is the anchored list of the current bits."""
        anchor = vc.get_result(self.client, "vc", "status_list",
                               list_id=STATUS_LIST_ID)["anchor"]
        path = self.directory / IDENTITY_DIRECTORY / PUBLISHED_LIST_FILE
        return (anchor is not None and anchor["current"] and path.exists()
                and vc.compute_anchor_hash(json.loads(path.read_text())).hex()
                == anchor["sha256"])

    def add_published_list(self, batch: Batch) -> None:
        """Sign the list's BitstringStatusListCredential, write it, add its anchoring."""
        listing = vc.get_result(self.client, "vc", "status_list", list_id=STATUS_LIST_ID)
        bits = StatusList(listing["size"])
        for index in listing["set_indices"]:
            bits.set(index, True)
        unsigned = build_status_list_credential(vc.compute_status_list_url(STATUS_LIST_ID),
                                                listing["issuer"], bits, listing["purpose"])
        signed = integrity.sign(unsigned, self.keys[ISSUER_AGENCY],
                                self.get_assertion_method(), datetime.now(UTC))
        (self.directory / IDENTITY_DIRECTORY / PUBLISHED_LIST_FILE).write_text(
            json.dumps(signed, indent=2) + "\n")
        batch.add(self.keys[ISSUER_AGENCY], "vc", "anchor_status_list",
                  list_id=STATUS_LIST_ID, sha256=vc.compute_anchor_hash(signed))


def open_demo_vault(home: Home) -> Vault:
    """Open the vault of a home, or of the first validator of a devnet directory."""
    node_home = Devnet(home.root).node_homes[0] if is_devnet(home.root) else home
    node_home.data_dir.mkdir(parents=True, exist_ok=True)
    return Vault.open(node_home.data_dir / VAULT_FILE, node_home.keys_dir / VAULT_KEY_FILE)


def seed_identity(client: NodeClient, keys: Mapping[str, SigningKey], home: Home,
                  threshold: int, directory: Path, report: Callable[[str], None]) -> int:
    """Seed DIDs, vault records, credentials (one revoked) and a published status list."""
    if any(name not in keys for name, _ in IDENTITY_ROLE_GRANTS):
        report("not seeding identities: this home has no keys for the demo agencies")
        return 0
    subjects = {**keys, **{name: load_demo_key(home.keys_dir, name)
                           for name in CITIZEN_KEY_NAMES}}
    batch = Batch(client, client.get_status()["chain_id"], {})
    grant_demo_roles(batch, keys, threshold, report, IDENTITY_ROLE_GRANTS)
    with open_demo_vault(home) as vault:
        demo = IdentityDemo(client, subjects, vault, directory)
        run_round(batch, [DemoStep(lambda name=name: demo.is_did_on_chain(name),
                                   lambda batch, name=name: demo.add_did(batch, name))
                          for name in DEMO_RECORDS], report,
                  f"{REGISTRAR_AGENCY} registered {len(DEMO_RECORDS)} DIDs, their records in "
                  f"the vault, their commitments on chain")
    report(f"DIDs: {', '.join(f'{name} {did}' for name, did in demo.read_dids().items())}")
    seed_credentials(batch, demo, report)
    return batch.committed


def seed_credentials(batch: Batch, demo: IdentityDemo, report: Callable[[str], None]) -> None:
    """Register the issuer, create its list, issue, revoke one and publish the list."""
    issuer_key = demo.keys[ISSUER_AGENCY]
    run_round(batch, [DemoStep(demo.is_issuer_registered, lambda batch: batch.add(
        issuer_key, "vc", "register_issuer", did=demo.get_issuer(),
        type=CREDENTIAL_TYPE))], report, f"{ISSUER_AGENCY} registered as an issuer")
    run_round(batch, [DemoStep(
        lambda: vc.get_result(demo.client, "vc", "status_list",
                              list_id=STATUS_LIST_ID) is not None,
        lambda batch: batch.add(issuer_key, "vc", "create_status_list",
                                list_id=STATUS_LIST_ID, issuer=demo.get_issuer(),
                                purpose="revocation", size=STATUS_LIST_ENTRIES))], report,
        f"{ISSUER_AGENCY} created the revocation list {STATUS_LIST_ID}")
    run_round(batch, [DemoStep(
        lambda citizen=citizen: demo.is_anchored(get_credential_path(demo.directory, citizen)),
        lambda batch, citizen=citizen: demo.add_credential(batch, citizen))
        for citizen in CITIZEN_KEY_NAMES], report,
        f"issued a {CREDENTIAL_TYPE} credential to each of {', '.join(CITIZEN_KEY_NAMES)}")
    run_round(batch, [DemoStep(demo.is_revoked, lambda batch: batch.add(
        issuer_key, "vc", "set_status", list_id=STATUS_LIST_ID,
        index=demo.get_revoked_index(), value=True))], report,
        f"revoked the credential of {CITIZEN_KEY_NAMES[1]}")
    run_round(batch, [DemoStep(demo.is_list_published, demo.add_published_list)], report,
              f"published and anchored the status list {STATUS_LIST_ID}")


def seed_identity_from_home(client: NodeClient, home: Home, directory: Path,
                            report: Callable[[str], None]) -> int:
    """Seed the identity demo with the agencies' keys of a home's (or devnet's) keys/."""
    genesis = home.load_genesis()
    return seed_identity(client, load_agency_keys(home.keys_dir, genesis), home,
                         genesis.threshold, directory, report)
