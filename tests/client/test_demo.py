"""Demo agencies: each has its own key named in genesis, and the demo signs with each."""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from seoulchain.api.views import result_view
from seoulchain.cli import vault as cli_vault
from seoulchain.cli.network import format_commands_to_try
from seoulchain.client.credentials import Revoked, compute_anchor_hash, verify_credential
from seoulchain.client.demo import (
    CITIZEN_KEY_NAMES,
    CONTRACT_PAYMENT_KRW,
    CORRECTION,
    DEMO_DOCUMENTS,
    DEMO_VINS,
    ISSUED_CORRECTION,
    ISSUED_DOCUMENTS,
    LABOR_CONTRACT,
    MERCHANT_KEY_NAME,
    seed_demo_data,
    seed_public_records,
)
from seoulchain.client.demo_identity import (
    CREDENTIAL_TYPE,
    DEMO_RECORDS,
    DIDS_FILE,
    IDENTITY_DIRECTORY,
    PUBLISHED_LIST_FILE,
    STATUS_LIST_ID,
    VAULT_FILE,
    VAULT_KEY_FILE,
    get_credential_path,
    seed_identity,
)
from seoulchain.codec.jsonview import to_jsonable
from seoulchain.crypto import SigningKey, sha256
from seoulchain.execution.platform import get_installed_versions
from seoulchain.execution.service import load_services
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.types import Transaction, Validator, ValidatorSet
from seoulchain.node.agencies import (
    DEMO_AGENCIES,
    compute_agency_genesis,
    create_agency_keys,
    load_agency_keys,
)
from seoulchain.node.devnet import create_devnet
from seoulchain.node.home import OPERATOR_ROLES, Home, init_home
from seoulchain.vault import Vault
from tests.conftest import CHAIN_ID, GENESIS_TIME_MS, LocalChain, make_key
from tests.test_docs_commands import check_parses


class ChainClient:
    """The part of the node API the demo seeder uses, answered by an in-process chain."""

    def __init__(self, chain: LocalChain):
        self.chain = chain
        self.results: dict[bytes, dict[str, Any]] = {}

    def get_status(self) -> dict[str, Any]:
        return {"chain_id": CHAIN_ID, "height": self.chain.engine.height}

    def query(self, service: str, name: str, **args: Any) -> dict[str, Any]:
        return {"height": self.chain.engine.height,
                "result": to_jsonable(self.chain.engine.query(service, name, args))}

    def get_next_nonce(self, public_key: bytes) -> int:
        return self.chain.engine.get_next_nonce(self.chain.engine.state, public_key)

    def get_account(self, public_key: bytes) -> dict[str, Any]:
        return {"roles": self.chain.engine.get_roles(public_key)}

    def submit(self, tx: Transaction) -> None:
        self.submit_batch([tx.encode()])

    def submit_batch(self, raws: list[bytes]) -> list[dict[str, Any]]:
        """Commit the batch in one block, as a devnet usually does."""
        block = self.chain.commit(*raws)
        for raw, result in zip(raws, block.execution.results, strict=True):
            self.results[sha256(raw)] = result_view(result)
        return [{"code": 0, "log": ""} for _ in raws]

    def wait_for_commit(self, tx_hash: bytes) -> dict[str, Any]:
        return {"status": "committed", "result": self.results[tx_hash]}


def test_devnet_gives_each_agency_its_own_key_named_in_genesis(tmp_path: Path) -> None:
    devnet = create_devnet(tmp_path / "net", 2, base_port=40000)
    genesis = Genesis.load(devnet.root / "genesis.json")
    assert [agency.name for agency in genesis.agencies] == list(DEMO_AGENCIES)
    keys = load_agency_keys(devnet.keys_dir, genesis)
    assert sorted(keys) == sorted(DEMO_AGENCIES)
    operator = SigningKey.load(devnet.keys_dir / "operator.key")
    assert genesis.get_agency_name(operator.public_key) == "city-hall"
    assert len({key.public_key for key in keys.values()}) == len(DEMO_AGENCIES)
    assert set(genesis.roles["notary.issuer"]) == {key.public_key for key in keys.values()}
    assert "validators.admin" not in genesis.roles
    assert genesis.threshold == 3  # the four agencies govern, k = 3
    saved = json.loads((devnet.root / "genesis.json").read_text())
    assert saved["version"] == 2 and saved["agencies"]["version"] == 1


def test_init_names_the_operator_agency_and_the_demo_names_four(tmp_path: Path) -> None:
    plain = init_home(tmp_path / "plain", agencies=("jongno-gu",))
    genesis = plain.load_genesis()
    assert genesis.get_agency_name(plain.load_key("operator").public_key) == "jongno-gu"
    assert genesis.threshold == 1
    demo = init_home(tmp_path / "demo", agencies=DEMO_AGENCIES)
    keys = load_agency_keys(demo.keys_dir, demo.load_genesis())
    assert sorted(keys) == sorted(DEMO_AGENCIES)
    assert keys["mapo-gu"].public_key == demo.load_key("mapo-gu").public_key


def test_demo_documents_are_anchored_by_different_agencies(tmp_path: Path) -> None:
    keys = create_agency_keys(tmp_path / "keys", DEMO_AGENCIES)
    roles, agencies = compute_agency_genesis(keys, OPERATOR_ROLES)
    validator = make_key(1)
    genesis = Genesis(CHAIN_ID, GENESIS_TIME_MS,
                      ValidatorSet.of([Validator(validator.public_key, 10, "v0")]), roles,
                      agencies, threshold=3)
    chain = LocalChain(tmp_path / "chain.sqlite", genesis, validator, keys["city-hall"])
    try:
        committed = seed_demo_data(ChainClient(chain), keys, keys["city-hall"],  # type: ignore[arg-type]
                                   tmp_path / "docs", lambda line: None)
        assert committed == len(DEMO_DOCUMENTS) + 1
        issuers = {}
        for document in [*DEMO_DOCUMENTS, CORRECTION]:
            doc_hash = sha256((tmp_path / "docs" / document.file_name).read_bytes())
            record = chain.engine.query("notary", "document", {"doc_hash": doc_hash.hex()})
            assert record is not None
            assert record["issuer"] == keys[document.agency].public_key, document.file_name
            issuers[document.agency] = record["issuer"]
        assert len(set(issuers.values())) >= 3
    finally:
        chain.store.close()


def make_demo_chain(tmp_path: Path) -> tuple[LocalChain, dict[str, SigningKey]]:
    """A one-validator chain with the four demo agencies governing at k = 3."""
    keys = create_agency_keys(tmp_path / "keys", DEMO_AGENCIES)
    roles, agencies = compute_agency_genesis(keys, OPERATOR_ROLES)
    validator = make_key(1)
    genesis = Genesis(CHAIN_ID, GENESIS_TIME_MS,
                      ValidatorSet.of([Validator(validator.public_key, 10, "v0")]), roles,
                      agencies, threshold=3, services=get_installed_versions(load_services()))
    return LocalChain(tmp_path / "chain.sqlite", genesis, validator, keys["city-hall"]), keys


def seed(client: ChainClient, keys: dict[str, SigningKey], tmp_path: Path,
         lines: list[str]) -> int:
    return seed_public_records(client, keys, tmp_path / "keys", 3,  # type: ignore[arg-type]
                               tmp_path / "docs", lines.append)


def assert_public_records_complete(chain: LocalChain, keys: dict[str, SigningKey],
                                   tmp_path: Path) -> None:
    """Every demo record is on chain, once, in its final state."""

    def ask(service: str, name: str, **args: Any) -> Any:
        return chain.engine.query(service, name, args)

    citizen_1, citizen_2 = (SigningKey.load(tmp_path / "keys" / f"{name}.key").public_key
                            for name in CITIZEN_KEY_NAMES)
    assert "vehicle.registrar" in chain.engine.get_roles(keys["city-hall"].public_key)
    sold = ask("vehicle", "history", vin=DEMO_VINS[0])
    assert sold["vehicle"]["owner"] == citizen_2
    readings = [entry["odometer_km"] for entry in sold["entries"]
                if entry.get("odometer_km") is not None]
    assert readings == sorted(readings) and len(readings) >= 3
    assert [entry["kind"] for entry in sold["entries"]] == [
        "registered", "inspection", "inspection", "repair", "transfer_offered", "transferred"]
    assert ask("vehicle", "vehicle", vin=DEMO_VINS[1])["entries"] == 3
    assert ask("vehicle", "vehicle", vin=DEMO_VINS[2])["status"] == "scrapped"

    def status_of(name: str) -> str:
        doc_hash = sha256((tmp_path / "docs" / name).read_bytes()).hex()
        return ask("document", "check", doc_hash=doc_hash,
                   at_ms=GENESIS_TIME_MS + 60_000)["status"]

    assert status_of(ISSUED_DOCUMENTS[0][0]) == "superseded"
    assert status_of(ISSUED_DOCUMENTS[1][0]) == "revoked"
    assert status_of(ISSUED_DOCUMENTS[2][0]) == "valid"
    assert status_of(ISSUED_CORRECTION[0]) == "valid"
    campaign = ask("funds", "campaign", campaign=1)
    assert (campaign["received_krw"], campaign["spent_krw"]) == (3_550_000, 1_900_000)
    assert campaign["entries"] == 5
    assert ask("funds", "campaign", campaign=2) is None
    contract = ask("funds", "contract", contract=1)
    assert contract["paid_krw"] == CONTRACT_PAYMENT_KRW
    assert sum(share["paid_krw"] for share in contract["shares"]) == CONTRACT_PAYMENT_KRW
    assert ask("funds", "contract", contract=2) is None
    labor_hash = sha256((tmp_path / "docs" / LABOR_CONTRACT[0]).read_bytes()).hex()
    labor = ask("labor", "contract", contract_hash=labor_hash)
    assert labor["status"] == "in_force"
    assert (labor["work_records"], labor["payments"]) == (1, 1)
    merchant = SigningKey.load(tmp_path / "keys" / f"{MERCHANT_KEY_NAME}.key").public_key
    assert ask("mileage", "merchant", merchant=merchant.hex()) is not None
    balances = [ask("mileage", "account", account=key.hex())["balance"]
                for key in (citizen_1, citizen_2)]
    assert balances == [2_500, 4_500]
    assert ask("mileage", "supply")["burned"] == 1_000


def test_demo_seeds_the_public_records_in_their_final_state_once(tmp_path: Path) -> None:
    chain, keys = make_demo_chain(tmp_path)
    client = ChainClient(chain)
    lines: list[str] = []
    try:
        committed = seed(client, keys, tmp_path, lines)
        assert committed == FULL_SEED_TXS and len(lines) == 5
        blocks = chain.engine.height
        assert blocks <= 6  # batched: one block per round, not one per tx
        assert_public_records_complete(chain, keys, tmp_path)
        assert seed(client, keys, tmp_path, lines) == 0
        assert chain.engine.height == blocks  # a rerun finds the data and submits nothing
    finally:
        chain.store.close()


# Transactions a full seeding commits: 11 role proposals and 22 approvals, then 34 records.
FULL_SEED_TXS = 33 + 34


class Killed(Exception):
    """The seeder stopped, as when `seoulchain devnet` is killed."""


class KilledClient(ChainClient):
    """Commits the first `txs_left` demo transactions, part of a batch included, then dies."""

    def __init__(self, chain: LocalChain, txs_left: int):
        super().__init__(chain)
        self.txs_left = txs_left

    def submit_batch(self, raws: list[bytes]) -> list[dict[str, Any]]:
        if len(raws) > self.txs_left:
            if self.txs_left:
                super().submit_batch(raws[:self.txs_left])
            raise Killed
        self.txs_left -= len(raws)
        return super().submit_batch(raws)


# Kill points: during the role grants, inside each round of records (a round part done),
# and between the last two rounds.
@pytest.mark.parametrize(("txs_before_kill", "round_part_done"), [
    (20, False), (40, True), (52, True), (62, True), (66, False)])
def test_interrupted_seeding_resumes_to_the_full_set(tmp_path: Path, txs_before_kill: int,
                                                     round_part_done: bool) -> None:
    chain, keys = make_demo_chain(tmp_path)
    lines: list[str] = []
    try:
        with pytest.raises(Killed):
            seed(KilledClient(chain, txs_before_kill), keys, tmp_path, lines)
        resumed = seed(ChainClient(chain), keys, tmp_path, lines)
        assert resumed == FULL_SEED_TXS - txs_before_kill
        assert any("records were missing" in line for line in lines) == round_part_done
        assert_public_records_complete(chain, keys, tmp_path)
        assert seed(ChainClient(chain), keys, tmp_path, lines) == 0
    finally:
        chain.store.close()


# Transactions a full identity seeding commits: 2 role proposals and 4 approvals, 3 DIDs,
# an issuer, a list, 2 credentials, a revocation and the list's anchor.
IDENTITY_SEED_TXS = 6 + 3 + 1 + 1 + 2 + 1 + 1


def seed_identities(client: ChainClient, keys: dict[str, SigningKey], tmp_path: Path,
                    lines: list[str]) -> int:
    return seed_identity(client, keys, Home(tmp_path), 3,  # type: ignore[arg-type]
                         tmp_path / "docs", lines.append)


def assert_identities_complete(chain: LocalChain, keys: dict[str, SigningKey],
                               tmp_path: Path) -> None:
    """Every DID resolves with its vault record's commitment; one credential is valid, the
    other revoked; the published list is the anchored, current one."""
    client = ChainClient(chain)
    dids = json.loads((tmp_path / "docs" / IDENTITY_DIRECTORY / DIDS_FILE).read_text())
    assert sorted(dids) == sorted(DEMO_RECORDS)
    assert {"did.registrar"} <= set(chain.engine.get_roles(keys["city-hall"].public_key))
    vault_paths = tmp_path / "data" / VAULT_FILE, tmp_path / "keys" / VAULT_KEY_FILE
    with Vault.open(*vault_paths) as vault:
        for name, did in dids.items():
            found = vault.get(did, "test", "demo check")
            assert found.record == DEMO_RECORDS[name]
            history = chain.engine.query("did", "history", {"did": did})
            assert [entry["commitment"] for entry in history["recordCommitments"]] == [
                found.commitment]
    now = datetime.now(UTC)
    valid = json.loads(get_credential_path(tmp_path / "docs", CITIZEN_KEY_NAMES[0]).read_text())
    report = verify_credential(client, valid, now=now,  # type: ignore[arg-type]
                               expected_type=CREDENTIAL_TYPE)
    assert report.subject == dids[CITIZEN_KEY_NAMES[0]]
    assert report.issuer == dids["mapo-gu"]
    revoked = json.loads(get_credential_path(tmp_path / "docs", CITIZEN_KEY_NAMES[1]).read_text())
    with pytest.raises(Revoked):
        verify_credential(client, revoked, now=now)  # type: ignore[arg-type]
    published = json.loads(
        (tmp_path / "docs" / IDENTITY_DIRECTORY / PUBLISHED_LIST_FILE).read_text())
    listing = chain.engine.query("vc", "status_list", {"list_id": STATUS_LIST_ID})
    assert listing["anchor"]["current"]
    assert listing["anchor"]["sha256"] == compute_anchor_hash(published)


def test_demo_seeds_identities_once_and_no_personal_data_on_chain(tmp_path: Path) -> None:
    chain, keys = make_demo_chain(tmp_path)
    lines: list[str] = []
    try:
        assert (VAULT_FILE, VAULT_KEY_FILE) == (cli_vault.VAULT_FILE, cli_vault.VAULT_KEY_FILE)
        assert seed_identities(ChainClient(chain), keys, tmp_path, lines) == IDENTITY_SEED_TXS
        assert_identities_complete(chain, keys, tmp_path)
        blocks = chain.engine.height
        assert seed_identities(ChainClient(chain), keys, tmp_path, lines) == 0
        assert chain.engine.height == blocks
        chain_bytes = b"".join(path.read_bytes() for path in tmp_path.glob("chain.sqlite*"))
        for record in DEMO_RECORDS.values():
            for value in record.values():
                assert value.encode() not in chain_bytes, value
    finally:
        chain.store.close()


# Kill points: during the role grants, after the DIDs, before the revocation.
@pytest.mark.parametrize("txs_before_kill", [3, 9, 12])
def test_interrupted_identity_seeding_resumes_to_the_full_set(tmp_path: Path,
                                                              txs_before_kill: int) -> None:
    chain, keys = make_demo_chain(tmp_path)
    lines: list[str] = []
    try:
        with pytest.raises(Killed):
            seed_identities(KilledClient(chain, txs_before_kill), keys, tmp_path, lines)
        resumed = seed_identities(ChainClient(chain), keys, tmp_path, lines)
        assert resumed == IDENTITY_SEED_TXS - txs_before_kill
        assert_identities_complete(chain, keys, tmp_path)
    finally:
        chain.store.close()


def test_banner_identity_commands_name_the_seeded_credentials_and_parse(tmp_path: Path) -> None:
    """The banner's `vc verify` and `vc status` lines name the files the seeding writes."""
    home = tmp_path / "devnet"
    banner = format_commands_to_try(home)
    lines = [line.split(maxsplit=1)[1] for line in banner.splitlines()
             if " vc " in line]
    assert [line.split()[:2] for line in lines] == [["vc", "verify"], ["vc", "status"]]
    for line, citizen in zip(lines, CITIZEN_KEY_NAMES, strict=True):
        words = shlex.split(line)
        assert Path(words[2]) == get_credential_path(home / "demo-docs", citizen)
        check_parses(words)
