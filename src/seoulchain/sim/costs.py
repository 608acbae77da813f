"""Modelled CPU costs of a validator; the throughput/latency study on them is `sim/scale.py`.

Theory of operation: without costs the simulator hands each event to its node in zero
virtual time. With a `CpuCosts`, a node is a machine of its own that is busy: the cluster
measures what each event made the node do (`EventWork`: the message it handled, the txs it
admitted, the blocks and txs it executed and committed, its durable writes), prices it
here (`compute_busy_us`), and the node's effects (sends, commits) happen when that work
ends; events arriving meanwhile wait in the node's inbox, in arrival order. The figures
are busy time on the node's one event loop, CPU or blocking I/O (an fsync blocks the loop
as surely as a signature check does).

Every default below is a measured figure from this code on the project's 2-core box; each
comment says which measurement. What the model leaves out: the GIL and event-loop
contention between the node's API, transport and consensus (one queue per node here,
FIFO, no preemption), the real node's worker-thread signature checks (here all on the
one loop), batching effects beyond what the code itself does, bandwidth (a message's
delay does not depend on its size), the WAL reset's fsync at each new height, and the
commit signatures a block-synced block carries. docs/simulation.md, "Modelled CPU costs
and scaling", has the study's method and results.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from seoulchain.errors import LocalError

MICROS_PER_S = 1_000_000


@dataclass(frozen=True)
class CpuCosts:
    """Virtual busy time, in microseconds, of each operation a validator performs."""

    # Any input handled (dispatch; decoding a status or a small message): a status message
    # took 21 µs (median) in the simulator, `core.handle` timed with process_time.
    event_us: int = 20
    # A proposal or vote on top of that: strict CBOR decode, the Ed25519 check (≈ 65 µs a
    # core on this box), the WAL record, vote counting; a vote took 254 µs (median) in the
    # simulator, less the 20 above.
    consensus_message_us: int = 230
    # A tx admitted to the mempool (decode, signature, nonce, schema), from a client or a
    # peer's gossip: `seoulchain bench ledger` admission, 210 µs/tx for a 195 B notary
    # anchor (173 µs on a quieter run).
    tx_admit_us: int = 210
    # Executing a block (prepare_proposal at the proposer, process_proposal elsewhere, or a
    # synced block) beside its txs: header checks, roots, the state tree's batch; a
    # proposal of 0-3 txs took 1.4 ms (median) in the simulator, about 1 ms beyond a vote.
    block_execute_us: int = 1000
    # Each tx executed in a block. `bench ledger` gives 340 µs/tx of block work, split here
    # as prepare_proposal (execution) and Engine.commit divided it in a 10,000-tx run with
    # blocks of 2,000 (203 and 68 µs of CPU per tx, 75 % / 25 %): 250 µs, and 90 µs below.
    tx_execute_us: int = 250
    # Committing a block beside its txs and its fsync: the store transaction's CPU, 0.7 ms
    # (a vote that committed a small block took 0.94 ms against 0.25 ms for one that did not).
    block_commit_us: int = 700
    # Each tx committed: its records, state and tree nodes written (see tx_execute_us).
    tx_commit_us: int = 90
    # One fsync: ≈ 3.3 ms on this box's disk (docs/performance.md, catch-up table; a probe
    # of 200 small appends gave a 3.6 ms median). Paid per block commit (SQLite,
    # synchronous=FULL), per synced WAL write (an own proposal or vote, which makes the
    # inputs logged before it durable too, and the log's reset at each height) and twice
    # per own signature (signing state: file and directory).
    fsync_us: int = 3300

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            if getattr(self, item.name) < 0:
                raise LocalError(f"CpuCosts.{item.name} must not be negative")

    @classmethod
    def zero(cls) -> CpuCosts:
        """Return costs that are all zero (the simulator's model without costs)."""
        return cls(**{item.name: 0 for item in dataclasses.fields(cls)})

    def is_zero(self) -> bool:
        return all(getattr(self, item.name) == 0 for item in dataclasses.fields(self))

    def compute_tx_us(self) -> int:
        """Busy time every validator spends on every tx: admit, execute, commit."""
        return self.tx_admit_us + self.tx_execute_us + self.tx_commit_us

    def compute_bound_tps(self) -> float:
        """The rate no network of these validators can exceed: each admits, executes and
        commits every tx, so one validator's per-tx time bounds the whole network."""
        per_tx_us = self.compute_tx_us()
        return float("inf") if per_tx_us == 0 else MICROS_PER_S / per_tx_us

    def compute_busy_us(self, work: EventWork) -> int:
        """Return how long `work` keeps a node busy."""
        return (self.event_us
                + work.consensus_messages * self.consensus_message_us
                + work.txs_admitted * self.tx_admit_us
                + work.blocks_executed * self.block_execute_us
                + work.txs_executed * self.tx_execute_us
                + work.blocks_committed * self.block_commit_us
                + work.txs_committed * self.tx_commit_us
                + work.fsyncs * self.fsync_us)

    def scaled_tx(self, factor: float) -> CpuCosts:
        """Return these costs with every per-tx cost multiplied by `factor`."""
        return dataclasses.replace(
            self, tx_admit_us=round(self.tx_admit_us * factor),
            tx_execute_us=round(self.tx_execute_us * factor),
            tx_commit_us=round(self.tx_commit_us * factor))


@dataclass(frozen=True, slots=True)
class EventWork:
    """What one event made a node do, as the cluster measured it."""

    consensus_messages: int = 0
    txs_admitted: int = 0
    blocks_executed: int = 0
    txs_executed: int = 0
    blocks_committed: int = 0
    txs_committed: int = 0
    fsyncs: int = 0
