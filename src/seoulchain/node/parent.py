"""Child processes that end with their parent: a node under a devnet, the load generator.

Linux's prctl(PR_SET_PDEATHSIG) makes the kernel signal a process when the thread that
started it exits, so a supervisor killed with SIGKILL leaves no validator or load
generator behind; supervisors therefore start children from their main thread. Elsewhere
the request is a no-op and nodes rely on `watch_parent` (cli/run.py) polling their parent's
pid.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import sys

# prctl(2) option that asks the kernel to signal this process when its parent dies.
PR_SET_PDEATHSIG = 1


def set_parent_death_signal(signum: int) -> None:
    """Ask Linux to send `signum` to this process when its parent dies (elsewhere: no-op).

    Also usable inside a `subprocess.Popen` `preexec_fn`: the request survives the exec.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)


def kill_with_parent() -> None:
    """`preexec_fn` for helper processes (the load generator): SIGKILL when the parent dies."""
    set_parent_death_signal(signal.SIGKILL)
