"""Networked validators on one machine: a devnet as separate processes, under load and faults.

Theory of operation: `LocalNetwork` is a devnet (node/devnet.py) whose validators are
started, stopped (SIGTERM), killed (SIGKILL), paused (SIGSTOP) and resumed one at a time,
each in its own process group so that a signal reaches that node and nothing else. The
end-to-end tests (tests/e2e) and the benchmarks below share it:

- `run_network_bench` writes issuer keys into the genesis, pre-signs notary anchors (or,
  with a mix, the city services' load of bench/mix.py: its roles go into the genesis and
  its setup blocks are committed before the clock starts), starts the validators, runs the
  load generator (bench/loadgen.py) as its own process and reports committed tx/s and
  commit latency (submit -> committed, as the client sees it), checking that every
  acknowledged transaction was committed exactly once and that every node holds the same
  blocks;
- `run_catchup_bench` builds a long chain fast (no commit pause), gives one validator an
  empty disk, restarts the network with the default configuration and times that
  validator's block sync back to the tip.

Everything listens on 127.0.0.1; ports come from `find_base_port`.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Protocol

from seoulchain.bench.ledger import BENCH_SIGNERS, presign_anchors
from seoulchain.bench.loadgen import LoadConfig, write_tx_file
from seoulchain.bench.mix import MixWorkload, check_mix
from seoulchain.client.http import NodeClient, NodeUnavailable
from seoulchain.crypto import SigningKey, sha256
from seoulchain.errors import LocalError, RemoteError
from seoulchain.execution.results import ResultCode
from seoulchain.ledger.genesis import Genesis
from seoulchain.node.config import ChainConfig, ConsensusTimeouts, NodeConfig
from seoulchain.node.devnet import (
    NODE_STOP_TIMEOUT_S,
    P2P_PORT_OFFSET,
    Devnet,
    create_devnet,
    read_log_tail,
)
from seoulchain.node.home import Home
from seoulchain.node.parent import kill_with_parent

Progress = Callable[[str, int, int], None]
Configure = Callable[[int, NodeConfig], None]
# Ports are drawn below Linux's ephemeral range (32768+), where clients' own ports live.
BASE_PORT_MIN = 20_000
BASE_PORT_MAX = 32_000
BASE_PORT_ATTEMPTS = 64
# A node busy beyond this long answering its status counts as not answering.
STATUS_TIMEOUT_S = 2.0
WAIT_POLL_S = 0.2
# Node start: imports, store open and WAL replay on a loaded 2-core machine.
NODE_START_TIMEOUT_S = 60.0
# Time the load generator gets beyond its own submit and drain bounds before it is killed.
LOAD_PROCESS_GRACE_S = 120.0
# Txs per page when reading a block's result codes (the API's page limit).
BLOCK_TXS_PAGE = 100
# A setup block of the city mix (a few hundred txs) commits in seconds; this is far beyond.
SETUP_COMMIT_TIMEOUT_S = 120.0
BENCH_CHAIN_ID = "seoul-bench-net-1"
# How often the catch-up benchmark samples heights.
CATCHUP_POLL_S = 0.25
CATCHUP_TIMEOUT_S = 3600.0
# Small appends each followed by an fsync, to report the disk's sync latency beside the
# catch-up figure (block sync is bound by it): enough for a stable mean, under a second.
FSYNC_PROBE_WRITES = 100
FSYNC_PROBE_BYTES = 256


def noop_progress(phase: str, done: int, total: int) -> None:
    """A progress callback that reports nothing."""


# ------------------------------------------------------------------------------ ports


def is_port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def find_base_port(validators: int, rng: random.Random | None = None) -> int:
    """Return a base port whose API (base + i) and p2p (base + 100 + i) ports are all free."""
    rng = rng or random.Random()
    for _ in range(BASE_PORT_ATTEMPTS):
        base = rng.randrange(BASE_PORT_MIN, BASE_PORT_MAX)
        ports = [base + index for index in range(validators)]
        ports += [base + P2P_PORT_OFFSET + index for index in range(validators)]
        if all(is_port_free(port) for port in ports):
            return base
    raise LocalError(f"no free block of ports found in {BASE_PORT_MIN}..{BASE_PORT_MAX}")


# ------------------------------------------------------------------------------ genesis


def add_issuers(devnet: Devnet, count: int) -> list[SigningKey]:
    """Give `count` new keys the notary.issuer role in the devnet's genesis, in every copy.

    Many signers, as in a city with many clerks: one signer's pipelined nonces are bounded
    by the mempool's nonce window. Only for a devnet that has not started yet.
    """
    keys = [SigningKey.generate() for _ in range(count)]
    add_roles(devnet, {"notary.issuer": tuple(key.public_key for key in keys)})
    return keys


def add_roles(devnet: Devnet, grants: Mapping[str, tuple[bytes, ...]]) -> None:
    """Grant each role to more keys in the devnet's genesis, in every copy (before start)."""
    genesis = Genesis.load(devnet.root / "genesis.json")
    roles = dict(genesis.roles)
    for role, keys in grants.items():
        roles[role] = (*roles.get(role, ()), *keys)
    updated = replace(genesis, roles=roles)  # keeps the named agencies
    updated.save(devnet.root / "genesis.json")
    for home in devnet.node_homes:
        updated.save(home.genesis_path)


# ------------------------------------------------------------------------------ processes


@dataclass
class NodeProcess:
    """One validator: its home and, while started, its process and open log."""

    index: int
    home: Home
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    paused: bool = False

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal_group(self, signum: int) -> None:
        """Send `signum` to the node's process group (the node and anything it started)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)


class NetworkTimeout(LocalError):
    """A local network did not reach the awaited state in time."""


class LocalNetwork:
    """A devnet's validators as processes on loopback, each controlled on its own."""

    # The consensus engine each node runs (`seoulchain start --engine`).
    engine = "builtin"

    def __init__(self, devnet: Devnet, issuers: Sequence[SigningKey] = ()):
        self.devnet = devnet
        self.issuers = list(issuers)
        self.nodes = [NodeProcess(index, home) for index, home in enumerate(devnet.node_homes)]
        self.urls = devnet.api_urls()
        self.clients = [NodeClient(url, timeout_s=STATUS_TIMEOUT_S) for url in self.urls]
        self.chain_id = Genesis.load(devnet.root / "genesis.json").chain_id

    @classmethod
    def create(cls, root: Path, validators: int = 4, *, issuers: int = 0,
               chain_id: str = "seoul-devnet-1", base_port: int | None = None,
               configure: Configure | None = None,
               roles: Mapping[str, tuple[bytes, ...]] | None = None) -> LocalNetwork:
        """Write a devnet in `root` (on free ports), with issuer keys, more role grants and
        edited configs."""
        devnet = create_devnet(root, validators, chain_id=chain_id,
                               base_port=base_port or find_base_port(validators))
        keys = add_issuers(devnet, issuers) if issuers else []
        if roles:
            add_roles(devnet, roles)
        network = cls(devnet, keys)
        if configure is not None:
            for index in range(validators):
                network.configure(index, lambda config, index=index: configure(index, config))
        return network

    def __enter__(self) -> LocalNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def size(self) -> int:
        return len(self.nodes)

    def configure(self, index: int, edit: Callable[[NodeConfig], None]) -> None:
        """Edit node `index`'s config.toml (takes effect at its next start)."""
        home = self.nodes[index].home
        config = NodeConfig.load(home.config_path)
        edit(config)
        config.save(home.config_path)

    def load_config(self, index: int) -> NodeConfig:
        return NodeConfig.load(self.nodes[index].home.config_path)

    # -------------------------------------------------------------------- lifecycle

    def start(self, index: int, python_options: Sequence[str] = ()) -> None:
        """Start node `index` in its own process group, appending to its node.log.

        The node stops by itself if this process dies (`--parent-pid`); call from the main
        thread (on Linux the kernel ties that to the thread that started the node).
        """
        node = self.nodes[index]
        if node.is_running():
            raise LocalError(f"node {index} is already running")
        if node.log is not None:
            node.log.close()
        node.log = (node.home.root / "node.log").open("ab")
        node.process = subprocess.Popen(
            [sys.executable, *python_options, "-m", "seoulchain", "start", "--home",
             str(node.home.root), "--parent-pid", str(os.getpid()), "--engine", self.engine],
            stdout=node.log, stderr=subprocess.STDOUT, start_new_session=True)
        node.paused = False

    def start_all(self) -> None:
        for index in range(self.size):
            if not self.nodes[index].is_running():
                self.start(index)

    def stop(self, index: int, timeout_s: float = NODE_STOP_TIMEOUT_S) -> int | None:
        """SIGTERM node `index` and wait; kill it if it does not stop. Return its exit code."""
        node = self.nodes[index]
        if node.process is None:
            return None
        if node.paused:
            self.resume(index)
        node.signal_group(signal.SIGTERM)
        try:
            node.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            node.signal_group(signal.SIGKILL)
            node.process.wait()
        return node.process.returncode

    def stop_all(self) -> None:
        for index in range(self.size):
            if self.nodes[index].is_running():
                self.nodes[index].signal_group(signal.SIGCONT)
                self.nodes[index].signal_group(signal.SIGTERM)
        for index in range(self.size):
            self.stop(index)

    def kill(self, index: int) -> None:
        """SIGKILL node `index`: a crash at whatever point it had reached."""
        node = self.nodes[index]
        node.signal_group(signal.SIGKILL)
        if node.process is not None:
            node.process.wait()
        node.paused = False

    def pause(self, index: int) -> None:
        """SIGSTOP node `index`: it holds its sockets but does nothing."""
        self.nodes[index].signal_group(signal.SIGSTOP)
        self.nodes[index].paused = True

    def resume(self, index: int) -> None:
        self.nodes[index].signal_group(signal.SIGCONT)
        self.nodes[index].paused = False

    def close(self) -> None:
        """Kill every node still running and release clients and logs (idempotent)."""
        for node in self.nodes:
            node.signal_group(signal.SIGKILL)
            if node.process is not None:
                node.process.wait()
            if node.log is not None:
                node.log.close()
                node.log = None
        for client in self.clients:
            client.close()

    # -------------------------------------------------------------------- observing

    def get_status(self, index: int) -> dict[str, Any] | None:
        """Return node `index`'s status, or None if it does not answer (quickly)."""
        if not self.nodes[index].is_running() or self.nodes[index].paused:
            return None
        try:
            return self.clients[index].get_status()
        except (NodeUnavailable, RemoteError, ValueError):
            return None

    def get_height(self, index: int) -> int | None:
        status = self.get_status(index)
        return None if status is None else int(status["height"])

    def get_heights(self, indexes: Sequence[int] | None = None) -> list[int | None]:
        return [self.get_height(index) for index in self.select(indexes)]

    def select(self, indexes: Sequence[int] | None) -> list[int]:
        return list(range(self.size)) if indexes is None else list(indexes)

    def describe(self) -> str:
        """Heights, exit codes and log tails, for a failure message."""
        lines = []
        for node in self.nodes:
            code = None if node.process is None else node.process.poll()
            state = ("paused" if node.paused else "running" if node.is_running()
                     else f"exited {code}" if node.process is not None else "not started")
            lines.append(f"--- node-{node.index} ({state}, height {self.get_height(node.index)})"
                         f"\n{read_log_tail(node.home, 8)}")
        return "\n".join(lines)

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Poll `predicate` until it holds; raise `NetworkTimeout` naming `what` otherwise."""
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise NetworkTimeout(f"timed out after {timeout_s:.0f} s waiting for {what}\n"
                                     f"{self.describe()}")
            for node in self.nodes:
                if node.process is not None and node.process.poll() not in (None, 0, -9, -15):
                    raise LocalError(f"node {node.index} exited with {node.process.poll()} "
                                     f"while waiting for {what}\n{self.describe()}")
            time.sleep(WAIT_POLL_S)

    def wait_for_height(self, height: int, indexes: Sequence[int] | None = None,
                        timeout_s: float = NODE_START_TIMEOUT_S) -> None:
        """Wait until every selected node has committed `height`."""
        chosen = self.select(indexes)

        def reached() -> bool:
            return all((value or 0) >= height for value in self.get_heights(chosen))
        self.wait_until(reached, timeout_s, f"height {height} on nodes {chosen}")

    def get_block_digest(self, index: int, height: int) -> BlockDigest:
        view = self.clients[index].get_json(f"/v1/blocks/{height}")
        return BlockDigest(view["block_id"], view["header"]["state_root"],
                           frozenset(view["txs"]))

    def check_agreement(self, indexes: Sequence[int] | None = None) -> Agreement:
        """Compare block ids and state roots of the selected nodes at every common height."""
        chosen = self.select(indexes)
        heights = self.get_heights(chosen)
        if any(height is None for height in heights):
            raise LocalError(f"nodes {chosen} must all answer; heights {heights}")
        common = min(height for height in heights if height is not None)
        agreement = Agreement(common, {})
        for height in range(1, common + 1):
            digests = [self.get_block_digest(index, height) for index in chosen]
            agreement.txs_by_height[height] = digests[0].txs
            for index, digest in zip(chosen[1:], digests[1:], strict=True):
                if digest != digests[0]:
                    agreement.mismatches.append(
                        f"height {height}: node-{index} has block {digest.block_id[:16]} "
                        f"state {digest.state_root[:16]}, node-{chosen[0]} has "
                        f"{digests[0].block_id[:16]} state {digests[0].state_root[:16]}")
        return agreement


@dataclass(frozen=True)
class BlockDigest:
    """What must be identical about a height on every node."""

    block_id: str
    state_root: str
    txs: frozenset[str]


@dataclass
class Agreement:
    """The outcome of comparing nodes height by height."""

    common_height: int
    txs_by_height: dict[int, frozenset[str]]
    mismatches: list[str] = field(default_factory=list)

    def find_height(self, tx_hash: str) -> int | None:
        for height, txs in self.txs_by_height.items():
            if tx_hash in txs:
                return height
        return None


# ------------------------------------------------------------------------------ load process


@contextlib.contextmanager
def running_load(network: LocalNetwork, tx_file: Path, out: Path, *, rate_tx_per_s: float,
                 batch_txs: int, drain_idle_s: float, drain_max_s: float,
                 from_height: int = 1) -> Iterator[subprocess.Popen[bytes]]:
    """Run the load generator against every node; kill it on the way out if still running."""
    command = [sys.executable, "-m", "seoulchain.bench.loadgen", "--txs", str(tx_file),
               "--rate", str(rate_tx_per_s), "--batch", str(batch_txs),
               "--drain-idle-s", str(drain_idle_s), "--drain-max-s", str(drain_max_s),
               "--from-height", str(from_height), "--out", str(out)]
    for url in network.urls:
        command += ["--node", url]
    log = (out.parent / "loadgen.log").open("ab")
    # It stops by itself when its parent dies too (call from the main thread: node/parent.py).
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True, preexec_fn=kill_with_parent)
    try:
        yield process
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def read_load_report(out: Path, process: subprocess.Popen[bytes], timeout_s: float
                     ) -> dict[str, Any]:
    """Wait for the load generator to finish and return its report."""
    try:
        code = process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise LocalError(f"the load generator did not finish within {timeout_s:.0f} s") from exc
    if code != 0 or not out.exists():
        log = (out.parent / "loadgen.log").read_text(errors="replace")[-2000:]
        raise LocalError(f"the load generator failed with code {code}:\n{log}")
    return json.loads(out.read_text())


# ------------------------------------------------------------------------------ throughput


def commit_setup_blocks(network: LocalNetwork, blocks: Sequence[Sequence[bytes]]) -> int:
    """Submit each setup block's txs and wait until all commit OK; return the last height."""
    if not blocks:
        return 0
    # Its own client: the network's status clients time out before a commit wait ends.
    with NodeClient(network.urls[0]) as client:
        return submit_setup_blocks(client, blocks)


def submit_setup_blocks(client: NodeClient, blocks: Sequence[Sequence[bytes]]) -> int:
    """Submit the setup blocks one after another through `client`; return the last height."""
    height = 0
    for block in blocks:
        admissions = client.submit_batch(list(block))
        refused = [admission for admission in admissions if admission["code"] != 0]
        if refused:
            raise LocalError(f"a setup tx was refused: {refused[0]['log']}")
        for raw in block:
            status = client.wait_for_commit(sha256(raw), SETUP_COMMIT_TIMEOUT_S)
            if status["result"]["code"] != 0:
                raise LocalError(f"a setup tx failed: {status['result']['log']}")
            height = max(height, int(status["height"]))
    return height


def count_results_not_ok(client: NodeClient, first_height: int, last_height: int
                         ) -> dict[str, int]:
    """Return how many txs of heights first..last executed with each result other than OK."""
    counts: dict[str, int] = {}
    for height in range(first_height, last_height + 1):
        cursor = None
        while True:
            page = client.get_json(f"/v1/blocks/{height}/txs", limit=BLOCK_TXS_PAGE,
                                   **({} if cursor is None else {"cursor": cursor}))
            for item in page["items"]:
                if item["code"] != ResultCode.OK:
                    name = ResultCode(item["code"]).name
                    counts[name] = counts.get(name, 0) + 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
    return counts


def presign_load(network: LocalNetwork, txs: int, workload: MixWorkload | None,
                 progress: Progress) -> tuple[list[bytes], list[list[bytes]]]:
    """Return the timed txs and the setup blocks: notary anchors, or the mix's load."""
    if workload is None:
        return presign_anchors(network.issuers, network.chain_id, txs, progress), []
    # The setup is signed first: its txs take each signer's first nonces.
    setup = workload.setup_blocks(network.chain_id)
    progress("sign", 0, txs)
    raw_txs = [workload.sign_next(network.chain_id) for _ in range(txs)]
    progress("sign", txs, txs)
    return raw_txs, setup


class OtherEngine(Protocol):
    """A consensus engine other than the built-in one, as the benchmark drives it."""

    name: str
    network_class: type[LocalNetwork]

    def prepare(self, network: LocalNetwork, commit_pause_ms: int | None,
                batch_txs: int) -> None: ...

    def run_load(self, network: LocalNetwork, txs: Sequence[bytes], out: Path,
                 config: LoadConfig) -> dict[str, Any]: ...

    def count_results_not_ok(self, network: LocalNetwork, first_height: int,
                             last_height: int) -> dict[str, int]: ...

    def get_timeout_commit_ms(self, network: LocalNetwork) -> int: ...


@dataclass(frozen=True)
class NetworkBenchResult:
    validators: int
    txs_offered: int
    rate_offered_tx_per_s: float
    batch_txs: int
    commit_pause_ms: int
    txs_acknowledged: int
    txs_committed: int
    committed_tx_per_s: float
    latency_ms_p50: float | None
    latency_ms_p90: float | None
    latency_ms_p99: float | None
    latency_ms_max: float | None
    submit_lag_ms_p99: float | None
    blocks: int
    txs_acknowledged_not_committed: int
    txs_committed_more_than_once: int
    agreement_height: int
    forks: int
    refused_by_code: dict[str, int]
    directory: str | None
    mix: str | None = None
    results_not_ok: dict[str, int] = field(default_factory=dict)
    engine: str = "builtin"

    @property
    def is_exactly_once(self) -> bool:
        """True if every acknowledged tx was committed, none twice, and no node diverged."""
        return (self.txs_acknowledged_not_committed == 0
                and self.txs_committed_more_than_once == 0 and self.forks == 0)

    @property
    def is_all_ok(self) -> bool:
        """True if every committed tx of the load executed with result OK."""
        return not self.results_not_ok

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "exactly_once": self.is_exactly_once,
                "all_ok": self.is_all_ok}


def run_network_bench(*, validators: int = 4, txs: int = 20_000, rate_tx_per_s: float = 500.0,
                      batch_txs: int = 50, commit_pause_ms: int | None = None,
                      directory: Path | None = None, mix: str | None = None,
                      engine: OtherEngine | None = None,
                      progress: Progress = noop_progress) -> NetworkBenchResult:
    """Start a fresh local network, offer it `txs` pre-signed txs at a rate, and report.

    The txs are notary anchors, or with `mix` (a name of bench/mix.py's `MIXES`) that mix
    of city services, whose setup blocks commit before the clock starts. `directory` keeps
    the devnet, load file and reports there; by default a temporary directory is used and
    removed. With `engine` (bench/cometbft.py's `COMETBFT`) the validators run under that
    engine, which also sets the pause after a commit from `commit_pause_ms`.
    """
    if txs < 1 or rate_tx_per_s <= 0:
        raise LocalError("the benchmark needs at least one tx and a positive rate")
    comet = engine
    if comet is not None and mix is not None:
        raise LocalError(f"--mix runs on the built-in engine; under {comet.name} the load is "
                         "notary anchors")
    # One workload: its signers' keys get the roles in genesis and sign the load.
    workload = MixWorkload(check_mix(mix)) if mix is not None else None
    root = Path(tempfile.mkdtemp(prefix="seoulchain-bench-")) if directory is None else directory
    if directory is not None:
        root.mkdir(parents=True, exist_ok=True)
        if any(root.iterdir()):
            raise LocalError(f"{root} is not empty; the benchmark needs a fresh directory")

    def configure(index: int, config: NodeConfig) -> None:
        if commit_pause_ms is not None:
            config.chain.commit_pause_ms = commit_pause_ms

    try:
        with (LocalNetwork if comet is None else comet.network_class).create(
                root / "devnet", validators, issuers=BENCH_SIGNERS if mix is None else 0,
                                 chain_id=BENCH_CHAIN_ID, configure=configure,
                                 roles=None if workload is None else workload.roles()
                                 ) as network:
            raw_txs, setup = presign_load(network, txs, workload, progress)
            write_tx_file(root / "load.txs", raw_txs)
            if comet is not None:
                comet.prepare(network, commit_pause_ms, batch_txs)
            network.start_all()
            network.wait_for_height(1)
            setup_height = commit_setup_blocks(network, setup)
            progress("load", 0, txs)
            out = root / "load.json"
            if comet is not None:
                report = comet.run_load(network, raw_txs, out, LoadConfig(
                    network.urls, rate_tx_per_s, batch_txs, drain_idle_s=30.0,
                    drain_max_s=60.0 + txs / rate_tx_per_s))
            else:
                with running_load(network, root / "load.txs", out,
                                  rate_tx_per_s=rate_tx_per_s, batch_txs=batch_txs,
                                  drain_idle_s=30.0, drain_max_s=60.0 + txs / rate_tx_per_s,
                                  from_height=setup_height + 1) as process:
                    budget_s = 2 * txs / rate_tx_per_s + 60.0 + LOAD_PROCESS_GRACE_S
                    report = read_load_report(out, process, budget_s)
            progress("load", txs, txs)
            agreement = network.check_agreement()
            if comet is not None:
                not_ok = comet.count_results_not_ok(network, 1, agreement.common_height)
                pause = comet.get_timeout_commit_ms(network)
            else:
                with NodeClient(network.urls[0]) as client:
                    not_ok = count_results_not_ok(client, setup_height + 1,
                                                  agreement.common_height)
                pause = network.load_config(0).chain.commit_pause_ms
            network.stop_all()
    finally:
        if directory is None:
            shutil.rmtree(root, ignore_errors=True)
    summary = report["summary"]
    return NetworkBenchResult(
        validators=validators, txs_offered=txs, rate_offered_tx_per_s=rate_tx_per_s,
        batch_txs=batch_txs, commit_pause_ms=pause,
        txs_acknowledged=summary["txs_acknowledged"], txs_committed=summary["txs_committed"],
        committed_tx_per_s=summary["committed_tx_per_s"],
        latency_ms_p50=summary["latency_ms_p50"], latency_ms_p90=summary["latency_ms_p90"],
        latency_ms_p99=summary["latency_ms_p99"], latency_ms_max=summary["latency_ms_max"],
        submit_lag_ms_p99=summary["submit_lag_ms_p99"], blocks=summary["blocks_seen"],
        txs_acknowledged_not_committed=summary["txs_acknowledged_not_committed"],
        txs_committed_more_than_once=summary["txs_committed_more_than_once"],
        agreement_height=agreement.common_height, forks=len(agreement.mismatches),
        refused_by_code=summary["refused_by_code"],
        directory=None if directory is None else str(root), mix=mix,
        results_not_ok=not_ok, engine="builtin" if comet is None else comet.name)


# ------------------------------------------------------------------------------ catch-up


@dataclass(frozen=True)
class CatchUpResult:
    validators: int
    build_blocks: int
    build_s: float
    build_blocks_per_s: float
    blocks_behind: int
    start_to_api_s: float
    catch_up_s: float
    sync_blocks_per_s: float
    final_height: int
    fsync_ms_before: float
    fsync_ms_after: float
    samples: list[tuple[float, int]]

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def configure_fast_build(index: int, config: NodeConfig) -> None:
    """No commit pause and a short propose timeout: empty blocks as fast as consensus goes."""
    config.chain.commit_pause_ms = 0
    config.chain.create_empty_blocks = True
    config.consensus.timeout_propose_ms = 500


def configure_defaults(config: NodeConfig) -> None:
    """Put the chain and consensus options back to the shipped defaults, but with an empty
    block every commit pause: catching up is measured on a chain that keeps growing."""
    config.chain = ChainConfig(create_empty_blocks=True)
    config.consensus = ConsensusTimeouts()


def run_catchup_bench(*, blocks: int = 10_000, validators: int = 4,
                      directory: Path | None = None, profile_path: Path | None = None,
                      progress: Progress = noop_progress) -> CatchUpResult:
    """Build `blocks` empty blocks, then time a validator with an empty disk syncing them.

    The chain is built by all validators with no commit pause; then the network restarts
    with the default configuration (a block a second or so) and the last validator, its
    data directory wiped, catches up while the others keep committing. With
    `profile_path`, that validator runs under cProfile, writing its profile there on stop.
    """
    if validators < 2 or blocks < 1:
        raise LocalError("catch-up needs at least two validators and one block")
    root = Path(tempfile.mkdtemp(prefix="seoulchain-catchup-")) if directory is None \
        else directory
    lagging = validators - 1
    others = list(range(lagging))
    try:
        with LocalNetwork.create(root / "devnet", validators, chain_id=BENCH_CHAIN_ID,
                                 configure=configure_fast_build) as network:
            build_s = build_chain(network, blocks, progress)
            built = min(height or 0 for height in network.get_heights())
            network.stop_all()
            shutil.rmtree(network.nodes[lagging].home.data_dir)
            network.nodes[lagging].home.data_dir.mkdir()
            for index in range(validators):
                network.configure(index, configure_defaults)
            for index in others:
                network.start(index)
            network.wait_for_height(built + 1, others, NODE_START_TIMEOUT_S)
            options = ["-m", "cProfile", "-o", str(profile_path)] if profile_path else []
            data_dir = network.nodes[lagging].home.data_dir
            fsync_ms_before = measure_fsync_ms(data_dir)
            samples, start_to_api_s, behind = time_catch_up(network, lagging, options,
                                                            progress)
            fsync_ms_after = measure_fsync_ms(data_dir)
            network.stop_all()
    finally:
        if directory is None:
            shutil.rmtree(root, ignore_errors=True)
    catch_up_s = samples[-1][0]
    final_height = samples[-1][1]
    return CatchUpResult(
        validators=validators, build_blocks=built, build_s=round(build_s, 1),
        build_blocks_per_s=round(built / build_s, 1), blocks_behind=behind,
        start_to_api_s=round(start_to_api_s, 2), catch_up_s=round(catch_up_s, 2),
        sync_blocks_per_s=round(compute_sync_rate(samples), 1), final_height=final_height,
        fsync_ms_before=round(fsync_ms_before, 2), fsync_ms_after=round(fsync_ms_after, 2),
        samples=samples)


def build_chain(network: LocalNetwork, blocks: int, progress: Progress) -> float:
    """Run every validator until all have `blocks` blocks; return the seconds it took."""
    network.start_all()
    network.wait_for_height(1)
    started = time.monotonic()
    deadline = started + max(600.0, blocks / 2)
    while True:
        height = min(height or 0 for height in network.get_heights())
        progress("building", min(height, blocks), blocks)
        if height >= blocks:
            return time.monotonic() - started
        if time.monotonic() > deadline:
            raise NetworkTimeout(f"the chain reached only {height} of {blocks} blocks\n"
                                 f"{network.describe()}")
        time.sleep(1.0)


def time_catch_up(network: LocalNetwork, lagging: int, python_options: Sequence[str],
                  progress: Progress) -> tuple[list[tuple[float, int]], float, int]:
    """Start the lagging node; sample its height until it matches the others' tip.

    Return (seconds, height) samples, the seconds until its API answered, and how many
    blocks behind it started.
    """
    others = [index for index in range(network.size) if index != lagging]
    behind = max(height or 0 for height in network.get_heights(others))
    started = time.monotonic()
    network.start(lagging, python_options)
    samples: list[tuple[float, int]] = []
    api_up_s: float | None = None
    while True:
        elapsed = time.monotonic() - started
        height = network.get_height(lagging)
        tip = max(value or 0 for value in network.get_heights(others))
        if height is not None:
            if api_up_s is None:
                api_up_s = elapsed
            samples.append((round(elapsed, 2), height))
            progress("catching up", min(height, tip), tip)
            if height >= tip:
                return samples, api_up_s, behind
        if not network.nodes[lagging].is_running():
            raise LocalError(f"the catching-up node exited\n{network.describe()}")
        if elapsed > CATCHUP_TIMEOUT_S:
            raise NetworkTimeout(f"no catch-up within {CATCHUP_TIMEOUT_S:.0f} s\n"
                                 f"{network.describe()}")
        time.sleep(CATCHUP_POLL_S)


def measure_fsync_ms(directory: Path) -> float:
    """Return the mean time of a small append plus fsync in `directory`, in milliseconds."""
    path = directory / "fsync-probe.tmp"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        started = time.perf_counter()
        for _ in range(FSYNC_PROBE_WRITES):
            os.write(descriptor, bytes(FSYNC_PROBE_BYTES))
            os.fsync(descriptor)
        elapsed_s = time.perf_counter() - started
    finally:
        os.close(descriptor)
        path.unlink()
    return elapsed_s / FSYNC_PROBE_WRITES * 1000


def compute_sync_rate(samples: Sequence[tuple[float, int]]) -> float:
    """Blocks per second between the first sample past 10% and the last one."""
    if len(samples) < 2:
        return 0.0
    target = samples[-1][1]
    start = next((sample for sample in samples if sample[1] >= target // 10), samples[0])
    end = samples[-1]
    if end[0] <= start[0]:
        return 0.0
    return (end[1] - start[1]) / (end[0] - start[0])
