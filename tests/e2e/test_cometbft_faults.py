"""Faults with real processes under CometBFT (n=4, f=1), on one network of four seoulchain
applications and four CometBFT nodes (tests/e2e/cometbft_network.py):

- a CometBFT node killed with SIGKILL under load: its application stops saying so, the
  other three keep committing, and restarted it catches up with every committed block;
- a fifth node state-syncs through CometBFT while the only peer offering the snapshot hands
  out a corrupted chunk: the application refuses it (RETRY, the sender rejected) and the
  sync completes once an honest peer offers the same snapshot;
- one validator runs a non-deterministic notary service (a plugin distribution on that
  process's PYTHONPATH, shadowing the installed entry points): CometBFT there refuses the
  network's next header ("wrong Block.Header.AppHash"), the application reports the app
  hash mismatch (log, /v1/status, /metrics) and stops with status 65; the others go on;
  with the chain's services and its data moved aside, it replays the chain and rejoins.

Each test leaves the four validators running and agreeing, whatever the order.
"""

from __future__ import annotations

import base64
import importlib.metadata
import os
import shutil
import signal
import threading
import tomllib
from pathlib import Path

import httpx
import pytest
import tomli_w

from seoulchain.cli.exit_codes import EXIT_APP_HASH_MISMATCH, EXIT_ERROR
from seoulchain.crypto import SigningKey
from seoulchain.light.cometbft import compute_address
from seoulchain.node.abci import APP_HASH_REPORT_S, APP_HASH_STALL_S, prepare_cometbft_home
from seoulchain.node.devnet import P2P_PORT_OFFSET, Devnet, DevnetSupervisor
from seoulchain.node.home import Home, init_home
from tests.e2e.cometbft_network import (
    CATCH_UP_TIMEOUT_S,
    COMMIT_TIMEOUT_S,
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    VALIDATORS,
    anchor,
    find_process_ids,
    get_app_hash,
    get_height,
    get_rpc_url,
    get_rpc_urls,
    is_anchored,
    restart,
    rpc,
    start_node,
    wait_for,
)

pytestmark = pytest.mark.e2e

# Load: one anchor every LOAD_INTERVAL_S from one signer, well inside its nonce window.
LOAD_INTERVAL_S = 0.25
# Headers per /blockchain call (CometBFT's RPC answers at most 20).
BLOCKCHAIN_PAGE = 20
# Blocks the three survivors must add while a node is down.
BLOCKS_WHILE_DOWN = 3
# A state sync: CometBFT's discovery (5 s here), the light client's headers, one chunk,
# then block sync to the tip.
STATE_SYNC_TIMEOUT_S = 90.0
# A divergent node finds the mismatch APP_HASH_STALL_S after its commit, reports it for
# APP_HASH_REPORT_S, then stops; a few seconds more for the check interval and the exit.
DIVERGENCE_TIMEOUT_S = APP_HASH_STALL_S + APP_HASH_REPORT_S + 30.0


@pytest.fixture(scope="module")
def network(cometbft_network: tuple[Devnet, DevnetSupervisor]
            ) -> tuple[Devnet, DevnetSupervisor]:
    """The module's four CometBFT nodes and applications."""
    return cometbft_network


class AnchorLoad:
    """Anchors documents through one node's RPC from a thread, one every LOAD_INTERVAL_S."""

    def __init__(self, url: str, key: SigningKey, chain_id: str):
        self.url, self.key, self.chain_id = url, key, chain_id
        self.sent: list[bytes] = []
        self.errors: list[str] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        nonce = 1
        while not self.stopped.wait(LOAD_INTERVAL_S):
            try:
                self.sent.append(anchor(self.url, self.key, self.chain_id, nonce))
                nonce += 1
            except (AssertionError, httpx.HTTPError, ValueError) as exc:
                self.errors.append(str(exc))

    def __enter__(self) -> AnchorLoad:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        self.thread.join()


def find_cometbft_pid(home: Home) -> int:
    """Return the pid of the `cometbft start` process serving `home`."""
    root = str(home.root.absolute() / "cometbft")
    found = [pid for pid, cmdline in find_process_ids(home.root)
             if "cometbft start" in cmdline and root in cmdline]
    assert len(found) == 1, found
    return found[0]


def read_log(home: Home) -> str:
    return (home.root / "node.log").read_text(errors="replace")


def get_app_hashes(url: str, last: int) -> dict[int, str]:
    """Return the app hash of every block 1..last, from headers 2..last + 1 (CometBFT's
    /blockchain answers BLOCKCHAIN_PAGE headers per call)."""
    hashes: dict[int, str] = {}
    for low in range(2, last + 2, BLOCKCHAIN_PAGE):
        high = min(low + BLOCKCHAIN_PAGE - 1, last + 1)
        metas = rpc(url, "blockchain", minHeight=str(low), maxHeight=str(high))["block_metas"]
        hashes.update({int(meta["header"]["height"]) - 1: meta["header"]["app_hash"]
                       for meta in metas})
    assert sorted(hashes) == list(range(1, last + 1)), url
    return hashes


def check_app_hashes_agree(urls: list[str]) -> int:
    """Assert the nodes' headers h + 1 carry one app hash for each common h; return the last
    height compared."""
    common = min(get_height(url) for url in urls) - 1
    first, *others = [get_app_hashes(url, common) for url in urls]
    for hashes in others:
        assert hashes == first, [h for h in first if hashes[h] != first[h]][:3]
    return common


def test_a_cometbft_node_killed_under_load_catches_up_and_nothing_is_lost(
        network: tuple[Devnet, DevnetSupervisor]) -> None:
    devnet, supervisor = network
    urls = get_rpc_urls(devnet)
    chain_id = str(devnet.load_info()["chain_id"])
    key = SigningKey.load(devnet.keys_dir / "operator.key")
    wait_for(lambda: all(get_height(url) >= 2 for url in urls), START_TIMEOUT_S,
             "every node at height 2")
    victim = supervisor.nodes[2]

    with AnchorLoad(urls[0], key, chain_id) as load:
        wait_for(lambda: len(load.sent) >= 4, COMMIT_TIMEOUT_S, "the load to start")
        wait_for(lambda: is_anchored(urls[2], load.sent[0]), COMMIT_TIMEOUT_S,
                 "node 2 to commit under load")
        committed_before = [doc for doc in list(load.sent) if is_anchored(urls[0], doc)]
        os.kill(find_cometbft_pid(victim.home), signal.SIGKILL)
        # The application stops with its CometBFT and says why.
        assert victim.process.wait(timeout=STOP_TIMEOUT_S) == EXIT_ERROR
        assert "cometbft exited with status -9" in read_log(victim.home)

        down_at = get_height(urls[0])
        wait_for(lambda: min(get_height(urls[i]) for i in (0, 1, 3))
                 >= down_at + BLOCKS_WHILE_DOWN, COMMIT_TIMEOUT_S,
                 "the other three to keep committing")
        restart(supervisor, 2)
        wait_for(lambda: get_height(urls[2]) >= get_height(urls[0]) - 1, CATCH_UP_TIMEOUT_S,
                 "node 2 to catch up")
    assert not load.errors, load.errors[:3]
    assert len(load.sent) > len(committed_before)
    wait_for(lambda: all(is_anchored(urls[0], doc) for doc in load.sent), COMMIT_TIMEOUT_S,
             "every anchor of the load")
    last_anchor_height = get_height(urls[0])
    wait_for(lambda: get_height(urls[2]) > last_anchor_height, CATCH_UP_TIMEOUT_S,
             "node 2 past the last anchor")
    # One app hash per height on all four: node 2 holds the same state, every anchor.
    assert check_app_hashes_agree(urls) >= last_anchor_height
    assert all(is_anchored(urls[2], doc) for doc in committed_before + load.sent[-3:])


def make_observer_home(devnet: Devnet) -> Home:
    """Return a new non-validator home of the devnet's chain, peered with every validator,
    on the ports the network fixture keeps spare."""
    info = devnet.load_info()
    base = int(str(info["base_port"]))
    home = init_home(devnet.root / f"node-{VALIDATORS}", chain_id=str(info["chain_id"]),
                     moniker="observer", api_port=base + VALIDATORS)
    shutil.copy(devnet.root / "genesis.json", home.genesis_path)
    config = home.load_config()
    config.p2p.listen_host = "127.0.0.1"
    config.p2p.listen_port = base + P2P_PORT_OFFSET + VALIDATORS
    config.p2p.peers = [f"{validator.load_key('validator').public_key.hex()}@127.0.0.1:"
                        f"{validator.load_config().p2p.listen_port}"
                        for validator in devnet.node_homes]
    config.save(home.config_path)
    return home


def enable_state_sync(home: Home, rpc_servers: list[str], trust_height: int,
                      trust_hash: str) -> None:
    """Turn on CometBFT's state sync in the home's CometBFT config (kept across starts)."""
    path = prepare_cometbft_home(home) / "config" / "config.toml"
    settings = tomllib.loads(path.read_text())
    settings["statesync"].update({
        "enable": True, "rpc_servers": ",".join(rpc_servers), "trust_height": trust_height,
        "trust_hash": trust_hash, "trust_period": "168h0m0s",
        # CometBFT's minimums for both (5 s), so the test does not wait its 15 s default.
        "discovery_time": "5s", "chunk_request_timeout": "5s"})
    path.write_text(tomli_w.dumps(settings))


def corrupt_chunks(directory: Path) -> None:
    """Flip one byte in the middle of every chunk file of a snapshot directory."""
    for chunk in sorted(directory.glob("chunk-*.cbor")):
        data = bytearray(chunk.read_bytes())
        data[len(data) // 2] ^= 0xFF
        chunk.write_bytes(bytes(data))


def test_state_sync_refuses_a_corrupted_chunk_and_completes_from_an_honest_peer(
        network: tuple[Devnet, DevnetSupervisor], tmp_path: Path) -> None:
    devnet, supervisor = network
    urls = get_rpc_urls(devnet)
    homes = devnet.node_homes
    chain_id = str(devnet.load_info()["chain_id"])
    key = SigningKey.load(devnet.keys_dir / "mapo-gu.key")
    wait_for(lambda: all(get_height(url) >= 2 for url in urls), START_TIMEOUT_S,
             "every node at height 2")
    docs = [anchor(urls[0], key, chain_id, nonce) for nonce in (1, 2, 3)]
    wait_for(lambda: all(is_anchored(urls[0], doc) for doc in docs), COMMIT_TIMEOUT_S,
             "the anchors")

    # Node 0 takes a snapshot; it alone offers it, with every chunk corrupted on its disk.
    taken = httpx.post(f"{devnet.api_urls()[0]}/v1/snapshots", timeout=30.0, headers={
        "Authorization": f"Bearer {homes[0].load_admin_token()}"})
    assert taken.status_code == 200, taken.text
    height = int(taken.json()["height"])
    served = homes[0].data_dir / "snapshots" / f"{height:012d}"
    pristine = tmp_path / served.name
    shutil.copytree(served, pristine)
    corrupt_chunks(served)

    wait_for(lambda: get_height(urls[0]) >= height + 2, COMMIT_TIMEOUT_S, "header h + 2")
    trust_hash = rpc(urls[0], "commit", height=str(height))["signed_header"]["commit"][
        "block_id"]["hash"]
    observer_home = make_observer_home(devnet)
    enable_state_sync(observer_home, urls[:2], height, trust_hash)
    liar = compute_address(homes[0].load_key("validator").public_key).hex()
    observer = start_node(observer_home)
    try:
        refused = f"snapshot chunk 0 from {liar} refused"
        wait_for(lambda: refused in read_log(observer_home), STATE_SYNC_TIMEOUT_S,
                 "the observer to refuse node 0's corrupted chunk")
        assert get_height(get_rpc_url(observer_home)) <= 0  # nothing restored from it

        # Node 1 now offers the same snapshot, intact; restarted, it is asked for it again.
        shutil.copytree(pristine, homes[1].data_dir / "snapshots" / pristine.name)
        supervisor.nodes[1].process.send_signal(signal.SIGTERM)
        assert supervisor.nodes[1].process.wait(timeout=STOP_TIMEOUT_S) == 0
        restart(supervisor, 1)
        observer_rpc = get_rpc_url(observer_home)
        wait_for(lambda: get_height(observer_rpc) >= get_height(urls[0]) - 1,
                 STATE_SYNC_TIMEOUT_S, "the observer to state-sync and catch up")
        assert f"restored the snapshot of height {height}" in read_log(observer_home)
        snapshots = httpx.get(f"http://127.0.0.1:{observer_home.load_config().api.port}"
                              f"/v1/snapshots", timeout=10.0).json()
        assert snapshots["base_height"] == height
        assert all(is_anchored(observer_rpc, doc) for doc in docs)
        info = rpc(observer_rpc, "abci_info")["response"]
        app_height = int(info["last_block_height"])
        wait_for(lambda: get_height(urls[0]) > app_height, COMMIT_TIMEOUT_S, "the next header")
        assert bytes.fromhex(get_app_hash(urls[0], app_height)) == \
            base64.b64decode(info["last_block_app_hash"])
    finally:
        observer.process.send_signal(signal.SIGTERM)
        observer.process.wait(timeout=STOP_TIMEOUT_S)


DIVERGENT_MODULE = '''"""A notary that records where it ran: its state differs from other nodes'."""

import os

from seoulchain.services.notary import NotaryService


class DivergentNotaryService(NotaryService):
    """The installed notary, same name and version, but with a random metadata entry."""

    def put_new_record(self, ctx, doc_hash, kind, metadata, supersedes):
        metadata = {**metadata, "ran-on": os.urandom(4).hex()}
        super().put_new_record(ctx, doc_hash, kind, metadata, supersedes)
'''


def make_divergent_plugin(directory: Path) -> Path:
    """Write a distribution named like seoulchain whose `seoulchain.services` entry points
    are the installed ones but for notary, the divergent one; first on PYTHONPATH, it
    shadows the installed distribution's entry points for that process only."""
    installed = importlib.metadata.distribution("seoulchain")
    info = directory / f"seoulchain-{installed.version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: seoulchain\nVersion: {installed.version}\n")
    entries = [f"{entry.name} = {entry.value}" for entry in installed.entry_points
               if entry.group == "seoulchain.services" and entry.name != "notary"]
    entries.append("notary = divergent_notary:DivergentNotaryService")
    (info / "entry_points.txt").write_text(
        "[seoulchain.services]\n" + "\n".join(entries) + "\n")
    (directory / "divergent_notary.py").write_text(DIVERGENT_MODULE)
    return directory


def test_a_validator_whose_service_diverges_reports_the_app_hash_and_stops(
        network: tuple[Devnet, DevnetSupervisor], tmp_path: Path) -> None:
    devnet, supervisor = network
    urls = get_rpc_urls(devnet)
    chain_id = str(devnet.load_info()["chain_id"])
    key = SigningKey.load(devnet.keys_dir / "jongno-gu.key")
    divergent = supervisor.nodes[3]
    api = devnet.api_urls()[3]
    wait_for(lambda: all(get_height(url) >= 2 for url in urls), START_TIMEOUT_S,
             "every node at height 2")

    divergent.process.send_signal(signal.SIGTERM)
    assert divergent.process.wait(timeout=STOP_TIMEOUT_S) == 0
    plugin = make_divergent_plugin(tmp_path / "plugin")
    restart(supervisor, 3, env={**os.environ, "PYTHONPATH": str(plugin)})
    divergent = supervisor.nodes[3]
    wait_for(lambda: get_height(urls[3]) >= get_height(urls[0]) - 1, CATCH_UP_TIMEOUT_S,
             "node 3 to resume with the divergent notary")
    assert divergent.process.poll() is None

    doc = anchor(urls[0], key, chain_id, 1)
    wait_for(lambda: is_anchored(urls[0], doc), COMMIT_TIMEOUT_S, "the anchor")
    status: dict[str, object] = {}

    def is_reported() -> bool:
        try:
            status.update(httpx.get(f"{api}/v1/status", timeout=5.0).json())
        except (httpx.HTTPError, ValueError):
            return False
        return bool(status.get("app_hash_mismatch"))
    wait_for(is_reported, DIVERGENCE_TIMEOUT_S, "node 3 to report the mismatch")
    mismatch = status["app_hash_mismatch"]
    assert isinstance(mismatch, dict)
    height = int(mismatch["height"])
    assert mismatch["network"] == get_app_hash(urls[0], height).lower()
    assert mismatch["ours"] != mismatch["network"]
    metrics = httpx.get(f"{api}/metrics", timeout=5.0).text
    assert f"seoulchain_app_hash_mismatch_height {float(height)}" in metrics

    assert divergent.process.wait(timeout=DIVERGENCE_TIMEOUT_S) == EXIT_APP_HASH_MISMATCH
    log = read_log(divergent.home)
    assert f"fatal: app hash mismatch at height {height}: this node's block id is " \
        f"{mismatch['ours']}, the network's header {height + 1}" in log
    assert log.count("fatal:") == 1
    cometbft_log = (divergent.home.root / "cometbft" / "cometbft.log").read_text()
    assert "wrong Block.Header.AppHash" in cometbft_log

    # The other three never followed it: they go on committing and agree.
    stopped_at = get_height(urls[0])
    wait_for(lambda: min(get_height(url) for url in urls[:3])
             >= stopped_at + BLOCKS_WHILE_DOWN, COMMIT_TIMEOUT_S,
             "the other three to keep committing")
    assert check_app_hashes_agree(urls[:3]) > height

    # Recovery (docs/operations.md): the chain's services, the data moved aside but for
    # the validator's signing state; the node replays the chain from its peers.
    move_data_aside(divergent.home, tmp_path / "diverged")
    restart(supervisor, 3)
    wait_for(lambda: get_height(urls[3]) >= get_height(urls[0]) - 1, CATCH_UP_TIMEOUT_S,
             "node 3 to replay the chain")
    assert is_anchored(urls[3], doc)
    assert check_app_hashes_agree(urls) > height


def move_data_aside(home: Home, aside: Path) -> None:
    """Move the application's data/ and CometBFT's data/ to `aside`, keeping CometBFT's
    priv_validator_state.json (the last height, round and step the validator signed)."""
    aside.mkdir()
    shutil.move(home.data_dir, aside / "data")
    cometbft_data = home.root / "cometbft" / "data"
    shutil.move(cometbft_data, aside / "cometbft-data")
    cometbft_data.mkdir()
    shutil.copy(aside / "cometbft-data" / "priv_validator_state.json", cometbft_data)
