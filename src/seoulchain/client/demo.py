"""Demo city data: documents that Seoul's agencies might notarise, anchored through the API.

The documents are generated text files written under HOME/demo-docs/ so that a newcomer can
look one up (`seoulchain query notary HOME/demo-docs/<file> --home HOME`), correct one, or
alter a byte and see the lookup fail. Only their hashes go on chain. Each document is
anchored by the agency that issues it, with that agency's own key (the genesis names the
agencies: `seoulchain query` and `verify` show who anchored). Seeding is idempotent: a rerun
skips documents that are already anchored.

Then governance grants the agencies their service roles and the demo fills in the city's
public records (vehicles, issued documents, a campaign, a sub-contract, a labor contract,
mileage points) in a few batches, one block each. Citizens and a merchant are keys created
in keys/, never names. Every record is checked on chain before it is submitted, so seeding
that was interrupted part way (the devnet killed mid-batch) resumes where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seoulchain.client.http import NodeClient
from seoulchain.crypto import SigningKey, sha256
from seoulchain.errors import RemoteError
from seoulchain.ledger.types import Transaction
from seoulchain.node.agencies import OPERATOR_KEY_NAME, load_agency_keys
from seoulchain.node.home import Home

EXPIRY_BLOCKS = 100
# How long a reseed waits for transactions still pending in the node's mempool (an earlier
# seeder's, killed before they committed): a devnet commits a block about every second, and
# the demo's largest batch (33 governance transactions) fits in one block.
PENDING_WAIT_S = 30.0
PENDING_POLL_S = 0.25


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
    await_pending_txs(client, report)
    genesis = home.load_genesis()
    keys = load_agency_keys(home.keys_dir, genesis)
    committed = seed_demo_data(client, keys, home.load_key(OPERATOR_KEY_NAME), directory, report)
    return committed + seed_public_records(client, keys, home.keys_dir, genesis.threshold,
                                           directory, report)


def await_pending_txs(client: NodeClient, report: Callable[[str], None],
                      timeout_s: float = PENDING_WAIT_S) -> None:
    """Wait until the node's mempool is empty, so an earlier seeder's pending transactions
    have committed before records are checked and nonces read (a transaction signed again
    with a pending one's nonce never commits: the pending one takes the nonce)."""
    deadline = time.monotonic() + timeout_s
    pending = client.get_status()["mempool_txs"]
    if pending:
        report(f"waiting for {pending} pending transactions to commit before seeding")
    while pending:
        if time.monotonic() >= deadline:
            raise RemoteError(f"the node's mempool still holds {pending} transactions after "
                              f"{timeout_s:.0f} s; an earlier seeding's may be among them, and "
                              "signing their nonces again would clash: rerun once it drains")
        time.sleep(PENDING_POLL_S)
        pending = client.get_status()["mempool_txs"]


def submit(client: NodeClient, key: SigningKey, chain_id: str, method: str,
           args: dict[str, object]) -> int:
    height = client.get_status()["height"]
    tx = Transaction.create(key, chain_id=chain_id, nonce=client.get_next_nonce(key.public_key),
                            expiry_height=height + EXPIRY_BLOCKS, service="notary",
                            method=method, args=args)
    client.submit(tx)
    client.wait_for_commit(tx.hash())
    return 1


# ---------------------------------------------------------------- the city's public records

# Blocks a demo governance proposal stays open: the approvals follow in the next block or two.
PROPOSAL_DEADLINE_BLOCKS = 100
# Demo keys beside the agencies' in keys/: citizens (parties are keys, never names) and a shop.
CITIZEN_KEY_NAMES = ("citizen-1", "citizen-2")
MERCHANT_KEY_NAME = "merchant-1"
# The roles each demo agency receives from governance before it records anything.
ROLE_GRANTS = (("city-hall", "vehicle.registrar"), ("city-hall", "document.issuer"),
               ("city-hall", "funds.organiser"), ("city-hall", "funds.contracting_officer"),
               ("city-hall", "funds.payer"), ("city-hall", "mileage.minter"),
               ("city-hall", "mileage.merchant_registrar"), ("mapo-gu", "vehicle.inspector"),
               ("mapo-gu", "mileage.minter"), ("jongno-gu", "vehicle.repairer"),
               ("gangnam-gu", "funds.collector"))
PROPOSER_AGENCY = "city-hall"
# Korean VINs (WMI KM*/KN*): outside North America, so no check digit applies.
DEMO_VINS = ("KMHEC41DBFA123456", "KNAGM4A78F5123457", "KMHD341CBGU123458")
DEMO_MODELS = ("Hyundai Sonata 2015", "Kia Sorento 2016", "Hyundai Avante 2012")
# Issued e-documents: (file name, kind, text); the first is corrected, the second revoked.
ISSUED_DOCUMENTS = (
    ("tax-payment-certificate-2026-0211.txt", "tax-certificate",
     "Local tax payment certificate 2026-0211: property tax, 2026 first half, paid in full."),
    ("street-vendor-permit-2026-0388.txt", "vendor-permit",
     "Street vendor permit 2026-0388: food stall, Cheonggyecheon-ro stretch 4."),
    ("noise-survey-report-2026-0045.txt", "survey-report",
     "Noise survey report 2026-0045: night-time levels along Olympic-daero, 12 sites."),
)
ISSUED_CORRECTION = ("tax-payment-certificate-2026-0211-rev1.txt", "tax-certificate",
                     "Local tax payment certificate 2026-0211 (revised): property tax, 2026 "
                     "first half, paid in full; receipt number corrected.")
LABOR_CONTRACT = ("labor-contract-2026-0015.txt",
                  "Standard part-time labor contract 2026-0015: library assistant, Gangnam-gu "
                  "Office, 20 hours a week, from 2026-03-02.")
CONTRACT_PAYMENT_KRW = 1_000_003  # does not divide by the shares: the prime takes the rest
DEMO_HOURLY_WAGE_KRW = 12_000
DEMO_WORK_MINUTES = 1_200
# Campaigns and contracts the demo looks through for its own (it registers one of each on a
# fresh chain, so it finds them first; others' records before them are few).
DEMO_NUMBERS_SCANNED_MAX = 64
# History entries read at once: the demo writes fewer than ten per campaign or account.
DEMO_PAGE_ENTRIES = 100
DEMO_CAMPAIGN = "winter shelter heating"
DEMO_CONTRACT = "pavement repair, Gangnam-daero"
DEMO_MINTS = ((0, "city-hall", 5_000, "volunteering at the winter shelter"),
              (1, "mapo-gu", 3_000, "riverside clean-up"))
DEMO_INSPECTIONS = ((DEMO_VINS[0], 40_210), (DEMO_VINS[1], 35_020), (DEMO_VINS[2], 180_540),
                    (DEMO_VINS[0], 61_874), (DEMO_VINS[1], 52_400))
DEMO_DONATIONS_KRW = (1_200_000, 350_000, 2_000_000)
DEMO_SPENDINGS = ((1_500_000, "heating oil, December", "did:seoul:biz.fuel-supplier"),
                  (400_000, "blankets", "did:seoul:biz.textile-coop"))
DEMO_TRANSFER_POINTS = 1_500
DEMO_REDEEM_POINTS = 1_000


@dataclass
class Batch:
    """Transactions signed with locally counted nonces, submitted together and awaited."""

    client: NodeClient
    chain_id: str
    nonces: dict[bytes, int]
    txs: list[Transaction] = field(default_factory=list)
    committed: int = 0

    def add(self, key: SigningKey, service: str, method: str, **args: object) -> None:
        signer = key.public_key
        if signer not in self.nonces:
            self.nonces[signer] = self.client.get_next_nonce(signer)
        height = self.client.get_status()["height"]
        self.txs.append(Transaction.create(
            key, chain_id=self.chain_id, nonce=self.nonces[signer],
            expiry_height=height + EXPIRY_BLOCKS, service=service, method=method, args=args))
        self.nonces[signer] += 1

    def run(self) -> list[dict[str, Any]]:
        """Submit the batch, wait for each tx's commit, and return their results in order."""
        txs, self.txs = self.txs, []
        if not txs:
            return []
        for tx, admission in zip(txs, self.client.submit_batch([tx.encode() for tx in txs]),
                                 strict=True):
            if admission["code"] != 0:
                raise RemoteError(f"demo {tx.service}.{tx.method} refused: {admission['log']}")
        results = []
        for tx in txs:
            result = self.client.wait_for_commit(tx.hash())["result"]
            if result["code"] != 0:
                raise RemoteError(f"demo {tx.service}.{tx.method} failed: {result['log']}")
            results.append(result)
        self.committed += len(txs)
        return results


def load_demo_key(keys_dir: Path, name: str) -> SigningKey:
    """Load a demo key from keys/, creating it on the first run."""
    path = keys_dir / f"{name}.key"
    if not path.exists():
        keys_dir.mkdir(parents=True, exist_ok=True)
        SigningKey.generate().save(path)
    return SigningKey.load(path)


def grant_demo_roles(batch: Batch, keys: Mapping[str, SigningKey], threshold: int,
                     report: Callable[[str], None],
                     grants: tuple[tuple[str, str], ...] = ROLE_GRANTS) -> None:
    """Have governance grant `grants` not yet held: one proposal each, then approvals."""
    client = batch.client
    # role_history answers for every role; the account view lists only the roles genesis or
    # a method's signature names, not those a service checks itself (vc.issuer.<type>).
    missing = [(name, role) for name, role in grants if not client.query(
        "gov", "role_history", role=role, public_key=keys[name].public_key.hex())["result"]["held"]]
    if not missing:
        return
    open_ids = {(proposal["action"].get("role"), proposal["action"].get("public_key")):
                proposal["id"]
                for proposal in client.query("gov", "proposals", status="open", limit=100)["result"]
                if proposal["action"]["kind"] == "grant_role"}
    deadline = client.get_status()["height"] + PROPOSAL_DEADLINE_BLOCKS
    for name, role in missing:
        if (role, keys[name].public_key.hex()) not in open_ids:
            batch.add(keys[PROPOSER_AGENCY], "gov", "propose", kind="grant_role", role=role,
                      public_key=keys[name].public_key, deadline_height=deadline)
    batch.run()
    proposals = client.query("gov", "proposals", status="open", limit=100)["result"]
    wanted = {(role, keys[name].public_key.hex()) for name, role in missing}
    approvers = [name for name in keys if name != PROPOSER_AGENCY]
    for proposal in proposals:
        action = proposal["action"]
        if action["kind"] != "grant_role" or (action["role"], action["public_key"]) not in wanted:
            continue
        approved = {approval["member"] for approval in proposal["approvals"]}
        for name in [name for name in approvers if name not in approved][
                :max(0, threshold - len(approved))]:
            batch.add(keys[name], "gov", "approve", proposal=proposal["id"])
    batch.run()
    report(f"governance granted {len(missing)} roles to the agencies' keys "
           f"({PROPOSER_AGENCY} proposed, {threshold - 1} other agencies approved)")


@dataclass(frozen=True)
class DemoParties:
    """The keys the public-records demo signs with: agencies, citizens and a merchant."""

    agencies: Mapping[str, SigningKey]
    citizens: tuple[SigningKey, SigningKey]
    merchant: SigningKey

    def agency(self, name: str) -> SigningKey:
        """Return the key of the demo agency `name`."""
        return self.agencies[name]


def write_text_files(directory: Path, files: list[tuple[str, str]]) -> dict[str, bytes]:
    """Write demo files that do not exist yet; return each file's SHA-256 by name."""
    directory.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for name, text in files:
        path = directory / name
        if not path.exists():
            path.write_text(text + "\n")
        hashes[name] = sha256(path.read_bytes())
    return hashes


def seed_public_records(client: NodeClient, keys: Mapping[str, SigningKey], keys_dir: Path,
                        threshold: int, directory: Path, report: Callable[[str], None]) -> int:
    """Seed vehicles, issued documents, funds, a labor contract and mileage; return tx count.

    Governance first grants the agencies the roles they need. Each record is checked on
    chain before it is submitted, so a rerun after an interrupted seeding submits exactly
    the records still missing, and a rerun after a complete one submits nothing.
    """
    if any(name not in keys for name, _ in ROLE_GRANTS):
        report("not seeding vehicles, documents, funds, labor or mileage: this home has no "
               "keys for the demo agencies")
        return 0
    parties = DemoParties(keys, tuple(load_demo_key(keys_dir, name)  # type: ignore[arg-type]
                                      for name in CITIZEN_KEY_NAMES),
                          load_demo_key(keys_dir, MERCHANT_KEY_NAME))
    hashes = write_text_files(directory, [(name, text) for name, _, text in
                                          [*ISSUED_DOCUMENTS, ISSUED_CORRECTION]]
                              + [LABOR_CONTRACT])
    batch = Batch(client, client.get_status()["chain_id"], {})
    ledger = DemoLedger(client)
    grant_demo_roles(batch, keys, threshold, report)
    run_round(batch, registration_steps(ledger, parties, hashes), report,
              f"registered {len(DEMO_VINS)} vehicles, issued {len(ISSUED_DOCUMENTS)} "
              "documents, opened a campaign and a sub-contract, minted mileage points")
    numbers = ledger.find_demo_numbers()
    run_round(batch, first_record_steps(ledger, parties, hashes, numbers), report,
              "inspected the vehicles, corrected one document and revoked another, recorded "
              f"3 donations and a {CONTRACT_PAYMENT_KRW:,} KRW payment split by the "
              "sub-contract, signed a labor contract, transferred and redeemed points")
    run_round(batch, second_record_steps(ledger, parties, hashes, numbers), report,
              "spent twice from the campaign, repaired one vehicle and scrapped another, "
              "recorded a week of work and its wage")
    run_round(batch, [DemoStep(
        lambda: ledger.has_vehicle_entry(DEMO_VINS[0], "transferred"),
        lambda batch: batch.add(parties.citizens[1], "vehicle", "accept_transfer",
                                vin=DEMO_VINS[0]))], report,
        f"vehicle {DEMO_VINS[0]} sold from {CITIZEN_KEY_NAMES[0]} to {CITIZEN_KEY_NAMES[1]} "
        "(offer, then accept)")
    return batch.committed


@dataclass(frozen=True)
class DemoStep:
    """One demo record: whether the chain already holds it, and how to submit it."""

    is_done: Callable[[], bool]
    add: Callable[[Batch], None]


def run_round(batch: Batch, steps: list[DemoStep], report: Callable[[str], None],
              summary: str) -> None:
    """Submit, as one batch, the steps whose records the chain does not hold yet."""
    missing = [step for step in steps if not step.is_done()]
    for step in missing:
        step.add(batch)
    batch.run()
    if missing:
        resumed = "" if len(missing) == len(steps) else (
            f" ({len(missing)} of {len(steps)} records were missing)")
        report(summary + resumed)


class DemoLedger:
    """Reads the demo's records from the node, to tell which are already on chain."""

    def __init__(self, client: NodeClient):
        self.client = client

    def ask(self, service: str, name: str, **args: Any) -> Any:
        return self.client.query(service, name, **args)["result"]

    def has_vehicle_entry(self, vin: str, kind: str, **fields: Any) -> bool:
        """Return True if the vehicle's history holds an entry of `kind` with `fields`."""
        history = self.ask("vehicle", "history", vin=vin)
        return history is not None and any(
            entry["kind"] == kind and all(entry.get(name) == value
                                          for name, value in fields.items())
            for entry in history["entries"])

    def get_document(self, doc_hash: bytes) -> dict[str, Any] | None:
        return self.ask("document", "document", doc_hash=doc_hash.hex())

    def has_campaign_entry(self, campaign: int, kind: str, amount_krw: int) -> bool:
        entries = self.ask("funds", "history", campaign=campaign, limit=DEMO_PAGE_ENTRIES)
        return any(entry["kind"] == kind and entry["amount_krw"] == amount_krw
                   for entry in entries or [])

    def has_mileage_entry(self, account: SigningKey, kind: str, amount: int) -> bool:
        entries = self.ask("mileage", "history", account=account.public_key.hex(),
                           limit=DEMO_PAGE_ENTRIES)
        return any(entry["kind"] == kind and entry["amount"] == amount for entry in entries)

    def get_labor_contract(self, contract_hash: bytes) -> dict[str, Any] | None:
        return self.ask("labor", "contract", contract_hash=contract_hash.hex())

    def find_numbered(self, query: str, field_name: str, value: str) -> int | None:
        """Return the number of the first funds `query` record whose field is `value`."""
        for number in range(1, DEMO_NUMBERS_SCANNED_MAX + 1):
            record = self.ask("funds", query, **{query: number})
            if record is None:
                return None
            if record[field_name] == value:
                return number
        return None

    def find_demo_numbers(self) -> dict[str, int]:
        """Return the numbers the chain gave the demo's campaign and contract."""
        numbers = {"campaign": self.find_numbered("campaign", "purpose", DEMO_CAMPAIGN),
                   "contract": self.find_numbered("contract", "title", DEMO_CONTRACT)}
        missing = [name for name, number in numbers.items() if number is None]
        if missing:
            raise RemoteError(f"the demo {' and '.join(missing)} is not on chain after "
                              "its registration committed")
        return numbers  # type: ignore[return-value]


def registration_steps(ledger: DemoLedger, parties: DemoParties,
                       hashes: Mapping[str, bytes]) -> list[DemoStep]:
    """Register vehicles, a campaign, a contract and a merchant; issue documents; mint."""
    city_hall = parties.agency("city-hall")
    citizen_1, citizen_2 = parties.citizens
    steps = [DemoStep(
        lambda vin=vin: ledger.ask("vehicle", "vehicle", vin=vin) is not None,
        lambda batch, vin=vin, model=model, owner=owner: batch.add(
            city_hall, "vehicle", "register", vin=vin, model=model, owner=owner.public_key,
            odometer_km=0))
        for vin, model, owner in zip(DEMO_VINS, DEMO_MODELS, (citizen_1, citizen_2, citizen_1),
                                     strict=True)]
    steps += [DemoStep(
        lambda name=name: ledger.get_document(hashes[name]) is not None,
        lambda batch, name=name, kind=kind: batch.add(
            city_hall, "document", "issue", doc_hash=hashes[name], kind=kind,
            metadata={"office": "Seoul Metropolitan Government"}))
        for name, kind, _ in ISSUED_DOCUMENTS]
    steps.append(DemoStep(
        lambda: ledger.find_numbered("campaign", "purpose", DEMO_CAMPAIGN) is not None,
        lambda batch: batch.add(city_hall, "funds", "register_campaign", purpose=DEMO_CAMPAIGN,
                                target_krw=5_000_000)))
    steps.append(DemoStep(
        lambda: ledger.find_numbered("contract", "title", DEMO_CONTRACT) is not None,
        lambda batch: batch.add(
            city_hall, "funds", "register_contract", title=DEMO_CONTRACT,
            prime={"payee": "did:seoul:biz.prime-contractor", "share_bp": 6_000},
            subcontractors=[{"payee": "did:seoul:biz.asphalt-supplier", "share_bp": 2_500},
                            {"payee": "did:seoul:biz.traffic-control", "share_bp": 1_500}])))
    steps.append(DemoStep(
        lambda: ledger.ask("mileage", "merchant",
                           merchant=parties.merchant.public_key.hex()) is not None,
        lambda batch: batch.add(city_hall, "mileage", "register_merchant",
                                merchant=parties.merchant.public_key,
                                name="Mangwon market shop")))
    steps += [DemoStep(
        lambda citizen=citizen, amount=amount: ledger.has_mileage_entry(
            parties.citizens[citizen], "minted", amount),
        lambda batch, citizen=citizen, agency=agency, amount=amount, reason=reason: batch.add(
            parties.agency(agency), "mileage", "mint", to=parties.citizens[citizen].public_key,
            amount=amount, reason=reason))
        for citizen, agency, amount, reason in DEMO_MINTS]
    steps.append(DemoStep(
        lambda: ledger.get_labor_contract(hashes[LABOR_CONTRACT[0]]) is not None,
        lambda batch: batch.add(
            parties.agency("gangnam-gu"), "labor", "propose",
            contract_hash=hashes[LABOR_CONTRACT[0]], worker=citizen_2.public_key,
            hourly_wage_krw=DEMO_HOURLY_WAGE_KRW, start_date="2026-03-02")))
    return steps


def first_record_steps(ledger: DemoLedger, parties: DemoParties, hashes: Mapping[str, bytes],
                       numbers: Mapping[str, int]) -> list[DemoStep]:
    """Inspect the vehicles, correct and revoke documents, donate, pay, sign, transfer points."""
    city_hall, mapo_gu = parties.agency("city-hall"), parties.agency("mapo-gu")
    citizen_1, citizen_2 = parties.citizens
    steps = [DemoStep(
        lambda vin=vin, km=km: ledger.has_vehicle_entry(vin, "inspection", odometer_km=km),
        lambda batch, vin=vin, km=km: batch.add(mapo_gu, "vehicle", "inspect", vin=vin,
                                                odometer_km=km, result="pass"))
        for vin, km in DEMO_INSPECTIONS]
    old, new = hashes[ISSUED_DOCUMENTS[0][0]], hashes[ISSUED_CORRECTION[0]]
    revoked = hashes[ISSUED_DOCUMENTS[1][0]]
    steps.append(DemoStep(
        lambda: (ledger.get_document(old) or {}).get("superseded_by") is not None,
        lambda batch: batch.add(city_hall, "document", "supersede", old_hash=old,
                                new_hash=new, reason="receipt number corrected")))
    steps.append(DemoStep(
        lambda: (ledger.get_document(revoked) or {}).get("revoked_height") is not None,
        lambda batch: batch.add(city_hall, "document", "revoke", doc_hash=revoked,
                                reason="stall closed at the vendor's request")))
    steps += [DemoStep(
        lambda amount=amount: ledger.has_campaign_entry(numbers["campaign"], "donation",
                                                        amount),
        lambda batch, amount=amount: batch.add(
            parties.agency("gangnam-gu"), "funds", "donate", campaign=numbers["campaign"],
            amount_krw=amount, purpose=DEMO_CAMPAIGN))
        for amount in DEMO_DONATIONS_KRW]
    steps.append(DemoStep(
        lambda: ledger.ask("funds", "contract", contract=numbers["contract"])["payments"] > 0,
        lambda batch: add_contract_payment(batch, city_hall, numbers["contract"])))
    contract_hash = hashes[LABOR_CONTRACT[0]]
    steps.append(DemoStep(
        lambda: (ledger.get_labor_contract(contract_hash) or {}).get("status") != "proposed",
        lambda batch: batch.add(citizen_2, "labor", "accept", contract_hash=contract_hash)))
    steps.append(DemoStep(
        lambda: ledger.has_mileage_entry(citizen_1, "sent", DEMO_TRANSFER_POINTS),
        lambda batch: batch.add(citizen_1, "mileage", "transfer", to=citizen_2.public_key,
                                amount=DEMO_TRANSFER_POINTS)))
    steps.append(DemoStep(
        lambda: ledger.has_mileage_entry(citizen_1, "redeemed", DEMO_REDEEM_POINTS),
        lambda batch: batch.add(citizen_1, "mileage", "redeem",
                                merchant=parties.merchant.public_key,
                                amount=DEMO_REDEEM_POINTS)))
    return steps


def add_contract_payment(batch: Batch, officer: SigningKey, contract: int) -> None:
    """Add the demo's payment under a contract, with the split the contract asks for."""
    split = batch.client.query("funds", "split", contract=contract,
                               amount_krw=CONTRACT_PAYMENT_KRW)["result"]
    batch.add(officer, "funds", "pay", contract=contract, amount_krw=CONTRACT_PAYMENT_KRW,
              purpose="first instalment", split=split)


def second_record_steps(ledger: DemoLedger, parties: DemoParties,
                        hashes: Mapping[str, bytes], numbers: Mapping[str, int]
                        ) -> list[DemoStep]:
    """Spend from the campaign, repair, offer and scrap vehicles, record work and wages."""
    city_hall, gangnam_gu = parties.agency("city-hall"), parties.agency("gangnam-gu")
    citizen_1, citizen_2 = parties.citizens
    steps = [DemoStep(
        lambda amount=amount: ledger.has_campaign_entry(numbers["campaign"], "spending",
                                                        amount),
        lambda batch, amount=amount, purpose=purpose, payee=payee: batch.add(
            city_hall, "funds", "spend", campaign=numbers["campaign"], amount_krw=amount,
            purpose=purpose, payee=payee))
        for amount, purpose, payee in DEMO_SPENDINGS]
    steps.append(DemoStep(
        lambda: ledger.has_vehicle_entry(DEMO_VINS[0], "repair"),
        lambda batch: batch.add(parties.agency("jongno-gu"), "vehicle", "repair",
                                vin=DEMO_VINS[0], accident=False,
                                description="brake pads and discs replaced",
                                odometer_km=62_300)))
    steps.append(DemoStep(
        lambda: ledger.has_vehicle_entry(DEMO_VINS[0], "transfer_offered"),
        lambda batch: batch.add(citizen_1, "vehicle", "offer_transfer", vin=DEMO_VINS[0],
                                buyer=citizen_2.public_key, price_krw=9_000_000)))
    steps.append(DemoStep(
        lambda: ledger.ask("vehicle", "vehicle", vin=DEMO_VINS[2])["status"] == "scrapped",
        lambda batch: batch.add(citizen_1, "vehicle", "scrap", vin=DEMO_VINS[2])))
    contract_hash = hashes[LABOR_CONTRACT[0]]
    period = {"period_start": "2026-03-02", "period_end": "2026-03-08"}
    steps.append(DemoStep(
        lambda: ledger.get_labor_contract(contract_hash)["work_records"] > 0,
        lambda batch: batch.add(gangnam_gu, "labor", "record_work", contract_hash=contract_hash,
                                minutes=DEMO_WORK_MINUTES, **period)))
    steps.append(DemoStep(
        lambda: ledger.get_labor_contract(contract_hash)["payments"] > 0,
        lambda batch: batch.add(gangnam_gu, "labor", "record_payment",
                                contract_hash=contract_hash,
                                amount_krw=DEMO_HOURLY_WAGE_KRW * DEMO_WORK_MINUTES // 60,
                                **period)))
    return steps
