"""Bounded request parameters: every number a client sends is checked before it is used.

A number outside its range answers 400 in the API's error shape before any handler runs;
nothing unbounded reaches SQLite (signed 64-bit integers) or the event loop's timers (a
NaN or infinite deadline breaks the loop's timer ordering for every other request).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from seoulchain.ledger.store import LIST_LIMIT_MAX
from seoulchain.ledger.types import HEIGHT_MAX
from seoulchain.light.snapshot import CHUNK_NIBBLES_MAX
from seoulchain.node.node import WAIT_TIMEOUT_S_MAX

# Log indexes and sizes are stored as SQLite INTEGER (signed 64-bit), like heights.
LOG_SIZE_MAX = 2**63 - 1
# A snapshot has at most 16 ** CHUNK_NIBBLES_MAX chunks (docs/spec/proofs.md).
CHUNK_INDEX_MAX = 16**CHUNK_NIBBLES_MAX - 1

Height = Annotated[int, Path(ge=1, le=HEIGHT_MAX, description="Block height, 1..2^63-1.")]
SnapshotHeight = Annotated[int, Path(ge=1, le=HEIGHT_MAX, description="Snapshot height.")]
ChunkIndex = Annotated[int, Path(ge=0, le=CHUNK_INDEX_MAX, description="Chunk index.")]
LogIndex = Annotated[int, Path(ge=0, le=LOG_SIZE_MAX - 1, description="Log leaf index.")]
LogSize = Annotated[int, Query(ge=0, le=LOG_SIZE_MAX, description="Log size (leaves).")]
OptionalLogSize = Annotated[int | None, Query(
    ge=0, le=LOG_SIZE_MAX, description="Log size (leaves); default: the current size.")]
ListLimit = Annotated[int, Query(ge=1, le=LIST_LIMIT_MAX, description="Most items returned.")]
WaitSeconds = Annotated[float, Query(
    ge=0, le=WAIT_TIMEOUT_S_MAX, allow_inf_nan=False,
    description=f"Seconds to wait for the commit, a finite number 0..{WAIT_TIMEOUT_S_MAX:g}.")]
OptionalHeight = Annotated[int | None, Query(
    ge=1, le=HEIGHT_MAX, description="Block height; default: the latest.")]
