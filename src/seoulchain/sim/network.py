"""The simulated network: seeded loss, duplication, delay spread (reordering) and partitions.

Theory of operation: the network decides, when a message is sent from node `a` to node
`b`, how many copies arrive and after which delays — zero copies if `a -> b` is cut by a
partition or the message is lost, two if it is duplicated. Every draw comes from the
cluster's one `random.Random`, in a fixed order, so a seed replays exactly. Delays are
drawn independently per copy, so messages overtake each other (reordering). A slow node
adds its delay to everything it sends and receives. Partitions are directed cuts: a
symmetric partition cuts both directions, a one-way partition only one.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

# A message copy's delay never exceeds this (ms); bounds event-queue times.
DELAY_MS_MAX = 60_000


@dataclass
class NetworkFaults:
    """Per-message fault rates and the delay distribution."""

    loss: float = 0.0
    duplicate: float = 0.0
    delay_min_ms: int = 5
    delay_spread_ms: int = 20

    def __post_init__(self) -> None:
        assert 0.0 <= self.loss <= 1.0 and 0.0 <= self.duplicate <= 1.0
        assert self.delay_min_ms >= 0 and self.delay_spread_ms >= 0


class Network:
    """Directed cuts, slow nodes and fault rates between `node_count` simulated nodes."""

    def __init__(self, rng: random.Random, node_count: int,
                 faults: NetworkFaults | None = None) -> None:
        self.rng = rng
        self.node_count = node_count
        self.faults = faults or NetworkFaults()
        self.slow_ms = [0] * node_count
        self._cut: set[tuple[int, int]] = set()

    def add_node(self) -> int:
        """Make room for one more node; return its index."""
        self.node_count += 1
        self.slow_ms.append(0)
        return self.node_count - 1

    # ------------------------------------------------------------------ partitions

    def partition(self, *groups: Iterable[int]) -> None:
        """Cut every link between different groups, both ways; nodes in no group form one more."""
        members = [set(group) for group in groups]
        rest = set(range(self.node_count)).difference(*members)
        if rest:
            members.append(rest)
        for index, group in enumerate(members):
            for other in members[index + 1:]:
                self.cut_one_way(group, other)
                self.cut_one_way(other, group)

    def cut_one_way(self, sources: Iterable[int], targets: Iterable[int]) -> None:
        """Cut the links from every source to every target (but not back)."""
        targets = list(targets)
        for source in sources:
            for target in targets:
                if source != target:
                    self._cut.add((source, target))

    def isolate(self, index: int) -> None:
        """Cut one node off from every other, both ways."""
        self.partition([index])

    def heal(self) -> None:
        """Remove every cut."""
        self._cut.clear()

    def is_cut(self, source: int, target: int) -> bool:
        return (source, target) in self._cut

    @property
    def is_partitioned(self) -> bool:
        return bool(self._cut)

    # ------------------------------------------------------------------ delivery

    def compute_delays(self, source: int, target: int, reliable: bool = False) -> list[int]:
        """Return the delays (ms) of the copies of one message from `source` that reach `target`.

        `reliable` messages (the adversary's own) are neither cut, lost nor duplicated.
        """
        faults = self.faults
        copies = 1
        if not reliable:
            if self.is_cut(source, target) or self.rng.random() < faults.loss:
                return []
            if self.rng.random() < faults.duplicate:
                copies = 2
        extra = self.slow_ms[source] + self.slow_ms[target]
        return [min(DELAY_MS_MAX, faults.delay_min_ms + extra
                    + self.rng.randint(0, faults.delay_spread_ms)) for _ in range(copies)]
