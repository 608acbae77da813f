"""The BFT block producer: the validator core driven by real sockets, timers and disk.

Theory of operation: `ValidatorCore` (node/validator.py) is the validator minus I/O; this
module is its I/O. Peer frames from the TLS transport become `MessageArrived` inputs,
`SetTimer` effects become `loop.call_later` callbacks, `Send` effects become transport sends,
and `Committed` effects go to the node (which wakes clients waiting for their transactions).
The consensus WAL and the signing state live in the node's data directory; on start the WAL
is replayed (a torn tail is truncated and reported; damage before intact records stops the
start) and the core recovers from it, so a validator killed at any point resumes without
ever signing a conflicting vote. A validator with committed blocks whose signing state is
missing does not start (`signing_store.require_signing_state`), unless it is the only
validator: it then decides each height inside one input, so no signature of a height leaves
the process before that height is stored.

Expensive checks never run on the loop when they can be helped: before a client's or a
peer's transactions reach the core, and before a peer's proposed or synced block does, their
signatures are checked on worker threads (node/verify.py) and their methods' prechecks
(ballot proofs) run in worker processes (node/prechecks.py); the core then finds both done.

A single validator runs this same path with no peers: it listens for peers only once the
validator set (or `[p2p] peers`) names another node, so `seoulchain init` + `start` opens no
peer port. The core starts when `run` does (`start_core`), so a node opened without running
commits nothing; tests step the core by hand (the timers it asks for before `run` are
theirs to fire).

Everything runs on the event loop's thread, one input at a time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from seoulchain.consensus.messages import Proposal
from seoulchain.crypto.hashing import sha256
from seoulchain.errors import DecodeError
from seoulchain.execution.engine import CommittedBlock, Engine, TxCheck
from seoulchain.execution.platform import ServiceVersionError
from seoulchain.node.config import NodeConfig
from seoulchain.node.home import Home
from seoulchain.node.mempool import Mempool
from seoulchain.node.metrics import NodeMetrics
from seoulchain.node.prechecks import PrecheckPool, PrecheckPoolError
from seoulchain.node.signing_store import FileSigningStateStore, require_signing_state
from seoulchain.node.transport import DropPolicy, Transport
from seoulchain.node.validator import (
    BlockMessage,
    Committed,
    Effect,
    Input,
    MessageArrived,
    MessageKind,
    Send,
    SetTimer,
    ValidatorConfig,
    ValidatorCore,
    decode_consensus_message,
    decode_txs_message,
)
from seoulchain.node.verify import SignatureVerifier
from seoulchain.node.wal import WriteAheadLog, replay

log = logging.getLogger("seoulchain.node")

# Transport frame kinds for the core's messages (the transport reserves kinds below 0x10).
KIND_CODES = {MessageKind.PROPOSAL: 0x10, MessageKind.VOTE: 0x11, MessageKind.TX: 0x12,
              MessageKind.STATUS: 0x13, MessageKind.BLOCK: 0x14,
              MessageKind.BLOCK_REQUEST: 0x15, MessageKind.TXS: 0x16}
KINDS_BY_CODE = {code: kind for kind, code in KIND_CODES.items()}
WAL_FILE = "consensus.wal"
# Digests of the peers' proposals and blocks whose txs were checked ahead, so that a re-sent
# one is not decoded again: a few rounds of proposals and a block-sync window or two.
CHECKED_MESSAGES_MAX = 64
SIGNING_STATE_FILE = "signing-state.cbor"


class BftProducer:
    """Runs one validator of a BFT network until stopped."""

    def __init__(self, home: Home, engine: Engine, mempool: Mempool, config: NodeConfig,
                 on_commit: Callable[[CommittedBlock], None],
                 verifier: SignatureVerifier | None = None,
                 prechecks: PrecheckPool | None = None):
        self.engine = engine
        self.verifier = verifier or SignatureVerifier(engine)
        self.prechecks = prechecks or PrecheckPool(engine, config.precheck.workers)
        self.checked_messages: OrderedDict[bytes, None] = OrderedDict()
        self.tasks: set[asyncio.Task[None]] = set()
        self.on_commit = on_commit
        self.fatal: BaseException | None = None
        self.stop_event: asyncio.Event | None = None
        key = home.load_key("validator")
        signing_path = home.data_dir / SIGNING_STATE_FILE
        require_signing_state(signing_path, engine.height, engine.store.get_base_height(),
                              self.may_have_signed_ahead(key.public_key))
        wal_path = home.data_dir / WAL_FILE
        self.recovered = replay(wal_path)
        if not self.recovered.tail.is_clean:
            log.warning("consensus WAL had a damaged tail (%s); truncated it and kept %d "
                        "intact records", self.recovered.tail.defect,
                        len(self.recovered.payloads))
        self.wal = WriteAheadLog(wal_path, fsync=True)
        chain = config.chain
        consensus_config = dataclasses.replace(
            config.consensus.to_consensus_config(engine.chain_id),
            create_empty_blocks=chain.create_empty_blocks,
            create_empty_blocks_interval_ms=chain.create_empty_blocks_interval_ms)
        validator_config = ValidatorConfig(
            consensus_config,
            commit_pause_ms=chain.commit_pause_ms,
            busy_commit_pause_ms=chain.busy_commit_pause_ms,
            gossip_interval_ms=config.p2p.gossip_interval_ms,
            block_txs_max=chain.block_txs_max, block_tx_bytes_max=chain.block_tx_bytes_max)
        self.core = ValidatorCore(
            key=key, engine=engine, mempool=mempool, wal=self.wal,
            signing_store=FileSigningStateStore(signing_path),
            config=validator_config, clock=lambda: int(time.time() * 1000))
        self.core_started = False
        self.listening = False
        self.peer_addresses = config.p2p.get_peer_addresses()
        self.trusted_keys = self.get_trusted_keys()
        self.transport = Transport(
            key, network_id=engine.chain_id, trusted_keys=self.trusted_keys,
            peers=self.peer_addresses, listen_host=config.p2p.listen_host,
            listen_port=config.p2p.listen_port, limits=config.p2p.get_limits(),
            drop_policies={KIND_CODES[MessageKind.TX]: DropPolicy.NEWEST,
                           KIND_CODES[MessageKind.TXS]: DropPolicy.NEWEST})
        # The node's metrics, told the consensus position after each step of the core.
        self.metrics: NodeMetrics | None = None
        # Pending timers by token, so a fired one is forgotten without scanning the rest.
        self.timers: dict[int, asyncio.TimerHandle] = {}
        self.next_timer = 0

    def may_have_signed_ahead(self, public_key: bytes) -> bool:
        """True if a signature of ours for the next height may have left the process before
        that height was stored: we vote there, beside other validators."""
        validators = self.engine.validators
        return (validators.get_power(public_key) > 0
                and any(item.public_key != public_key for item in validators.validators))

    def start_core(self) -> list[Effect]:
        """Start the core at the height after the store's tip, replaying the WAL's prefix."""
        effects = self.core.start(self.recovered.payloads)
        self.core_started = True
        if self.recovered.payloads:
            log.info("recovered from the consensus WAL: %d events replayed",
                     len(self.recovered.payloads))
        return effects

    def is_networked(self) -> bool:
        """True when another validator or a configured peer exists to talk to."""
        return len(self.trusted_keys) > 1 or bool(self.peer_addresses)

    def get_trusted_keys(self) -> list[bytes]:
        """Return the keys of every validator of this height and the next two."""
        sets = (self.engine.last_validators, self.engine.validators, self.engine.next_validators)
        return sorted({validator.public_key for validator_set in sets
                       for validator in validator_set.validators})

    async def run(self, stop: asyncio.Event) -> None:
        self.stop_event = stop
        effects = self.start_core()
        if self.is_networked():
            await self.start_listening()
        receiver = asyncio.create_task(self.receive_loop())
        try:
            self.apply(effects)
            await stop.wait()
        finally:
            receiver.cancel()
            for task in self.tasks:
                task.cancel()
            for timer in self.timers.values():
                timer.cancel()
            await asyncio.gather(receiver, return_exceptions=True)
            await self.transport.stop()
            self.wal.close()
        if self.fatal is not None:
            raise self.fatal

    async def start_listening(self) -> None:
        """Start the transport: listen for peers and dial the configured ones."""
        self.listening = True
        await self.transport.start()

    async def start_listening_or_stop(self) -> None:
        """Start the transport from the event loop; a failure (a port in use) stops the node."""
        try:
            await self.start_listening()
        except OSError as exc:
            log.error("cannot listen for peers on %s:%d: %s", self.transport.listen_host,
                      self.transport.listen_port, exc)
            self.fatal = exc
            if self.stop_event is not None:
                self.stop_event.set()

    def submit(self, raw: bytes) -> TxCheck:
        """Admit a client's transaction and gossip it to every peer once."""
        check, effects = self.core.submit_tx(raw)
        self.apply(effects)
        return check

    def submit_batch(self, raws: list[bytes]) -> list[TxCheck]:
        """Admit a client's batch and gossip the admitted transactions in few messages."""
        checks, effects = self.core.submit_txs(raws)
        self.apply(effects)
        return checks

    def get_peers(self) -> list[dict[str, object]]:
        return [peer.to_json() for peer in self.transport.peers()]

    async def receive_loop(self) -> None:
        while True:
            received = await self.transport.receive()
            kind = KINDS_BY_CODE.get(received.kind)
            if kind is None:
                self.transport.penalize(received.peer_key, "unknown message kind")
                continue
            event = MessageArrived(received.peer_key, kind, received.payload)
            if kind in (MessageKind.TX, MessageKind.TXS):  # checked off the loop, admitted
                task = asyncio.create_task(self.admit_gossiped(event))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            else:
                if (kind in (MessageKind.PROPOSAL, MessageKind.BLOCK)  # in order, after
                        and self.is_new_block_message(received.payload)):
                    await self.check_ahead(self.get_block_txs(kind, received.payload))
                self.handle(event)

    async def admit_gossiped(self, event: MessageArrived) -> None:
        """Decode a peer's txs once, check them off the loop, then admit them."""
        if event.kind == MessageKind.TX:
            await self.check_ahead([event.data])
            self.handle(event)
            return
        try:
            raws = decode_txs_message(event.data)
        except DecodeError:
            self.handle(event)  # the core counts it as malformed
            return
        await self.check_ahead(raws)
        self.run_core(lambda: self.core.receive_txs(raws))

    async def check_ahead(self, raws: list[bytes]) -> None:
        """Check `raws`' signatures on threads and run their prechecks in processes, so
        that the core finds both done; a failed pool leaves the checks to the core."""
        if len(raws) > 1:  # one signature is checked faster here than handed to a thread
            await self.verifier.preverify(raws)
        elif not raws:
            return
        try:
            await self.prechecks.check_ahead(raws)
        except PrecheckPoolError as exc:
            log.warning("prechecks left to the engine: %s", exc)

    def is_new_block_message(self, data: bytes) -> bool:
        """Return False if this proposal or block was checked ahead already; else remember it."""
        digest = sha256(data)
        if digest in self.checked_messages:
            return False
        self.checked_messages[digest] = None
        if len(self.checked_messages) > CHECKED_MESSAGES_MAX:
            self.checked_messages.popitem(last=False)
        return True

    def get_block_txs(self, kind: MessageKind, data: bytes) -> list[bytes]:
        """Return the txs of a peer's proposal or synced block above our tip (else none;
        the core judges the message itself)."""
        if kind == MessageKind.PROPOSAL:
            proposal = decode_consensus_message(kind, data)
            block = proposal.block if isinstance(proposal, Proposal) else None
        else:
            try:
                block = BlockMessage.decode(data).block
            except DecodeError:
                block = None
        if block is None or block.height <= self.engine.height:
            return []
        return list(block.txs)

    def handle(self, event: Input) -> None:
        """Feed one input to the core."""
        self.run_core(lambda: self.core.handle(event))

    def run_core(self, call: Callable[[], list[Effect]]) -> None:
        """Run one call into the core and carry out its effects; a failure of the node
        itself stops it loudly."""
        if self.fatal is not None:
            return
        try:
            self.apply(call())
            if self.metrics is not None:
                machine = self.core.machine
                self.metrics.observe_consensus(machine.height, machine.round,
                                               machine.step.name.lower())
        except ServiceVersionError as exc:  # an upgrade this node lacks: no traceback
            self.fatal = exc
            if self.stop_event is not None:
                self.stop_event.set()
        except Exception as exc:
            log.exception("validator core failed; stopping the node")
            self.fatal = exc
            if self.stop_event is not None:
                self.stop_event.set()

    def apply(self, effects: list[Effect]) -> None:
        """Carry out the core's effects in order."""
        for effect in effects:
            match effect:
                case Send(data, kind, to):
                    code = KIND_CODES[MessageKind(kind)]
                    if to is None:
                        self.transport.broadcast(code, data)
                    else:
                        self.transport.send(to, code, data)
                case SetTimer(duration_ms, event):
                    if self.stop_event is None:  # not running: whoever steps the core fires it
                        continue
                    token, self.next_timer = self.next_timer, self.next_timer + 1
                    self.timers[token] = asyncio.get_running_loop().call_later(
                        duration_ms / 1000, self.on_timer, token, event)
                case Committed(_, _, result):
                    self.on_commit(result)
                    self.follow_validator_set()

    def follow_validator_set(self) -> None:
        """Pin the keys of a changed validator set in the transport."""
        keys = self.get_trusted_keys()
        if keys != self.trusted_keys:
            self.trusted_keys = keys
            self.transport.update_peers(keys, self.peer_addresses)
            # A lone validator gained company: listen now (before `run`, `run` will).
            if self.stop_event is not None and not self.listening and self.is_networked():
                task = asyncio.create_task(self.start_listening_or_stop())
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    def on_timer(self, token: int, event: Input) -> None:
        del self.timers[token]
        self.handle(event)
