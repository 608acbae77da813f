"""Transport: frames, queues, scores, TLS identity, and real sockets on 127.0.0.1.

Network tests run one asyncio loop each under a hard deadline, on ephemeral ports; peers
that should be refused connect from 127.0.0.2 so that address bans never touch the honest
nodes on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import random
import socket
import ssl
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from seoulchain.crypto import SigningKey, sha256
from seoulchain.errors import LocalError
from seoulchain.node.config import NodeConfig, P2PConfig
from seoulchain.node.tls import (
    PeerIdentityError,
    build_anchor,
    build_certificate,
    compute_anchor_name,
    get_certificate_key,
    make_context,
)
from seoulchain.node.transport import (
    FRAME_BYTES_MAX,
    KIND_APP_MIN,
    KIND_HELLO,
    PENALTIES,
    SCORE_AFTER_BAN,
    SCORE_MAX,
    DropPolicy,
    Frame,
    FrameDecoder,
    FrameTooLargeError,
    HelloError,
    PeerAddress,
    ProtocolError,
    Reason,
    Received,
    ScoreBook,
    SendQueue,
    Transport,
    TransportLimits,
    check_hello,
    compute_backoff_ms,
    encode_frame,
    encode_hello,
    is_preferred_connection,
    parse_peer_address,
)

NETWORK = "seoul-test-1"
KIND_VOTE = KIND_APP_MIN
KIND_TX = KIND_APP_MIN + 1
HONEST_HOST = "127.0.0.1"
HOSTILE_HOST = "127.0.0.2"
# Fast redials and short handshakes keep every scenario well under a second of waiting.
FAST = TransportLimits(connect_timeout_ms=1_000, handshake_timeout_ms=2_000,
                       dial_backoff_min_ms=20, dial_backoff_max_ms=200)
TEST_DEADLINE_S = 10.0
T = TypeVar("T")


def make_key(index: int) -> SigningKey:
    """Return a deterministic test key."""
    return SigningKey(bytes([index + 1]) * 32)


def run(coroutine: Coroutine[Any, Any, T], deadline_s: float = TEST_DEADLINE_S) -> T:
    """Run a scenario on a fresh event loop, failing it if it outlives the deadline."""
    async def bounded() -> T:
        async with asyncio.timeout(deadline_s):
            return await coroutine
    return asyncio.run(bounded())


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll `predicate` every 10 ms until it holds, or fail after `timeout_s`."""
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.01)


def make_transport(key: SigningKey, trusted: list[bytes], index: int = 0,
                   **options: Any) -> Transport:
    """Return a loopback transport with fast limits and a seeded RNG."""
    options.setdefault("limits", FAST)
    return Transport(key, network_id=NETWORK, trusted_keys=trusted, listen_host=HONEST_HOST,
                     rng=random.Random(index), **options)


async def start_cluster(count: int, extra_trusted: list[bytes] | None = None,
                        **options: Any) -> list[Transport]:
    """Start `count` transports pinning each other, then give each the others' addresses."""
    keys = [make_key(index) for index in range(count)]
    trusted = [key.public_key for key in keys] + (extra_trusted or [])
    transports = [make_transport(key, trusted, index, **options)
                  for index, key in enumerate(keys)]
    for transport in transports:
        await transport.start()
    addresses = [get_address(transport) for transport in transports]
    for transport in transports:
        transport.update_peers(trusted, addresses)
    await wait_until(lambda: all(len(node.peers()) == count - 1 for node in transports))
    return transports


def get_address(transport: Transport) -> PeerAddress:
    """Return where to dial a started transport."""
    return PeerAddress(transport.public_key, HONEST_HOST, transport.listen_port)


async def stop_all(transports: list[Transport]) -> None:
    """Stop every transport."""
    for transport in transports:
        await transport.stop()


async def exchange_all(transports: list[Transport], tag: bytes) -> None:
    """Have every node broadcast `tag`, re-sending until every other node has received it."""
    expected = {(sender.public_key, receiver.public_key)
                for sender in transports for receiver in transports if sender is not receiver}
    got: set[tuple[bytes, bytes]] = set()

    async def collect(receiver: Transport) -> None:
        while True:
            item = await receiver.receive()
            if item.kind == KIND_VOTE and item.payload == tag + item.peer_key:
                got.add((item.peer_key, receiver.public_key))

    collectors = [asyncio.create_task(collect(node)) for node in transports]
    try:
        async with asyncio.timeout(5.0):
            while got != expected:
                for sender in transports:
                    if any(pair[0] == sender.public_key for pair in expected - got):
                        sender.broadcast(KIND_VOTE, tag + sender.public_key)
                await asyncio.sleep(0.05)
    finally:
        for task in collectors:
            task.cancel()
        await asyncio.gather(*collectors, return_exceptions=True)


async def open_raw_peer(port: int, key: SigningKey, node_key: bytes, *,
                        host: str = HONEST_HOST,
                        hello: bool = True) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect as `key` with a hand-driven TLS client, optionally exchanging HELLO."""
    context = make_context(key, [node_key], server_side=False)
    reader, writer = await asyncio.open_connection(HONEST_HOST, port, ssl=context,
                                                   local_addr=(host, 0))
    if hello:
        writer.write(encode_frame(KIND_HELLO, encode_hello(NETWORK)))
        await writer.drain()
    return reader, writer


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Read until the other side closes (or aborts) the connection; return what came."""
    data = b""
    try:
        while chunk := await reader.read(65536):
            data += chunk
    except (ssl.SSLError, ConnectionError):
        pass
    return data


def close_raw(writer: asyncio.StreamWriter) -> None:
    """Drop a hand-driven connection without ceremony."""
    writer.transport.abort()


# --- frames ------------------------------------------------------------------------------



def test_frames_decode_whole_and_byte_by_byte() -> None:
    frames = [Frame(KIND_VOTE, b"vote"), Frame(KIND_TX, b""), Frame(0xFF, bytes(range(256)))]
    stream = b"".join(encode_frame(frame.kind, frame.payload) for frame in frames)
    assert FrameDecoder().feed(stream) == frames
    decoder = FrameDecoder()
    decoded = [frame for index in range(len(stream))
               for frame in decoder.feed(stream[index:index + 1])]
    assert decoded == frames
    assert decoder.buffered_bytes == 0


def test_frames_wire_layout_is_length_kind_payload() -> None:
    assert encode_frame(0x10, b"abc") == b"\x00\x00\x00\x04\x10abc"


def test_frames_zero_length_is_malformed_and_poisons_the_decoder() -> None:
    decoder = FrameDecoder()
    with pytest.raises(ProtocolError):
        decoder.feed(b"\x00\x00\x00\x00")
    with pytest.raises(ProtocolError):
        decoder.feed(encode_frame(KIND_VOTE, b"fine"))


def test_frames_oversized_header_fails_before_its_payload_arrives() -> None:
    decoder = FrameDecoder(frame_bytes_max=1024)
    assert decoder.feed(encode_frame(KIND_VOTE, bytes(1023), 1024)) == [
        Frame(KIND_VOTE, bytes(1023))]
    with pytest.raises(FrameTooLargeError):
        decoder.feed((1025).to_bytes(4, "big"))
    assert decoder.buffered_bytes == 0


def test_frames_encoder_refuses_what_the_decoder_would_refuse() -> None:
    with pytest.raises(LocalError):
        encode_frame(KIND_VOTE, bytes(FRAME_BYTES_MAX))
    with pytest.raises(LocalError):
        encode_frame(256, b"")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(1, 64), max_size=20))
def test_frames_decoder_fuzz_parses_or_raises_protocol_error(data: bytes,
                                                             cuts: list[int]) -> None:
    decoder = FrameDecoder(frame_bytes_max=128)
    position, frames = 0, []
    try:
        for cut in [*cuts, len(data)]:
            frames += decoder.feed(data[position:position + cut])
            position += cut
    except ProtocolError:
        return
    rebuilt = b"".join(encode_frame(frame.kind, frame.payload, 128) for frame in frames)
    assert data.startswith(rebuilt)
    assert decoder.buffered_bytes == len(data) - len(rebuilt)


def test_hello_checks_version_and_network() -> None:
    check_hello(encode_hello(NETWORK), NETWORK)
    with pytest.raises(HelloError):
        check_hello(encode_hello("other-chain"), NETWORK)
    with pytest.raises(HelloError):
        check_hello(b"\x82\x02\x6cseoul-test-1", NETWORK)  # [2, "seoul-test-1"]
    with pytest.raises(HelloError):
        check_hello(b"\xff", NETWORK)


# --- send queue, scores, backoff, addresses ----------------------------------------------


def test_queue_drop_oldest_evicts_the_oldest_frame_of_the_same_kind() -> None:
    queue = SendQueue(frames_max=3, bytes_max=10**6)
    assert queue.push(KIND_TX, b"t1").accepted
    assert queue.push(KIND_VOTE, b"v1").accepted
    assert queue.push(KIND_VOTE, b"v2").accepted
    pushed = queue.push(KIND_VOTE, b"v3")
    assert pushed.accepted and pushed.evicted == 1
    assert [queue.pop(), queue.pop(), queue.pop(), queue.pop()] == [
        Frame(KIND_TX, b"t1"), Frame(KIND_VOTE, b"v2"), Frame(KIND_VOTE, b"v3"), None]


def test_queue_drop_newest_keeps_the_queue_and_refuses_the_new_frame() -> None:
    queue = SendQueue(frames_max=2, bytes_max=10**6, policies={KIND_TX: DropPolicy.NEWEST})
    queue.push(KIND_TX, b"t1")
    queue.push(KIND_TX, b"t2")
    assert queue.push(KIND_TX, b"t3") == (False, 0)
    assert len(queue) == 2


def test_queue_never_evicts_other_kinds_and_bounds_bytes() -> None:
    queue = SendQueue(frames_max=100, bytes_max=30)
    assert queue.push(KIND_TX, bytes(10)).accepted       # 15 bytes on the wire
    assert queue.push(KIND_VOTE, bytes(10)).accepted     # 30: full by bytes
    assert queue.push(KIND_VOTE, bytes(10)) == (True, 1)
    assert queue.push(0x30, bytes(1)) == (False, 0)      # nothing of its kind to evict
    assert queue.push(KIND_VOTE, bytes(26)) == (False, 0)  # larger than the whole queue
    assert queue.queued_bytes == 30
    assert [frame.kind for frame in (queue.pop(), queue.pop())] == [KIND_TX, KIND_VOTE]


class FakeClock:
    """A settable monotonic clock in seconds."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_scores_ban_at_threshold_expire_and_recover() -> None:
    clock = FakeClock()
    book: ScoreBook[str] = ScoreBook(ban_duration_s=60, clock=clock)
    assert book.get_points("peer") == SCORE_MAX
    assert not book.penalize("peer", 40)
    assert not book.penalize("peer", 40)
    assert book.get_points("peer") == 20
    clock.now += 10
    assert book.get_points("peer") == 30               # one point a second
    assert book.penalize("peer", 40)                   # 30 - 40 <= 0: banned
    assert book.is_banned("peer") and book.get_banned() == ["peer"]
    clock.now += 59
    assert book.get_ban_remaining_s("peer") == pytest.approx(1.0)
    clock.now += 1
    assert not book.is_banned("peer")
    assert book.get_points("peer") == SCORE_AFTER_BAN


def test_scores_forget_the_least_recent_beyond_the_bound() -> None:
    book: ScoreBook[int] = ScoreBook(ban_duration_s=60, clock=FakeClock(), entries_max=2)
    for address in range(3):
        book.penalize(address, 10)
    assert [book.get_points(address) for address in range(3)] == [SCORE_MAX, 90, 90]


def test_backoff_grows_caps_and_jitters_within_half() -> None:
    rng = random.Random(7)
    delays = [compute_backoff_ms(attempt, 100, 3000, rng) for attempt in range(8)]
    for attempt, delay in enumerate(delays):
        ceiling = min(3000, 100 * 2**attempt)
        assert ceiling // 2 <= delay <= ceiling
    assert delays == [compute_backoff_ms(attempt, 100, 3000, random.Random(7))
                      for attempt in range(1)] + delays[1:]
    assert compute_backoff_ms(1000, 100, 3000, rng) <= 3000


def test_peer_addresses_parse_and_refuse_nonsense() -> None:
    key = make_key(0).public_key
    assert parse_peer_address(f"{key.hex()}@10.0.0.5:26656") == PeerAddress(key, "10.0.0.5",
                                                                             26656)
    parsed = parse_peer_address(f"{key.hex()}@[::1]:9")
    assert parsed == PeerAddress(key, "::1", 9) and str(parsed) == f"{key.hex()}@[::1]:9"
    for text in ("nokey", f"{key.hex()}@host", f"{key.hex()[:-2]}@h:1", f"{key.hex()}@h:0",
                 "zz@h:1", f"{key.hex()}@:1"):
        with pytest.raises(LocalError):
            parse_peer_address(text)


def test_one_connection_rule_gives_both_sides_the_same_answer() -> None:
    low, high = sorted([make_key(0).public_key, make_key(1).public_key])
    # Each side sees the other's dial as "new" in one order or the other; both keep low's.
    assert is_preferred_connection(low, high, low, high)
    assert not is_preferred_connection(high, low, low, high)
    assert is_preferred_connection(low, high, high, low)
    assert not is_preferred_connection(high, low, high, low)
    assert is_preferred_connection(high, high, low, high)  # a redial replaces the stale one


def test_config_p2p_defaults_round_trip_and_refuse_bad_values(tmp_path: Path) -> None:
    config = NodeConfig()
    key = make_key(1).public_key
    config.p2p.peers = [f"{key.hex()}@127.0.0.1:26656"]
    config.save(tmp_path / "config.toml")
    loaded = NodeConfig.load(tmp_path / "config.toml")
    assert loaded.p2p == config.p2p
    assert loaded.p2p.get_peer_addresses() == [PeerAddress(key, "127.0.0.1", 26656)]
    assert loaded.p2p.get_limits() == TransportLimits()
    with pytest.raises(LocalError):
        P2PConfig(frame_bytes_max=FRAME_BYTES_MAX + 1).get_limits()
    with pytest.raises(LocalError):
        P2PConfig(peers=["not-a-peer"]).get_peer_addresses()
    (tmp_path / "bad.toml").write_text("[p2p]\nlisten_prot = 1\n")
    with pytest.raises(LocalError, match="listen_prot"):
        NodeConfig.load(tmp_path / "bad.toml")


# --- TLS identity ------------------------------------------------------------------------


def test_certificate_is_deterministic_and_carries_the_validator_key() -> None:
    key = make_key(0)
    der = build_certificate(key)
    assert der == build_certificate(SigningKey(key.seed))
    assert get_certificate_key(der) == key.public_key
    cert = x509.load_der_x509_certificate(der)
    assert cert.issuer == compute_anchor_name(key.public_key)
    cert.verify_directly_issued_by(x509.load_der_x509_certificate(
        build_anchor(key.public_key)))
    assert build_anchor(key.public_key) == build_anchor(key.public_key)


def test_certificate_vector_matches_the_spec() -> None:
    # docs/spec/transport.md §2: seed 01..01 gives exactly these certificate and anchor bytes.
    key = make_key(0)
    assert sha256(build_certificate(key)).hex() == (
        "7ca04c84e333f0339a265dcd0fb9ab89a6cf02e6ef6abb76c3bb8c67da31f221")
    assert sha256(build_anchor(key.public_key)).hex() == (
        "da43e4332c7bab3e4e461a7315ca6fd04b405842a9e7b1a6b7a04790121a4625")


def test_certificate_with_another_algorithm_is_refused() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(private.public_key()).serial_number(1)
            .not_valid_before(datetime.datetime(2020, 1, 1))
            .not_valid_after(datetime.datetime(2030, 1, 1)).sign(private, hashes.SHA256()))
    with pytest.raises(PeerIdentityError):
        get_certificate_key(cert.public_bytes(serialization.Encoding.DER))
    with pytest.raises(PeerIdentityError):
        get_certificate_key(b"\x30\x03junk")
    with pytest.raises(PeerIdentityError):
        get_certificate_key(None)


# --- the network -------------------------------------------------------------------------


def test_net_two_nodes_exchange_messages_both_ways() -> None:
    async def scenario() -> None:
        node_a, node_b = await start_cluster(2)
        try:
            assert node_a.send(node_b.public_key, KIND_VOTE, b"to b")
            assert await node_b.receive() == Received(node_a.public_key, KIND_VOTE, b"to b")
            assert node_b.send(node_a.public_key, KIND_TX, b"to a")
            assert await node_a.receive() == Received(node_b.public_key, KIND_TX, b"to a")
            [status] = node_a.peers()
            assert status.public_key == node_b.public_key and status.score == SCORE_MAX
            assert node_a.stats().to_json()["peers_connected"] == 1
        finally:
            await stop_all([node_a, node_b])
    run(scenario())


def test_net_four_nodes_one_connection_per_pair_and_all_to_all_delivery() -> None:
    async def scenario() -> None:
        nodes = await start_cluster(4)
        try:
            await exchange_all(nodes, b"round-1:")
            for node in nodes:
                for status in node.peers():
                    other = next(peer for peer in nodes if peer.public_key == status.public_key)
                    [back] = [item for item in other.peers()
                              if item.public_key == node.public_key]
                    assert back.outbound != status.outbound
        finally:
            await stop_all(nodes)
    run(scenario())


def test_net_simultaneous_dials_keep_the_lower_keys_connection() -> None:
    async def scenario() -> None:
        keys = [make_key(0), make_key(1)]
        trusted = [key.public_key for key in keys]
        nodes = [make_transport(key, trusted, index) for index, key in enumerate(keys)]
        for node in nodes:
            await node.start()
        addresses = [get_address(node) for node in nodes]
        for node in nodes:  # both start dialing in the same loop turn
            node.update_peers(trusted, addresses)
        try:
            await wait_until(lambda: all(len(node.peers()) == 1 for node in nodes))
            await exchange_all(nodes, b"settled:")
            low = min(nodes, key=lambda node: node.public_key)
            high = max(nodes, key=lambda node: node.public_key)
            assert low.peers()[0].outbound and not high.peers()[0].outbound
        finally:
            await stop_all(nodes)
    run(scenario())


def test_net_unknown_certificate_is_refused_at_the_handshake() -> None:
    async def scenario() -> None:
        [node] = await start_cluster(1)
        outsider = make_key(9)
        try:
            reader, writer = await open_raw_peer(node.listen_port, outsider, node.public_key,
                                                 host=HOSTILE_HOST)
            assert await read_until_closed(reader) == b""
            close_raw(writer)
            await wait_until(lambda: node.stats().refused.get(Reason.HANDSHAKE_FAILED) == 1)
            penalty = PENALTIES[Reason.HANDSHAKE_FAILED]
            assert node.address_scores.get_points(HOSTILE_HOST) == SCORE_MAX - penalty
            assert node.peers() == []
        finally:
            await node.stop()
    run(scenario())


def test_net_dialing_an_address_that_answers_with_an_unpinned_key_is_refused() -> None:
    async def scenario() -> None:
        node_a, node_b = await start_cluster(2)
        impostor = make_transport(make_key(9), [node_a.public_key])
        await impostor.start()
        try:
            # A is told that B lives at the impostor's port: the TLS client refuses it.
            node_a.update_peers([node_b.public_key], [
                PeerAddress(node_b.public_key, HONEST_HOST, impostor.listen_port)])
            await node_b.stop()
            await wait_until(lambda: node_a.stats().refused.get(Reason.WRONG_KEY, 0) >= 1)
            # Nothing authenticated as B, so B's own standing is untouched.
            assert node_a.peer_scores.get_points(node_b.public_key) == SCORE_MAX
            assert impostor.peers() == [] and node_a.peers() == []
        finally:
            await stop_all([node_a, impostor])
    run(scenario())


def test_net_forged_certificate_naming_a_pinned_issuer_is_refused() -> None:
    async def scenario() -> None:
        [node] = await start_cluster(1)
        victim, forger = make_key(0), ed25519.Ed25519PrivateKey.generate()
        try:
            # The forger's own key, under the victim's anchor name, signed by the forger.
            leaf = x509.load_der_x509_certificate(build_certificate(victim))
            forged = (x509.CertificateBuilder().subject_name(leaf.subject)
                      .issuer_name(leaf.issuer).public_key(forger.public_key())
                      .serial_number(leaf.serial_number)
                      .not_valid_before(leaf.not_valid_before_utc)
                      .not_valid_after(leaf.not_valid_after_utc).sign(forger, None))
            context = make_context(make_key(5), [node.public_key], server_side=False)
            pem = forger.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
            path = Path(f"/tmp/seoulchain-test-forged-{node.listen_port}.pem")
            path.write_bytes(pem + forged.public_bytes(serialization.Encoding.PEM))
            try:
                context.load_cert_chain(path)
            finally:
                path.unlink()
            reader, writer = await asyncio.open_connection(
                HONEST_HOST, node.listen_port, ssl=context, local_addr=(HOSTILE_HOST, 0))
            assert await read_until_closed(reader) == b""
            close_raw(writer)
            await wait_until(lambda: node.stats().refused.get(Reason.HANDSHAKE_FAILED) == 1)
            assert node.peers() == []
        finally:
            await node.stop()
    run(scenario())


def tlslite_material(cert_key: SigningKey, signing_key: SigningKey) -> tuple[Any, Any]:
    """Return tlslite's certificate chain for `cert_key` with the secret of `signing_key`."""
    from tlslite import X509, X509CertChain
    from tlslite.utils.keyfactory import parsePEMKey

    cert = x509.load_der_x509_certificate(build_certificate(cert_key))
    chain = X509CertChain([X509().parse(cert.public_bytes(serialization.Encoding.PEM)
                                        .decode())])
    pem = ed25519.Ed25519PrivateKey.from_private_bytes(signing_key.seed).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    private = parsePEMKey(pem.decode(), private=True)
    private.hashAndVerify = lambda *args, **kwargs: True  # skip tlslite's own sanity check
    return chain, private


def tlslite_settings() -> Any:
    """Return tlslite settings for TLS 1.3 against OpenSSL 3.0 (no cert compression)."""
    from tlslite import HandshakeSettings

    options = HandshakeSettings()
    options.minVersion = (3, 4)
    options.certificate_compression_send = []
    return options


def impersonate_client(port: int, victim: SigningKey, attacker: SigningKey) -> str:
    """Present the victim's (public) certificate over TLS 1.3, signing with the attacker's key."""
    from tlslite import TLSConnection

    chain, private = tlslite_material(victim, attacker)
    with socket.create_connection((HONEST_HOST, port), timeout=3,
                                  source_address=(HOSTILE_HOST, 0)) as sock:
        connection = TLSConnection(sock)
        try:
            # In TLS 1.3 the client finishes first; the server's verdict comes as an alert.
            connection.handshakeClientCert(chain, private, settings=tlslite_settings())
            connection.read(max=1)
        except Exception as exc:
            return type(exc).__name__
    return "authenticated"


def impersonate_server(listener: socket.socket, victim: SigningKey,
                       attacker: SigningKey) -> str:
    """Accept one dial and answer it with the victim's certificate and the attacker's key."""
    from tlslite import TLSConnection

    chain, private = tlslite_material(victim, attacker)
    sock, _ = listener.accept()
    with sock:
        sock.settimeout(3)
        try:
            TLSConnection(sock).handshakeServer(certChain=chain, privateKey=private,
                                                reqCert=True, settings=tlslite_settings())
        except Exception as exc:
            return type(exc).__name__
    return "authenticated"


def test_net_impersonating_client_cannot_complete_tls(caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("tlslite")
    caplog.set_level(logging.INFO, logger="seoulchain.node.transport")

    async def scenario() -> None:
        node_a, node_b = await start_cluster(2)
        try:
            outcome = await asyncio.to_thread(impersonate_client, node_a.listen_port,
                                              make_key(1), make_key(9))
            assert outcome in ("TLSRemoteAlert", "TLSAbruptCloseError")
            await wait_until(lambda: node_a.stats().refused.get(Reason.HANDSHAKE_FAILED) == 1)
            assert "BAD_SIGNATURE" in caplog.text  # OpenSSL checked CertificateVerify
            [status] = node_a.peers()
            assert status.frames_received == 1 and status.address.startswith(HONEST_HOST)
        finally:
            await stop_all([node_a, node_b])
    run(scenario())


def test_net_impersonating_server_cannot_complete_tls(caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("tlslite")
    caplog.set_level(logging.INFO, logger="seoulchain.node.transport")

    async def scenario() -> None:
        victim = make_key(1)
        node = make_transport(make_key(0), [victim.public_key])
        with socket.create_server((HONEST_HOST, 0)) as listener:
            listener.settimeout(5)
            server = asyncio.create_task(asyncio.to_thread(impersonate_server, listener,
                                                           victim, make_key(9)))
            await node.start()
            node.update_peers([victim.public_key], [
                PeerAddress(victim.public_key, HONEST_HOST, listener.getsockname()[1])])
            try:
                assert await server != "authenticated"
                await wait_until(lambda: node.stats().refused.get(Reason.HANDSHAKE_FAILED) == 1)
                assert "BAD_SIGNATURE" in caplog.text
                assert node.peers() == []
            finally:
                await node.stop()
    run(scenario())


def test_net_garbage_before_tls_is_refused_and_charged_to_the_address() -> None:
    async def scenario() -> None:
        nodes = await start_cluster(2)
        try:
            reader, writer = await asyncio.open_connection(
                HONEST_HOST, nodes[0].listen_port, local_addr=(HOSTILE_HOST, 0))
            writer.write(b"GET / HTTP/1.1\r\n\r\n" * 50)
            await read_until_closed(reader)
            close_raw(writer)
            await wait_until(lambda: nodes[0].stats().refused.get(Reason.HANDSHAKE_FAILED) == 1)
            assert nodes[0].address_scores.get_points(HOSTILE_HOST) < SCORE_MAX
            # The same from a configured peer's host is counted but never scored.
            reader, writer = await asyncio.open_connection(HONEST_HOST, nodes[0].listen_port)
            writer.write(b"\x16\x03\x01garbage" * 50)
            await read_until_closed(reader)
            close_raw(writer)
            await wait_until(lambda: nodes[0].stats().refused.get(Reason.HANDSHAKE_FAILED) == 2)
            assert nodes[0].address_scores.get_points(HONEST_HOST) == SCORE_MAX
            await exchange_all(nodes, b"still serving:")
        finally:
            await stop_all(nodes)
    run(scenario())


def test_net_malformed_and_oversized_frames_disconnect_score_and_ban() -> None:
    rogue = make_key(7)

    async def attack(node: Transport, frame_bytes: bytes) -> bytes:
        reader, writer = await open_raw_peer(node.listen_port, rogue, node.public_key)
        await asyncio.sleep(0.05)
        writer.write(frame_bytes)
        received = await read_until_closed(reader)
        close_raw(writer)
        return received

    async def scenario() -> None:
        # A frozen clock: no score recovers between the attacks.
        nodes = await start_cluster(2, extra_trusted=[rogue.public_key], clock=FakeClock())
        node = nodes[0]
        try:
            received = await attack(node, b"\x00\x00\x00\x02\x05x")  # a reserved kind
            assert FrameDecoder().feed(received)[0].kind == KIND_HELLO
            await wait_until(lambda: node.stats().disconnected.get(Reason.MALFORMED_FRAME) == 1)
            assert node.peer_scores.get_points(rogue.public_key) == SCORE_MAX - 40
            await attack(node, (FRAME_BYTES_MAX + 1).to_bytes(4, "big"))
            await wait_until(lambda: node.stats().disconnected.get(Reason.OVERSIZED_FRAME) == 1)
            assert node.stats().banned_keys == [rogue.public_key]
            assert await attack(node, b"") == b""  # banned: refused before HELLO
            await wait_until(lambda: node.stats().refused.get(Reason.BANNED) == 1)
            await exchange_all(nodes, b"unharmed:")
            assert [status.public_key for status in node.peers()] == [nodes[1].public_key]
        finally:
            await stop_all(nodes)
    run(scenario())


def test_net_reconnects_after_the_peer_restarts_and_delivers_what_was_queued() -> None:
    async def scenario() -> None:
        node_a, node_b = await start_cluster(2)
        key_b, port_b = node_b.key, node_b.listen_port
        await node_b.stop()
        await wait_until(lambda: node_a.peers() == [])
        assert node_a.send(key_b.public_key, KIND_VOTE, b"sent while down")
        # Only A dials (B knows no address), so exactly one connection carries the queue.
        restarted = make_transport(key_b, [node_a.public_key], 1, listen_port=port_b)
        await restarted.start()
        try:
            assert await restarted.receive() == Received(node_a.public_key, KIND_VOTE,
                                                         b"sent while down")
            await exchange_all([node_a, restarted], b"after restart:")
            assert node_a.stats().disconnected.get(Reason.CLOSED_BY_PEER) == 1
        finally:
            await stop_all([node_a, restarted])
    run(scenario())


def test_net_slow_reader_never_blocks_the_sender_and_the_queue_bound_holds() -> None:
    slow = make_key(8)
    limits = TransportLimits(send_queue_frames_max=16, dial_backoff_min_ms=20,
                             dial_backoff_max_ms=200)

    async def scenario() -> None:
        nodes = await start_cluster(2, extra_trusted=[slow.public_key], limits=limits,
                                    drop_policies={KIND_TX: DropPolicy.NEWEST})
        node = nodes[0]
        _reader, writer = await open_raw_peer(node.listen_port, slow, node.public_key)
        try:
            await wait_until(lambda: len(node.peers()) == 2)
            payload = bytes(64 * 1024)
            started = time.monotonic()
            for _ in range(600):  # 38 MiB: far beyond the socket buffers
                node.send(slow.public_key, KIND_VOTE, payload)
                assert len(node._peers[slow.public_key].queue) <= 16
                await asyncio.sleep(0)
            assert time.monotonic() - started < 2.0
            assert node.stats().dropped[Reason.QUEUE_FULL_OLDEST] > 0
            while node.send(slow.public_key, KIND_TX, b"tx"):
                pass
            assert node.stats().dropped[Reason.QUEUE_FULL_NEWEST] == 1
            [status] = [item for item in node.peers() if item.public_key == slow.public_key]
            assert status.send_queue_frames == 16 and status.frames_dropped > 0
            await exchange_all(nodes, b"others unaffected:")
        finally:
            close_raw(writer)
            await stop_all(nodes)
    run(scenario())


def test_net_stop_closes_everything_and_leaves_no_task() -> None:
    async def scenario() -> None:
        nodes = await start_cluster(3)
        rogue_reader, rogue_writer = await asyncio.open_connection(HONEST_HOST,
                                                                   nodes[0].listen_port)
        await wait_until(lambda: nodes[0]._handshakes_pending == 1)
        await nodes[0].stop()
        await nodes[0].stop()  # idempotent
        assert nodes[0].peers() == []
        assert await read_until_closed(rogue_reader) == b""  # a pending handshake is ended
        close_raw(rogue_writer)
        await wait_until(lambda: all(len(node.peers()) == 1 for node in nodes[1:]))
        await stop_all(nodes[1:])
        leftover = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        assert leftover == []
        with pytest.raises(LocalError):
            await nodes[0].start()
    run(scenario())


def test_net_send_refuses_local_misuse() -> None:
    node = make_transport(make_key(0), [make_key(1).public_key])
    with pytest.raises(LocalError):
        node.send(make_key(2).public_key, KIND_VOTE, b"unknown peer")
    with pytest.raises(LocalError):
        node.send(make_key(1).public_key, KIND_HELLO, b"reserved kind")
    with pytest.raises(LocalError):
        node.broadcast(KIND_VOTE, bytes(FRAME_BYTES_MAX))
    assert node.broadcast(KIND_VOTE, b"queued until connected") == 1



def test_net_keepalive_holds_idle_links_and_a_silent_peer_times_out() -> None:
    silent = make_key(6)
    limits = TransportLimits(idle_timeout_ms=300, keepalive_interval_ms=100,
                             dial_backoff_min_ms=20, dial_backoff_max_ms=200)

    async def scenario() -> None:
        nodes = await start_cluster(2, extra_trusted=[silent.public_key], limits=limits)
        reader, writer = await open_raw_peer(nodes[0].listen_port, silent, nodes[0].public_key)
        try:
            await asyncio.sleep(0.6)  # twice the idle timeout, with nothing to send
            assert [len(node.peers()) for node in nodes] == [1, 1]
            assert FrameDecoder().feed(await read_until_closed(reader))[0].kind == KIND_HELLO
            assert nodes[0].stats().disconnected == {Reason.IDLE_TIMEOUT: 1}
        finally:
            close_raw(writer)
            await stop_all(nodes)
    run(scenario())


def test_net_update_peers_drops_a_removed_validator_and_stops_dialing_it() -> None:
    async def scenario() -> None:
        nodes = await start_cluster(3)
        try:
            kept = [nodes[0].public_key, nodes[1].public_key]
            for node in nodes[:2]:
                node.update_peers(kept, [get_address(node) for node in nodes[:2]])
            await wait_until(lambda: [len(node.peers()) for node in nodes] == [1, 1, 0])
            assert nodes[0].stats().disconnected.get(Reason.UNTRUSTED) == 1
            with pytest.raises(LocalError):
                nodes[0].send(nodes[2].public_key, KIND_VOTE, b"no longer a peer")
            await asyncio.sleep(0.3)  # the removed node keeps dialing and is refused
            assert [len(node.peers()) for node in nodes] == [1, 1, 0]
            await exchange_all(nodes[:2], b"two left:")
        finally:
            await stop_all(nodes)
    run(scenario())
