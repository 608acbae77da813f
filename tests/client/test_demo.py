"""Demo agencies: each has its own key named in genesis, and the demo signs with each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from seoulchain.client.demo import CORRECTION, DEMO_DOCUMENTS, seed_demo_data
from seoulchain.codec.jsonview import to_jsonable
from seoulchain.crypto import SigningKey, sha256
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.types import Transaction, Validator, ValidatorSet
from seoulchain.node.agencies import (
    DEMO_AGENCIES,
    compute_agency_genesis,
    create_agency_keys,
    load_agency_keys,
)
from seoulchain.node.devnet import create_devnet
from seoulchain.node.home import OPERATOR_ROLES, init_home
from tests.conftest import CHAIN_ID, GENESIS_TIME_MS, LocalChain, make_key


class ChainClient:
    """The part of the node API the demo seeder uses, answered by an in-process chain."""

    def __init__(self, chain: LocalChain):
        self.chain = chain

    def get_status(self) -> dict[str, Any]:
        return {"chain_id": CHAIN_ID, "height": self.chain.engine.height}

    def query(self, service: str, name: str, **args: Any) -> dict[str, Any]:
        return {"height": self.chain.engine.height,
                "result": to_jsonable(self.chain.engine.query(service, name, args))}

    def get_next_nonce(self, public_key: bytes) -> int:
        return self.chain.engine.get_next_nonce(self.chain.engine.state, public_key)

    def submit(self, tx: Transaction) -> None:
        self.chain.commit(tx)

    def wait_for_commit(self, tx_hash: bytes) -> None:
        return None


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
