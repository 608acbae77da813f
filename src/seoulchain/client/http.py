"""A small synchronous client for the node's HTTP API.

A transaction whose node stops answering after it was sent may have committed: the node
may have admitted it and gossiped it before it died. `submit_and_confirm` then asks the
other nodes for it by hash before concluding, and says "outcome unknown" (`OutcomeUnknown`)
rather than "failed" when no node can confirm it yet.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from seoulchain.codec import encode
from seoulchain.errors import LocalError, RemoteError
from seoulchain.ledger.types import Transaction

# Every API error is a document of this type (RFC 9457).
PROBLEM_MEDIA_TYPE = "application/problem+json"
# Per-request network timeout; commits are waited for with explicit wait_s instead.
REQUEST_TIMEOUT_S = 10.0
# A server-side wait is capped; longer waits are split into several requests.
WAIT_CHUNK_S = 20.0
# After a node's answer is lost, how long the nodes are asked whether the transaction
# committed: a height or two of BFT consensus, including the round change when the lost
# node was the proposer (default propose timeout 3 s, docs/operations.md).
OUTCOME_LOOKUP_S = 10.0
OUTCOME_POLL_S = 0.5
# A node that takes longer than this to answer a lookup is skipped for that round.
LOOKUP_REQUEST_TIMEOUT_S = 3.0


class NodeUnavailable(LocalError):
    """No node answered at the given address (`request_sent`: it may have received it)."""

    def __init__(self, message: str, *, request_sent: bool = False):
        super().__init__(message)
        self.request_sent = request_sent


class CommitTimeout(LocalError):
    """A transaction was not committed within the time the caller allowed."""


class OutcomeUnknown(LocalError):
    """A transaction was sent, but no node can say yet whether it committed."""

    def __init__(self, tx_hash: bytes, reason: str, lookup: TxLookup):
        super().__init__(f"outcome unknown for transaction {tx_hash.hex()}: {reason}")
        self.tx_hash = tx_hash
        self.reason = reason
        self.lookup = lookup


@dataclass
class TxLookup:
    """What the nodes asked said about a transaction: its committed status, if one had it."""

    committed: dict[str, Any] | None = None
    statuses: dict[str, str] = field(default_factory=dict)  # URL -> status, nodes that answered


class TxRejected(RemoteError):
    """The node refused a transaction; carries the result code and message."""

    def __init__(self, code: int, code_name: str, log: str):
        super().__init__(f"{code_name} ({code}): {log}")
        self.code = code
        self.code_name = code_name
        self.log = log


def is_problem(response: httpx.Response) -> bool:
    """Return True if the response is a problem document."""
    return response.headers.get("content-type", "").startswith(PROBLEM_MEDIA_TYPE)


def describe_problem(response: httpx.Response) -> str:
    """Return the detail of an API error (an RFC 9457 problem document, docs/api.md)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str) and detail:
        return detail
    return f"HTTP {response.status_code} for {response.request.url.path}"


class NodeClient:
    """Talks to one node's API at `base_url` (e.g. http://127.0.0.1:26657)."""

    def __init__(self, base_url: str, timeout_s: float = REQUEST_TIMEOUT_S,
                 transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            # Only a failed connection proves that the node never saw the request.
            sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
            raise NodeUnavailable(f"no node answered at {self.base_url}: {exc}",
                                  request_sent=sent) from exc

    def get_json(self, path: str, **params: Any) -> Any:
        response = self.request("GET", path, params=params)
        if response.status_code >= 400:
            raise RemoteError(describe_problem(response))
        return response.json()

    def get_status(self) -> dict[str, Any]:
        return self.get_json("/v1/status")

    def get_account(self, public_key: bytes) -> dict[str, Any]:
        return self.get_json(f"/v1/accounts/{public_key.hex()}")

    def get_next_nonce(self, public_key: bytes) -> int:
        return int(self.get_account(public_key)["next_nonce"])

    def get_tx(self, tx_hash: bytes, wait_s: float = 0.0) -> dict[str, Any]:
        return self.get_json(f"/v1/txs/{tx_hash.hex()}", wait_s=wait_s)

    def query(self, service: str, name: str, **args: Any) -> Any:
        return self.get_json(f"/v1/query/{service}/{name}", **args)

    def get_genesis(self) -> dict[str, Any]:
        return self.get_json("/v1/genesis")

    def get_light_block(self, height: int) -> dict[str, Any]:
        """Return {"height", "light_block": {header, commit, validators}} (base64 CBOR)."""
        return self.get_json(f"/v1/light/{height}")

    def get_tx_proof(self, tx_hash: bytes) -> dict[str, Any]:
        """Return {"height", "proof"}: a committed tx's log and result inclusion proofs."""
        return self.get_json(f"/v1/proofs/tx/{tx_hash.hex()}")

    def get_state_proof(self, service: str, key: bytes) -> dict[str, Any]:
        """Return {"height", "proof"}: a state key's value and tree proof at the tip."""
        return self.get_json(f"/v1/proofs/state/{service}/{key.hex()}")

    def get_bytes(self, path: str, bytes_max: int) -> bytes:
        """GET a binary (CBOR) resource of at most `bytes_max` bytes."""
        response = self.request("GET", path)
        if response.status_code >= 400:
            raise RemoteError(describe_problem(response))
        if len(response.content) > bytes_max:
            raise RemoteError(f"{path}: {len(response.content)} bytes, limit {bytes_max}")
        return response.content

    def list_snapshots(self) -> list[int]:
        """Return the heights of the state snapshots the node offers, oldest first."""
        body = self.get_json("/v1/snapshots")
        heights = body.get("heights") if isinstance(body, dict) else None
        if not isinstance(heights, list) or not all(type(item) is int for item in heights):
            raise RemoteError("the node sent a malformed snapshot list")
        return heights

    def get_snapshot_manifest(self, height: int) -> bytes:
        """Return the CBOR manifest of the snapshot at `height` (unverified)."""
        from seoulchain.light.snapshot import MANIFEST_BYTES_MAX

        return self.get_bytes(f"/v1/snapshots/{height}/manifest", MANIFEST_BYTES_MAX)

    def get_snapshot_chunk(self, height: int, index: int) -> bytes:
        """Return chunk `index` of the snapshot at `height` as CBOR (unverified)."""
        from seoulchain.light.snapshot import CHUNK_BYTES_MAX

        return self.get_bytes(f"/v1/snapshots/{height}/chunks/{index}", CHUNK_BYTES_MAX)

    def submit(self, tx: Transaction | bytes) -> dict[str, Any]:
        """Submit a signed transaction; raise `TxRejected` if the node refuses it."""
        raw = tx.encode() if isinstance(tx, Transaction) else tx
        response = self.request("POST", "/v1/txs", content=raw,
                                headers={"content-type": "application/cbor"})
        if response.status_code >= 400:
            body = response.json() if is_problem(response) else {}
            result = body.get("result") if isinstance(body, dict) else None
            if isinstance(result, dict) and "code_name" in result:
                raise TxRejected(result["code"], result["code_name"], result["log"])
            raise RemoteError(describe_problem(response))
        return response.json()

    def submit_batch(self, raws: list[bytes]) -> list[dict[str, Any]]:
        """Submit several signed transactions in one request; return each one's admission."""
        response = self.request("POST", "/v1/txs/batch", content=encode(raws),
                                headers={"content-type": "application/cbor"})
        if response.status_code >= 400:
            raise RemoteError(describe_problem(response))
        return response.json()["results"]

    def wait_for_commit(self, tx_hash: bytes, timeout_s: float = 30.0) -> dict[str, Any]:
        """Wait until the transaction is committed; raise `CommitTimeout` after `timeout_s`."""
        if not math.isfinite(timeout_s) or timeout_s < 0:
            raise LocalError(f"a wait is a finite number of seconds, not {timeout_s}")
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            status = self.get_tx(tx_hash, wait_s=max(0.0, min(WAIT_CHUNK_S, remaining)))
            if status["status"] == "committed":
                return status
            if time.monotonic() >= deadline:
                raise CommitTimeout(f"not committed within {timeout_s:.0f} s (status at "
                                    f"{self.base_url}: {status['status']})")


def submit_and_confirm(client: NodeClient, tx: Transaction, timeout_s: float,
                       other_urls: Sequence[str] = (), lookup_s: float = OUTCOME_LOOKUP_S,
                       transport: httpx.BaseTransport | None = None) -> dict[str, Any]:
    """Submit `tx` and return its committed status, asking `other_urls` if the answer is lost.

    Raises `TxRejected` when the node refuses it, `NodeUnavailable` when it was never
    sent, and `OutcomeUnknown` when it was sent but no node confirms a commit.
    """
    try:
        client.submit(tx)
    except NodeUnavailable as exc:
        if not exc.request_sent:
            raise
        reason = f"the node's answer was lost ({exc})"
    except TxRejected:
        raise
    except RemoteError as exc:
        reason = f"the node answered with an error ({exc})"
    else:
        try:
            return client.wait_for_commit(tx.hash(), timeout_s)
        except CommitTimeout as exc:
            reason, lookup_s = str(exc), 0.0  # the node itself was asked for timeout_s
        except (NodeUnavailable, RemoteError) as exc:
            reason = f"the node stopped answering after accepting it ({exc})"
    urls = [client.base_url, *(url for url in other_urls if url.rstrip("/") != client.base_url)]
    lookup = find_committed_tx(urls, tx.hash(), lookup_s, transport)
    if lookup.committed is not None:
        return lookup.committed
    raise OutcomeUnknown(tx.hash(), reason, lookup)


def find_committed_tx(urls: Sequence[str], tx_hash: bytes, timeout_s: float,
                      transport: httpx.BaseTransport | None = None) -> TxLookup:
    """Ask each node for the transaction until one has it committed, for up to `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    clients = [NodeClient(url, LOOKUP_REQUEST_TIMEOUT_S, transport) for url in urls]
    lookup = TxLookup()
    try:
        while True:
            for client in clients:
                with contextlib.suppress(NodeUnavailable, RemoteError, ValueError, KeyError):
                    status = client.get_tx(tx_hash)
                    lookup.statuses[client.base_url] = str(status["status"])
                    if status["status"] == "committed":
                        lookup.committed = status
                        return lookup
            if time.monotonic() + OUTCOME_POLL_S > deadline:
                return lookup
            time.sleep(OUTCOME_POLL_S)
    finally:
        for client in clients:
            client.close()
