"""The exit statuses of the `seoulchain` command, in one place (docs/operations.md, "Exit codes").

Scripts and service managers branch on these: systemd's `Restart=on-failure` restarts a
node on any non-zero status, and `RestartPreventExitStatus=` can hold back a restart after
a storage failure until an operator has looked at the disk.
"""

from __future__ import annotations

# The command did what was asked; a node stopped cleanly on SIGINT or SIGTERM.
EXIT_OK = 0
# A usage, configuration or input error, or a definite failure; one line says what to fix.
EXIT_ERROR = 1
# `audit` found a block that fails a check (click also uses 2 for a malformed command line).
EXIT_AUDIT_FAILED = 2
# `query` found nothing: no record for the document, or a null query result.
EXIT_NOT_FOUND = 3
# A transaction was sent but no node has confirmed it yet: it may still commit.
EXIT_OUTCOME_UNKNOWN = 4
# `document check`: the file's document is issued but not valid now. Apart from the codes
# above (0 valid, 3 never issued), each status has its own code so a script can branch on it.
EXIT_DOCUMENT_REVOKED = 10
EXIT_DOCUMENT_SUPERSEDED = 11
EXIT_DOCUMENT_EXPIRED = 12
EXIT_DOCUMENT_NOT_YET_VALID = 13
# `eligibility check`: the answer is "no". 20: it verifies but its claims do not meet the
# question; 21: it is refused (forged, altered, for another request, replayed, expired or
# revoked). 0 is "yes".
EXIT_NOT_ELIGIBLE = 20
EXIT_ANSWER_REFUSED = 21
# The node stopped because the network's signed header carries another app hash than the
# block id this node computed: its state is not the chain's (a non-deterministic or modified
# service). A restart would diverge again. 65 is EX_DATAERR in BSD's sysexits.h.
EXIT_APP_HASH_MISMATCH = 65
# The node stopped because an unexpected error occurred (a bug; the log has the traceback).
# 70 is EX_SOFTWARE in BSD's sysexits.h.
EXIT_CRASH = 70
# The node stopped because its block store could not be read or written.
# 74 is EX_IOERR in BSD's sysexits.h.
EXIT_STORAGE = 74
# The node stopped (or did not start) because its installed services are not the versions
# the chain runs: one missing, extra or at another version, or an upgrade applies at the next
# height that this node lacks. Install the versions the message names, then start again.
# 78 is EX_CONFIG in BSD's sysexits.h.
EXIT_UPGRADE_REQUIRED = 78
