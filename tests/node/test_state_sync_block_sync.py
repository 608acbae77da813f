"""A state-synced validator core starts after its snapshot and block-syncs the rest."""

from __future__ import annotations

from seoulchain.consensus.machine import ConsensusConfig
from seoulchain.consensus.safety import InMemorySigningStateStore
from seoulchain.execution.engine import Engine
from seoulchain.ledger.store import BlockStore
from seoulchain.light.snapshot import Manifest
from seoulchain.node.mempool import Mempool
from seoulchain.node.statesync import restore_snapshot, take_snapshot
from seoulchain.node.validator import (
    MessageArrived,
    MessageKind,
    NextHeightDue,
    StatusMessage,
    ValidatorConfig,
    ValidatorCore,
)
from seoulchain.sim.wal import MemoryWAL
from tests.node.test_validator import (
    CHAIN_ID,
    GENESIS_TIME_MS,
    SERVICES,
    deliver,
    make_key,
    make_lone_chain,
    serve,
)


def test_state_synced_core_block_syncs_from_the_snapshot_height() -> None:
    """validator core: restored at height 12 from a snapshot, a standby asks only for the
    blocks after it, commits them and reaches the leader's tip (n=1 leader)."""
    leader = make_lone_chain(12)
    snapshot = take_snapshot(leader.disk.store)
    for height in range(13, 31):
        leader.now_ms += 1000
        leader.handle(NextHeightDue(height))
    assert leader.core.height == 30
    store = BlockStore(":memory:")
    restore_snapshot(store, leader.genesis, Manifest.decode(snapshot.manifest.encode()),
                     [snapshot.chunks.__getitem__])
    engine = Engine(leader.genesis, store, SERVICES)
    follower = ValidatorCore(key=make_key("standby"), engine=engine,
                             mempool=Mempool(engine, 10, 10**6), wal=MemoryWAL(),
                             signing_store=InMemorySigningStateStore(),
                             config=ValidatorConfig(ConsensusConfig(CHAIN_ID)),
                             clock=lambda: GENESIS_TIME_MS)
    follower.start()
    assert follower.height == 12 and follower.machine.height == 13
    leader_key = leader.keys[0].public_key
    effects = follower.handle(MessageArrived(leader_key, MessageKind.STATUS,
                                             StatusMessage(31, 0).encode()))
    replies = serve(leader, make_key("standby").public_key,
                    [effect for effect in effects
                     if getattr(effect, "kind", None) == MessageKind.BLOCK_REQUEST])
    for reply in replies:
        deliver(follower, leader_key, reply)
    assert follower.engine.tip == leader.core.engine.tip
    assert store.get_block(12) is None and store.get_block(13) is not None
