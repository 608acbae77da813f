"""The home lock: one process at a time runs a node home or writes its store.

Theory of operation: the lock is an exclusive, non-blocking `fcntl.flock` on HOME/node.lock,
held until released or until the process ends. The kernel drops it when the process exits
however it exits (kill -9 included), so a lock file left behind blocks no one; the file is
never deleted, since deleting it would let two processes lock two different files of the
same name. The holder writes its pid and purpose into the file, so a refused process can
name it. Within one process the lock is re-entrant: `seoulchain start` takes it before it
checks anything else and the node it then opens takes it again, sharing the descriptor;
the descriptor is closed (and the lock dropped) when the last holder releases it.
"""

from __future__ import annotations

import fcntl
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from seoulchain.errors import LocalError

LOCK_FILE_NAME = "node.lock"
# A pid and a short purpose; anything longer in the file is not ours to show.
HOLDER_BYTES_MAX = 200
LOCK_FILE_MODE = 0o600


class HomeInUse(LocalError):
    """Another process holds the home's lock."""


@dataclass
class _Held:
    descriptor: int
    count: int


_held: dict[str, _Held] = {}
_held_guard = threading.Lock()


class HomeLock:
    """This process's hold on a home's lock; `release` (or leaving a `with`) lets it go."""

    def __init__(self, path: Path):
        self.path = path
        self.released = False

    def release(self) -> None:
        """Give up this hold; the lock is dropped when the process's last hold goes."""
        if self.released:
            return
        self.released = True
        with _held_guard:
            held = _held[str(self.path)]
            held.count -= 1
            if held.count == 0:
                del _held[str(self.path)]
                os.close(held.descriptor)

    def __enter__(self) -> HomeLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def acquire_home_lock(root: Path, purpose: str) -> HomeLock:
    """Lock the home at `root` for this process at once, or raise `HomeInUse` naming the holder."""
    path = Path(os.path.realpath(root / LOCK_FILE_NAME))
    with _held_guard:
        held = _held.get(str(path))
        if held is not None:
            held.count += 1
            return HomeLock(path)
        _held[str(path)] = _Held(lock_file(path, purpose), 1)
    return HomeLock(path)


def lock_file(path: Path, purpose: str) -> int:
    """Open and flock `path`, record this process in it, and return its descriptor."""
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, LOCK_FILE_MODE)
    except OSError as exc:
        raise LocalError(f"cannot open the home lock {path}: {exc.strerror}") from exc
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = read_holder(descriptor)
        os.close(descriptor)
        raise HomeInUse(f"{path.parent} is in use by {holder}: a node home serves one process "
                        "at a time. Stop that process first, or use another --home") from None
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"{os.getpid()} {purpose}\n".encode(), 0)
    return descriptor


def read_holder(descriptor: int) -> str:
    """Return who holds the lock, as its lock file tells: 'process PID (purpose)'."""
    text = os.pread(descriptor, HOLDER_BYTES_MAX, 0).decode("utf-8", "replace").strip()
    pid, _, purpose = text.partition(" ")
    if not pid.isdigit():
        return "another process"
    return f"process {pid} ({purpose})" if purpose else f"process {pid}"
