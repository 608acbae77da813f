"""Identity benchmark: credentials issued and verified per second, presentation and status
check times.

A fresh single-validator chain in a directory (a normal node home) gets an agency DID
registered as a residency issuer with a revocation list, and a holder DID. Then, each
figure on this machine, one core:

- issuance: building a credential, signing it (Data Integrity `eddsa-rdfc-2022`: RDFC-1.0
  canonicalisation and Ed25519) and signing its `vc.issue` anchor transaction, per second
  (committing the anchors is the ledger's cost, `bench ledger`);
- verification: `verify_credential` end to end (anchor, proof with the issuer key resolved
  as of the issuance height, role history, validity, status), per second;
- presentations: `verify_presentation` (the holder's proof, then the credential), p50;
- status: `check_credential_status` (one query) p50, and reading a bit from a published
  131,072-entry status list credential (GZIP decode), p50.

The verifier's queries are answered by the engine in-process (no HTTP, no network): the
figures are the verifier's own CPU; a round trip to a node adds its network latency per
query (about five queries per credential).

Run: `seoulchain bench identity --home DIR`.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from seoulchain.bench.ledger import admit_and_commit, grant_genesis_roles
from seoulchain.client import credentials as vc
from seoulchain.client.http import NodeClient
from seoulchain.codec.jsonview import to_jsonable
from seoulchain.consensus.evidence import verify_evidence_bytes
from seoulchain.credentials import integrity
from seoulchain.credentials.statuslist import (
    StatusList,
    allocate_index,
    build_status_entry,
    build_status_list_credential,
    get_status,
)
from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError
from seoulchain.execution.engine import Engine
from seoulchain.execution.service import load_services
from seoulchain.ledger.store import BlockStore
from seoulchain.ledger.types import Transaction
from seoulchain.node.home import Home, init_home
from seoulchain.node.mempool import Mempool
from seoulchain.services.did import compute_did
from seoulchain.services.vc import STATUS_LIST_ENTRIES_MIN

IDENTITY_BENCH_CHAIN_ID = "seoul-identity-bench-1"
LIST_ID = "bench-revocation"
# Credentials issued and verified by default: a few seconds of each, a stable rate.
CREDENTIALS_DEFAULT = 200
# Presentations and status checks timed for the medians.
SAMPLES_DEFAULT = 100
# Anchors per block while committing the issued credentials (untimed).
ANCHORS_PER_BLOCK = 500
# The random index draws are seeded: the same run allocates the same indices.
INDEX_SEED = 7
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class IdentityBenchResult:
    """The identity figures of one run."""

    credentials: int
    issued_per_s: float
    sign_ms_mean: float
    verified_per_s: float
    verify_ms_p50: float
    presentation_ms_p50: float
    status_check_ms_p50: float
    status_list_read_ms_p50: float
    credential_bytes_mean: int
    home: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class BenchChain:
    """A fresh lone-validator chain whose blocks are committed as its core would."""

    def __init__(self, home: Home):
        self.home = home
        genesis = home.load_genesis()
        self.chain_id = genesis.chain_id
        self.engine = Engine(genesis, BlockStore(home.store_path), load_services(),
                             verify_evidence_bytes)
        self.mempool = Mempool(self.engine, txs_max=ANCHORS_PER_BLOCK * 2, bytes_max=1 << 28)
        self.validator = home.load_key("validator")
        self.clock_ms = genesis.genesis_time_ms
        self.nonces: dict[bytes, int] = {}

    def sign(self, key: SigningKey, service: str, method: str,
             args: dict[str, Any]) -> Transaction:
        nonce = self.nonces.get(key.public_key, 0) + 1
        self.nonces[key.public_key] = nonce
        return Transaction.create(key, chain_id=self.chain_id, nonce=nonce,
                                  expiry_height=10**9, service=service, method=method,
                                  args=args)

    def commit(self, txs: list[Transaction]) -> None:
        self.clock_ms += 1000
        admit_and_commit(self.engine, self.mempool, self.validator, self.clock_ms,
                         [tx.encode() for tx in txs])

    def create_did(self, registrar: SigningKey, subject: SigningKey) -> str:
        tx = self.sign(registrar, "did", "create", {"public_key": subject.public_key,
                                                    "record_commitment": os.urandom(32)})
        self.commit([tx])
        return compute_did(tx.hash())

    def open_client(self) -> NodeClient:
        """Return a client whose queries the engine answers in-process, as the API does."""
        def answer(request: httpx.Request) -> httpx.Response:
            _, _, service, name = request.url.path.strip("/").split("/")
            try:
                result = self.engine.query(service, name, dict(request.url.params))
            except LocalError as exc:
                return httpx.Response(400, json={"title": "bad_query", "detail": str(exc)})
            return httpx.Response(200, json={"height": self.engine.height,
                                             "result": to_jsonable(result)})
        return NodeClient("http://in-process", transport=httpx.MockTransport(answer))


def compute_p50_ms(samples_s: list[float]) -> float:
    return statistics.median(samples_s) * 1000


def set_up(directory: Path) -> tuple[BenchChain, SigningKey, str, SigningKey, str]:
    """Create the chain: the operator registers DIDs and issues residency credentials."""
    if Home(directory).is_initialised():
        raise LocalError(f"{directory} already holds a chain; the benchmark needs a fresh one")
    home = init_home(directory, chain_id=IDENTITY_BENCH_CHAIN_ID, moniker="bench")
    agency = home.load_key("operator")
    grant_genesis_roles(home, {"did.registrar": (agency.public_key,),
                               "vc.issuer.residency": (agency.public_key,)})
    chain = BenchChain(home)
    holder = SigningKey.generate()
    issuer, holder_did = chain.create_did(agency, agency), chain.create_did(agency, holder)
    chain.commit([chain.sign(agency, "vc", "register_issuer",
                             {"did": issuer, "type": "residency"})])
    chain.commit([chain.sign(agency, "vc", "create_status_list", {
        "list_id": LIST_ID, "issuer": issuer, "purpose": "revocation",
        "size": STATUS_LIST_ENTRIES_MIN})])
    return chain, agency, issuer, holder, holder_did


def issue_credentials(chain: BenchChain, agency: SigningKey, issuer: str, holder_did: str,
                      count: int, now: datetime, progress: Progress
                      ) -> tuple[list[dict[str, Any]], list[float], float]:
    """Sign `count` credentials and their anchor txs (timed), then commit the anchors."""
    rng, used = random.Random(INDEX_SEED), set[int]()
    credentials, txs, sign_s = [], [], []
    started = time.perf_counter()
    for number in range(count):
        tick = time.perf_counter()
        index = allocate_index(used, rng)
        used.add(index)
        status = [build_status_entry(vc.compute_status_list_url(LIST_ID), index)]
        unsigned = vc.build_credential("residency", issuer, holder_did,
                                       {"residentOf": "Jongno-gu"}, now,
                                       now + timedelta(days=365), status)
        credential = integrity.sign(unsigned, agency, f"{issuer}#key-1", now)
        txs.append(chain.sign(agency, "vc", "issue", {
            "credential_hash": vc.compute_anchor_hash(credential), "type": "residency",
            "issuer": issuer, "status": [{"list_id": LIST_ID, "index": index}]}))
        sign_s.append(time.perf_counter() - tick)
        credentials.append(credential)
        progress("issue", number + 1, count)
    issue_s = time.perf_counter() - started
    for start in range(0, len(txs), ANCHORS_PER_BLOCK):
        chain.commit(txs[start:start + ANCHORS_PER_BLOCK])
    return credentials, sign_s, issue_s


def time_each(items: list[Any], action: Callable[[Any], object], phase: str,
              progress: Progress) -> list[float]:
    """Return the seconds `action` took on each item."""
    spans = []
    for number, item in enumerate(items):
        tick = time.perf_counter()
        action(item)
        spans.append(time.perf_counter() - tick)
        progress(phase, number + 1, len(items))
    return spans


def run_identity_bench(directory: Path, credentials: int = CREDENTIALS_DEFAULT,
                       samples: int = SAMPLES_DEFAULT,
                       progress: Progress = lambda phase, done, total: None
                       ) -> IdentityBenchResult:
    """Build a fresh identity chain in `directory` and measure (see the module docstring)."""
    if credentials < 1 or samples < 1:
        raise LocalError("--credentials and --samples must be at least 1")
    chain, agency, issuer, holder, holder_did = set_up(directory)
    now = datetime.now(UTC).replace(microsecond=0)
    issued, sign_s, issue_s = issue_credentials(chain, agency, issuer, holder_did,
                                                credentials, now, progress)
    with chain.open_client() as client:
        verify_s = time_each(issued, lambda credential: vc.verify_credential(
            client, credential, now=now), "verify", progress)
        presentations = [vc.build_presentation([issued[number % len(issued)]], holder_did,
                                               holder, f"{holder_did}#key-1", f"c-{number}",
                                               "bench.example", now)
                         for number in range(samples)]
        seen: set[str] = set()
        presentation_s = time_each(presentations, lambda vp: vc.verify_presentation(
            client, vp, vp["proof"]["challenge"], "bench.example", seen, now=now),
            "present", progress)
        entries = [issued[number % len(issued)]["credentialStatus"][0]
                   for number in range(samples)]
        status_s = time_each(entries, lambda entry: vc.check_credential_status(client, entry),
                             "status", progress)
    list_credential = build_status_list_credential(vc.compute_status_list_url(LIST_ID), issuer,
                                                   StatusList(STATUS_LIST_ENTRIES_MIN))
    read_s = time_each(issued[:samples], lambda credential: get_status(
        credential, list_credential), "status list", progress)
    chain.engine.store.close()
    return IdentityBenchResult(
        credentials=credentials, issued_per_s=credentials / issue_s,
        sign_ms_mean=statistics.fmean(sign_s) * 1000,
        verified_per_s=len(verify_s) / sum(verify_s), verify_ms_p50=compute_p50_ms(verify_s),
        presentation_ms_p50=compute_p50_ms(presentation_s),
        status_check_ms_p50=compute_p50_ms(status_s),
        status_list_read_ms_p50=compute_p50_ms(read_s),
        credential_bytes_mean=int(statistics.fmean(
            len(json.dumps(credential)) for credential in issued)),
        home=str(directory))
