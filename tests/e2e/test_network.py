"""Four validators as real processes on loopback: crashes, pauses, partitions, a halt, and
hostile peers; afterwards every node holds the same chain.

Each story starts its own network (tests/e2e/conftest.py), injects one kind of fault with
seeded randomness, and ends with the same check: identical block ids and state roots at
every height all nodes have (and, in the story under load, every transaction the client
saw committed present in that chain on every node).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import time
from pathlib import Path

import pytest

from seoulchain.bench.ledger import presign_anchors
from seoulchain.bench.loadgen import (
    compute_percentile,
    read_tx_file,
    write_tx_file,
)
from seoulchain.bench.network import (
    LocalNetwork,
    noop_progress,
    read_load_report,
    running_load,
)
from seoulchain.bench.proxy import FaultProxy
from seoulchain.crypto import SigningKey
from seoulchain.node.config import NodeConfig
from seoulchain.node.tls import make_context
from seoulchain.node.transport import (
    KIND_HELLO,
    FrameDecoder,
    PeerAddress,
    Transport,
    TransportLimits,
    encode_frame,
    encode_hello,
)

from .conftest import MakeNetwork

pytestmark = pytest.mark.e2e

SEED = 20260
HOST = "127.0.0.1"
# Waits: a node start is a couple of seconds of imports on a loaded 2-core machine.
START_TIMEOUT_S = 60.0
CATCH_UP_TIMEOUT_S = 60.0
# A caught-up node stays within a height of the leader this long (several heights here).
CAUGHT_UP_HOLD_S = 2.0
# The longest the healthy majority may go without a new block: a dead or paused proposer
# costs one propose timeout (conftest: 1 s) plus a round, on a loaded machine.
STALL_ALLOWED_S = 5.0
# Load for the crash story: pre-signed anchors from many signers, offered open-loop.
LOAD_SIGNERS = 64
LOAD_TXS = 4000
LOAD_RATE_TX_PER_S = 50.0
LOAD_BATCH_TXS = 10
CRASHES = 3
# Committed transactions also looked up one by one on every node.
SPOT_CHECKS = 20


# ------------------------------------------------------------------------------ helpers


def get_tip(network: LocalNetwork, indexes: list[int]) -> int:
    """Return the highest height among the selected nodes that answer."""
    return max(height or 0 for height in network.get_heights(indexes))


def get_others(network: LocalNetwork, index: int) -> list[int]:
    return [other for other in range(network.size) if other != index]


def wait_for_catch_up(network: LocalNetwork, index: int,
                      timeout_s: float = CATCH_UP_TIMEOUT_S) -> None:
    """Wait until node `index` has every block the others had when we started waiting and
    has kept up with them (at most one height behind the leader) for `CAUGHT_UP_HOLD_S`.

    Reaching the tip once is not enough: a node that syncs a few blocks and then drops a
    height behind again is not yet voting, and a second fault then would be two at once.
    """
    target = get_tip(network, get_others(network, index))
    kept_up_since: list[float] = []

    def is_caught_up() -> bool:
        height = network.get_height(index)
        if height is None or height < target \
                or height + 1 < get_tip(network, get_others(network, index)):
            kept_up_since.clear()
            return False
        kept_up_since.append(time.monotonic())
        return kept_up_since[-1] - kept_up_since[0] >= CAUGHT_UP_HOLD_S
    network.wait_until(is_caught_up, timeout_s, f"node {index} to catch up to {target}")


def get_answered_height(network: LocalNetwork, index: int) -> int:
    """Return node `index`'s height, waiting for an answer if it is slow to give one."""
    heights: list[int] = []

    def answered() -> bool:
        height = network.get_height(index)
        heights.extend([] if height is None else [height])
        return height is not None
    network.wait_until(answered, CATCH_UP_TIMEOUT_S, f"node {index} to answer")
    return heights[-1]


def get_lowest_height(network: LocalNetwork, indexes: list[int]) -> int | None:
    """Return the lowest height of `indexes`, or None if one of them did not answer."""
    heights = network.get_heights(indexes)
    return None if None in heights else min(height or 0 for height in heights)


def watch_progress(network: LocalNetwork, indexes: list[int], duration_s: float
                   ) -> tuple[int, float]:
    """Watch the lowest height of `indexes` for `duration_s`; return (blocks gained, the
    longest time without a new block)."""
    first = None
    while first is None:
        first = get_lowest_height(network, indexes)
    started = last_change = time.monotonic()
    last, longest_stall_s = first, 0.0
    while time.monotonic() - started < duration_s:
        time.sleep(0.25)
        height = get_lowest_height(network, indexes)
        now = time.monotonic()
        if height is not None and height > last:
            last, last_change = height, now
        longest_stall_s = max(longest_stall_s, now - last_change)
    return last - first, longest_stall_s


def wait_until_halted(network: LocalNetwork, indexes: list[int], quiet_s: float,
                      timeout_s: float) -> int:
    """Wait until no selected node's height changes for `quiet_s`; return the top height."""
    deadline = time.monotonic() + timeout_s
    heights, since = network.get_heights(indexes), time.monotonic()
    while time.monotonic() - since < quiet_s:
        assert time.monotonic() < deadline, f"heights kept moving: {heights}"
        time.sleep(0.25)
        now_heights = network.get_heights(indexes)
        if now_heights != heights:
            heights, since = now_heights, time.monotonic()
    return max(height or 0 for height in heights)


def assert_one_chain(network: LocalNetwork, indexes: list[int] | None = None) -> int:
    """Assert identical block ids and state roots at every common height; return it."""
    agreement = network.check_agreement(indexes)
    assert agreement.mismatches == [], "\n".join(agreement.mismatches[:10])
    return agreement.common_height


def wait_for_equal_heights(network: LocalNetwork, timeout_s: float = CATCH_UP_TIMEOUT_S
                           ) -> int:
    """Wait until every node has the tip some node had when we started; return it."""
    tip = get_tip(network, list(range(network.size)))
    network.wait_for_height(tip, None, timeout_s)
    return tip


def start_network(network: LocalNetwork) -> None:
    network.start_all()
    network.wait_for_height(2, None, START_TIMEOUT_S)


def get_p2p_port(network: LocalNetwork, index: int) -> int:
    return network.load_config(index).p2p.listen_port


def get_validator_key(network: LocalNetwork, index: int) -> SigningKey:
    return network.nodes[index].home.load_key("validator")


def get_peer_count(network: LocalNetwork, index: int) -> int:
    status = network.get_status(index)
    return -1 if status is None else len(status["peers"])


# ------------------------------------------------------------------------------ crashes


def test_network_kill9_under_load_restart_catches_up_and_keeps_every_commit_n4_f1(
        make_network: MakeNetwork, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    network = make_network(issuers=LOAD_SIGNERS)
    txs = presign_anchors(network.issuers, network.chain_id, LOAD_TXS, noop_progress)
    write_tx_file(tmp_path / "load.txs", txs)
    start_network(network)
    out = tmp_path / "load.json"
    with running_load(network, tmp_path / "load.txs", out, rate_tx_per_s=LOAD_RATE_TX_PER_S,
                      batch_txs=LOAD_BATCH_TXS, drain_idle_s=8.0, drain_max_s=40.0) as load:
        for _ in range(CRASHES):
            time.sleep(rng.uniform(1.0, 6.0))
            victim = rng.randrange(network.size)
            network.kill(victim)
            time.sleep(rng.uniform(0.2, 2.0))
            network.start(victim)
            wait_for_catch_up(network, victim)
        load.send_signal(signal.SIGTERM)
        report = read_load_report(out, load, timeout_s=90.0)
    summary = report["summary"]
    assert summary["txs_committed"] >= LOAD_RATE_TX_PER_S * 5, summary
    assert summary["txs_committed_more_than_once"] == 0, summary
    assert summary["txs_committed_unacknowledged"] == 0, summary

    network.wait_for_height(summary["last_height"], None, CATCH_UP_TIMEOUT_S)
    wait_for_equal_heights(network)
    agreement = network.check_agreement()
    assert agreement.mismatches == [], "\n".join(agreement.mismatches[:10])
    committed = [(tx_hash, height) for tx_hash, height
                 in zip(report["txs"]["hash"], report["txs"]["height"], strict=True)
                 if height is not None]
    for tx_hash, height in committed:
        assert tx_hash in agreement.txs_by_height[height], (tx_hash, height)
    for tx_hash, height in rng.sample(committed, min(SPOT_CHECKS, len(committed))):
        for client in network.clients:
            status = client.get_tx(bytes.fromhex(tx_hash))
            assert (status["status"], status["height"]) == ("committed", height)


# ------------------------------------------------------------------------------ pauses


def test_network_paused_validator_resumes_and_catches_up_others_never_stop_n4_f1(
        make_network: MakeNetwork) -> None:
    rng = random.Random(SEED + 1)
    network = make_network()
    start_network(network)
    victim = rng.randrange(network.size)
    network.pause(victim)
    try:
        gained, longest_stall_s = watch_progress(network, get_others(network, victim), 10.0)
    finally:
        network.resume(victim)
    assert gained >= 5, f"the others committed only {gained} blocks in 10 s"
    assert longest_stall_s <= STALL_ALLOWED_S, f"the others stalled {longest_stall_s:.1f} s"
    wait_for_catch_up(network, victim)
    gained_after, _ = watch_progress(network, list(range(network.size)), 2.0)
    assert gained_after >= 1
    wait_for_equal_heights(network)
    assert_one_chain(network)


# ------------------------------------------------------------------------------ partitions


def route_through_proxy(network: LocalNetwork, victim: int, proxy: FaultProxy) -> None:
    """Send every connection to or from `victim` through `proxy` (before the start)."""

    def reroute(index: int, key: str, port: int) -> None:
        def edit(config: NodeConfig) -> None:
            config.p2p.peers = [f"{key}@{HOST}:{port}" if peer.startswith(key) else peer
                                for peer in config.p2p.peers]
        network.configure(index, edit)

    victim_key = get_validator_key(network, victim).public_key.hex()
    inbound = proxy.add_route(HOST, get_p2p_port(network, victim))
    for other in get_others(network, victim):
        reroute(other, victim_key, inbound)
        other_key = get_validator_key(network, other).public_key.hex()
        reroute(victim, other_key, proxy.add_route(HOST, get_p2p_port(network, other)))


def test_network_isolated_validator_falls_behind_then_converges_after_heal_n4_f1(
        make_network: MakeNetwork) -> None:
    rng = random.Random(SEED + 2)
    network = make_network()
    victim = rng.randrange(network.size)
    majority = get_others(network, victim)
    with FaultProxy() as proxy:
        route_through_proxy(network, victim, proxy)
        start_network(network)
        network.wait_until(lambda: get_peer_count(network, victim) == 3, START_TIMEOUT_S,
                           "the victim connected through the proxy")
        for fault in (proxy.cut, proxy.stall):
            fault()
            isolated_at = get_answered_height(network, victim)
            gained, longest_stall_s = watch_progress(network, majority, 6.0)
            assert gained >= 3, f"{fault.__name__}: the majority gained {gained} blocks"
            assert longest_stall_s <= STALL_ALLOWED_S, (fault.__name__, longest_stall_s)
            # Alone, the victim may finish at most the height it was deciding.
            height = get_answered_height(network, victim)
            assert height <= isolated_at + 1, (fault.__name__, isolated_at, height)
            proxy.restore()
            wait_for_catch_up(network, victim)
            network.wait_until(lambda: get_peer_count(network, victim) == 3,
                               CATCH_UP_TIMEOUT_S, "the victim reconnected to every peer")
        stats = proxy.get_stats()
        assert sum(route.connections_cut + route.connections_refused for route in stats) > 0
        network.wait_for_height(get_tip(network, majority) + 1, None, CATCH_UP_TIMEOUT_S)
        assert_one_chain(network)


# ------------------------------------------------------------------------------ a halt


def test_network_two_of_four_stopped_halts_without_fork_then_resumes_n4_f2(
        make_network: MakeNetwork) -> None:
    rng = random.Random(SEED + 3)
    network = make_network()
    start_network(network)
    network.wait_for_height(4, None, START_TIMEOUT_S)
    stopped = sorted(rng.sample(range(network.size), 2))
    live = [index for index in range(network.size) if index not in stopped]
    for index in stopped:
        assert network.stop(index) == 0, network.describe()
    halted = wait_until_halted(network, live, quiet_s=5.0, timeout_s=30.0)
    assert_one_chain(network, live)
    for index in stopped:
        network.start(index)
    network.wait_for_height(halted + 3, None, START_TIMEOUT_S)
    assert_one_chain(network)


# ------------------------------------------------------------------------------ hostile peers


async def try_unknown_certificate(network: LocalNetwork, target: int) -> Transport:
    """Dial `target` for a few seconds as a transport whose key is in no genesis."""
    target_key = get_validator_key(network, target).public_key
    limits = TransportLimits(connect_timeout_ms=1000, handshake_timeout_ms=2000,
                             dial_backoff_min_ms=100, dial_backoff_max_ms=500)
    outsider = Transport(SigningKey.generate(), network_id=network.chain_id,
                         trusted_keys=[target_key],
                         peers=[PeerAddress(target_key, HOST, get_p2p_port(network, target))],
                         listen_host=HOST, listen_port=0, limits=limits)
    await outsider.start()
    try:
        await asyncio.sleep(3.0)
    finally:
        await outsider.stop()
    return outsider


async def read_until_closed(reader: asyncio.StreamReader, timeout_s: float) -> bytes:
    """Read until the node closes the connection; fail if it keeps it open."""
    received = b""
    async with asyncio.timeout(timeout_s):
        try:
            while chunk := await reader.read(65536):
                received += chunk
        except (ConnectionError, OSError):
            pass
    return received


async def send_garbage_frame_as(network: LocalNetwork, key: SigningKey, target: int) -> bytes:
    """Complete TLS and HELLO with `key`, send a zero-length frame; return what came back."""
    target_key = get_validator_key(network, target).public_key
    context = make_context(key, [target_key], server_side=False)
    reader, writer = await asyncio.open_connection(HOST, get_p2p_port(network, target),
                                                   ssl=context)
    try:
        writer.write(encode_frame(KIND_HELLO, encode_hello(network.chain_id)))
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.write(b"\x00\x00\x00\x00")  # a frame of length 0: no room for its kind
        await writer.drain()
        return await read_until_closed(reader, 10.0)
    finally:
        writer.transport.abort()


def send_garbage_bytes(network: LocalNetwork, target: int) -> bytes:
    """Send bytes that are no TLS handshake to the p2p port; return what came back."""
    with socket.create_connection((HOST, get_p2p_port(network, target)), timeout=10) as sock:
        sock.sendall(b"\x16\x03\x01" + random.Random(SEED).randbytes(4000))
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
        return received


def test_network_refuses_unknown_certificate_and_drops_garbage_peers_keeps_committing_n4(
        make_network: MakeNetwork) -> None:
    network = make_network()
    start_network(network)
    target, rogue = 0, 3
    outsider = asyncio.run(try_unknown_certificate(network, target))
    assert outsider.peers() == [] and sum(outsider.stats().refused.values()) >= 1
    status = network.get_status(target)
    assert status is not None
    assert outsider.public_key.hex() not in {peer["public_key"] for peer in status["peers"]}

    send_garbage_bytes(network, target)  # returns once the node has closed the socket

    # A genesis validator gone rogue: its key completes TLS and HELLO, then breaks framing.
    network.stop(rogue)
    received = asyncio.run(send_garbage_frame_as(network, get_validator_key(network, rogue),
                                                 target))
    assert FrameDecoder().feed(received)[0].kind == KIND_HELLO

    gained, _ = watch_progress(network, get_others(network, rogue), 3.0)
    assert gained >= 1, "the network stopped committing after the attacks"
    network.start(rogue)
    wait_for_catch_up(network, rogue)
    network.wait_until(lambda: get_peer_count(network, target) == 3, CATCH_UP_TIMEOUT_S,
                       "the target reconnected to every validator")
    wait_for_equal_heights(network)
    assert_one_chain(network)


# ------------------------------------------------------------------------------ the tools


def test_proxy_passes_stalls_cuts_and_delays_traffic() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(1024):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass  # a cut, or the loop ending: asyncio would log a cancelled handler
        writer.transport.abort()

    async def round_trip(port: int, timeout_s: float) -> bytes:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(b"ping")
            async with asyncio.timeout(timeout_s):
                return await read_or_reset(reader)
        finally:
            writer.transport.abort()

    async def read_or_reset(reader: asyncio.StreamReader) -> bytes:
        try:
            return await reader.read(4)
        except ConnectionResetError:
            return b""

    async def scenario(proxy: FaultProxy) -> None:
        server = await asyncio.start_server(echo, HOST, 0)
        port = proxy.add_route(HOST, server.sockets[0].getsockname()[1])
        try:
            assert await round_trip(port, 2.0) == b"ping"
            proxy.stall()
            with pytest.raises(TimeoutError):
                await round_trip(port, 0.3)
            reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(b"late")
            await asyncio.sleep(0.2)
            proxy.restore()  # what was sent during the stall arrives after it
            async with asyncio.timeout(2.0):
                assert await reader.read(4) == b"late"
            proxy.cut()  # the open connection is closed, new ones too
            async with asyncio.timeout(2.0):
                assert await read_or_reset(reader) == b""
            writer.transport.abort()
            assert await round_trip(port, 2.0) == b""
            proxy.restore()
            proxy.set_delay_ms(200)
            started = time.monotonic()
            assert await round_trip(port, 2.0) == b"ping"
            assert time.monotonic() - started >= 0.4  # 200 ms each way
            [stats] = proxy.get_stats()
            assert stats.connections_cut >= 1 and stats.connections_refused == 1
        finally:
            server.close()

    with FaultProxy() as proxy:
        asyncio.run(scenario(proxy))


def test_loadgen_tx_file_round_trips_and_percentiles_use_nearest_rank(tmp_path: Path) -> None:
    txs = [os.urandom(size) for size in (1, 195, 4096)]
    write_tx_file(tmp_path / "load.txs", txs)
    assert read_tx_file(tmp_path / "load.txs") == txs
    values = [float(value) for value in range(1, 101)]
    assert compute_percentile(values, 0.50) == 50.0
    assert compute_percentile(values, 0.99) == 99.0
    assert compute_percentile([7.0], 0.99) == 7.0
    assert compute_percentile([], 0.5) is None
