"""`seoulchain prove` from a node home's store and `seoulchain verify` offline."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seoulchain.cli.main import app
from seoulchain.crypto import SigningKey, sha256
from seoulchain.errors import VerificationError
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.types import Transaction
from seoulchain.light.bundle import build_document_bundle, render_bundle, verify_bundle
from seoulchain.node.home import Home, init_home
from seoulchain.node.node import Node
from seoulchain.node.proofs import StoreProofSource
from tests.conftest import commit_next_height

CHAIN_ID = "prove-cli-test"
runner = CliRunner()


def submit(node: Node, key: SigningKey, nonce: int, method: str, args: dict) -> Transaction:
    tx = Transaction.create(key, chain_id=CHAIN_ID, nonce=nonce, expiry_height=1000,
                            service="notary" if method != "propose" else "gov",
                            method=method, args=args)
    check = node.submit(tx.encode())
    assert check.ok, check.log
    commit_next_height(node)
    return tx


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stopped single-validator home: an anchor, a correction, a validator added."""
    root = tmp_path_factory.mktemp("prove") / "home"
    created = init_home(root, chain_id=CHAIN_ID)
    (root.parent / "permit.pdf").write_bytes(b"building permit 112-7")
    (root.parent / "permit-fixed.pdf").write_bytes(b"building permit 112-8")
    node = Node(created)
    key = node.home.load_key("operator")
    original, fixed = (sha256((root.parent / name).read_bytes())
                       for name in ("permit.pdf", "permit-fixed.pdf"))
    submit(node, key, 1, "anchor", {"doc_hash": original, "kind": "permit"})
    submit(node, key, 2, "supersede", {"old_hash": original, "new_hash": fixed,
                                       "reason": "lot number"})
    # A second validator with a little power joins: the set changes from height 5 on (the
    # home's one agency governs alone, k = 1, so its proposal passes at once).
    newcomer = SigningKey(bytes([9]) * 32)
    submit(node, key, 3, "propose", {"kind": "set_validator", "deadline_height": 10,
                                      "public_key": newcomer.public_key, "power": 1})
    for nonce in range(4, 7):
        submit(node, key, nonce, "anchor", {"doc_hash": sha256(bytes([nonce])), "kind": "x"})
    node.close()
    return root


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_prove_document_and_verify_offline(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "doc.json"
    code, _, err = invoke("prove", "document", str(home.parent / "permit.pdf"), "--home",
                          str(home), "--out", str(out))
    assert code == 0, err
    assert "proves: document sha256:" in err
    genesis = str(home / "genesis.json")
    code, stdout, _ = invoke("verify", str(out), "--genesis", genesis,
                             "--document", str(home.parent / "permit.pdf"))
    assert code == 0
    assert "verified" in stdout and "superseded by sha256:" in stdout
    code, stdout, err = invoke("verify", str(out), "--genesis", genesis, "--document",
                               str(home.parent / "permit-fixed.pdf"))
    assert code == 2 and "NOT VERIFIED" in err


def test_prove_tx_and_state_and_a_checkpoint(home: Path, tmp_path: Path) -> None:
    genesis_path = str(home / "genesis.json")
    code, stdout, _ = invoke("prove", "state", "notary", "646f632f" + "00" * 32, "--hex",
                             "--home", str(home))
    assert code == 0
    bundle_path = tmp_path / "state.json"
    bundle_path.write_text(stdout)
    code, stdout, _ = invoke("verify", str(bundle_path), "--genesis", genesis_path, "--json")
    assert code == 0 and json.loads(stdout)["statement"].startswith('state key "notary/doc/"')
    genesis = Genesis.load(home / "genesis.json")
    tx_hash = first_tx_hash(home)
    out = tmp_path / "tx.json"
    code, _, err = invoke("prove", "tx", tx_hash, "--home", str(home), "--out", str(out),
                          "--trusted-height", "2")
    assert code == 0, err
    checkpoint = err.split("--checkpoint ")[1].split()[0]
    code, _, err = invoke("verify", str(out), "--genesis", genesis_path)
    assert code == 2 and "checkpoint" in err
    code, stdout, _ = invoke("verify", str(out), "--genesis", genesis_path, "--checkpoint",
                             checkpoint)
    assert code == 0 and "was committed at height" in stdout
    operator = Home(home).load_key("operator").public_key.hex()
    assert f"signed by operator (ed25519 {operator})" in stdout  # the agency genesis names
    assert genesis.chain_id == CHAIN_ID


def first_tx_hash(home: Path) -> str:
    from seoulchain.ledger.store import BlockStore
    from seoulchain.node.home import Home

    store = BlockStore(Home(home).store_path)
    try:
        block = store.get_block(3)
        assert block is not None
        return sha256(block.txs[0]).hex()
    finally:
        store.close()


def test_stored_validator_sets_match_every_header(home: Path) -> None:
    from seoulchain.ledger.store import BlockStore
    from seoulchain.node.home import Home

    node_home = Home(home)
    store = BlockStore(node_home.store_path)
    try:
        tip = store.get_tip()
        assert tip is not None
        hashes = set()
        for height in range(1, tip.height + 1):
            header = store.get_block(height).header
            assert store.get_validator_set(height).hash() == header.validators_hash
            assert store.get_validator_set(height + 1).hash() == header.next_validators_hash
            hashes.add(header.validators_hash)
        assert len(hashes) == 2  # the set changed once
    finally:
        store.close()


def test_every_sampled_flip_of_a_real_bundle_fails(home: Path) -> None:
    from seoulchain.ledger.store import BlockStore
    from seoulchain.node.home import Home

    node_home = Home(home)
    store = BlockStore(node_home.store_path)
    try:
        genesis = node_home.load_genesis()
        doc_hash = sha256((home.parent / "permit-fixed.pdf").read_bytes())
        data = render_bundle(build_document_bundle(StoreProofSource(genesis, store), genesis,
                                                   doc_hash))
    finally:
        store.close()
    verify_bundle(data, genesis)
    for position in sorted(random.Random(7).sample(range(len(data)), 150)):
        flipped = bytearray(data)
        flipped[position] ^= 0x04
        with pytest.raises(VerificationError):
            verify_bundle(bytes(flipped), genesis)


def test_prove_needs_a_node_or_a_home(tmp_path: Path) -> None:
    code, _, err = invoke("prove", "tx", "00" * 32)
    assert code == 1 and "--node" in err


def test_prove_vehicle_history_and_verify_offline(tmp_path: Path) -> None:
    """`prove vehicle VIN` proves the whole history; `verify` prints it line by line."""
    created = init_home(tmp_path / "cars", chain_id=CHAIN_ID)
    operator = created.load_key("operator")
    genesis = created.load_genesis()
    genesis.roles.update({"vehicle.registrar": (operator.public_key,),
                          "vehicle.inspector": (operator.public_key,)})
    genesis.save(created.genesis_path)
    node = Node(created)
    vin = "KMHEC41DBFA123456"
    for nonce, (method, args) in enumerate([
            ("register", {"vin": vin, "odometer_km": 5, "model": "Kia Ray"}),
            ("inspect", {"vin": vin, "odometer_km": 20_000, "result": "fail",
                         "note": "brake pads"})], 1):
        tx = Transaction.create(operator, chain_id=CHAIN_ID, nonce=nonce, expiry_height=1000,
                                service="vehicle", method=method, args=args)
        assert node.submit(tx.encode()).ok
        commit_next_height(node)
    node.close()
    out = tmp_path / "car.json"
    code, _, err = invoke("prove", "vehicle", vin.lower(), "--home", str(created.root),
                          "--out", str(out))
    assert code == 0, err
    code, stdout, _ = invoke("verify", str(out), "--genesis", str(created.genesis_path))
    assert code == 0
    lines = stdout.splitlines()
    assert lines[0].startswith(f'verified: vehicle {vin} (model "Kia Ray")')
    assert "2 history entries" in lines[0]
    assert "registered to owner operator (ed25519" in lines[1] and "at 5 km" in lines[1]
    assert 'inspection "fail" at 20000 km (note: "brake pads")' in lines[2]
    code, _, err = invoke("prove", "vehicle", "KMH-123", "--home", str(created.root))
    assert code != 0 and "is not a VIN" in err


def test_prove_labor_history_of_a_named_worker_and_verify_offline(tmp_path: Path) -> None:
    """`prove labor WORKER` takes a key name of HOME/keys; `verify` prints the history."""
    created = init_home(tmp_path / "jobs", chain_id=CHAIN_ID)
    employer = created.load_key("operator")
    worker = SigningKey(bytes([0x44]) * 32)
    worker.save(created.key_path("worker-1"))
    node = Node(created)
    contract = sha256(b"part-time contract, bakery")
    steps = [(employer, "propose", {"contract_hash": contract, "worker": worker.public_key,
                                    "hourly_wage_krw": 10_500, "start_date": "2026-03-02"}),
             (worker, "accept", {"contract_hash": contract}),
             (employer, "record_work", {"contract_hash": contract, "minutes": 240,
                                        "period_start": "2026-03-02",
                                        "period_end": "2026-03-08"}),
             (employer, "record_payment", {"contract_hash": contract, "amount_krw": 42_000,
                                           "period_start": "2026-03-02",
                                           "period_end": "2026-03-08"})]
    nonces: dict[bytes, int] = {}
    for key, method, args in steps:
        nonces[key.public_key] = nonces.get(key.public_key, 0) + 1
        tx = Transaction.create(key, chain_id=CHAIN_ID, nonce=nonces[key.public_key],
                                expiry_height=1000, service="labor", method=method, args=args)
        assert node.submit(tx.encode()).ok
        commit_next_height(node)
    node.close()
    out = tmp_path / "work-history.json"
    code, _, err = invoke("prove", "labor", "worker-1", "--home", str(created.root),
                          "--out", str(out))
    assert code == 0, err
    code, stdout, _ = invoke("verify", str(out), "--genesis", str(created.genesis_path))
    assert code == 0
    lines = stdout.splitlines()
    assert lines[0].startswith(f"verified: labor history of ed25519 {worker.public_key.hex()}")
    assert lines[0].endswith("): 1 contracts")
    assert lines[1].startswith(f"contract sha256:{contract.hex()} as worker (employer "
                               f"operator (ed25519 {employer.public_key.hex()}), worker ed25519 "
                               f"{worker.public_key.hex()}): ")
    assert "in force, from 2026-03-02, 10500 KRW an hour" in lines[1]
    assert lines[2].startswith("  work #1 2026-03-02 to 2026-03-08: 240 minutes at 10500 KRW")
    assert lines[3].startswith("  payment #1: 42000 KRW for 2026-03-02 to 2026-03-08")
    code, _, err = invoke("prove", "labor", "nobody", "--home", str(created.root))
    assert code != 0 and "no key named 'nobody'" in err
    code, _, err = invoke("prove", "labor", "worker-1", "--node", "http://127.0.0.1:9")
    assert code != 0 and "to name a key of HOME/keys, give --home" in err
