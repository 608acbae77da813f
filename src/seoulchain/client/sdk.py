"""The Python SDK: one object for keys, transactions, queries, events and proofs.

Theory of operation: `Seoulchain` wraps a `NodeClient` (client/http.py) and adds what an
application needs on top. Transaction methods are not written per service: they come from
the node's own description of its installed services (`GET /v1/services`), so
`sdk.tx.vehicle.register(vin=..., ...)` exists exactly when the node runs a `vehicle`
service with a `register` method, and its arguments are checked against that method's
JSON Schema (unknown or missing arguments) before anything is signed; the node checks the
rest when it executes the transaction. Nonces are read from the node once per key and then
counted locally, so several transactions can be sent without waiting for each commit; a
refused nonce makes the next one be read again. `events` iterates the node's Server-Sent
Events stream (docs/api.md, "Live events"), resuming after the last id it saw if the
connection drops. Proof bundles are assembled from the node's proof routes and verified
against a genesis the caller trusts (light/bundle.py): nothing the node says is believed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import SSEError, connect_sse

from seoulchain.client.http import (
    REQUEST_TIMEOUT_S,
    NodeClient,
    NodeUnavailable,
    TxRejected,
    describe_problem,
)
from seoulchain.client.prover import open_proof_source
from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError, RemoteError
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.types import Transaction
from seoulchain.light.bundle import (
    ProvenStatement,
    build_document_bundle,
    build_tx_bundle,
    build_vehicle_bundle,
    verify_bundle,
)

__all__ = ["Event", "Seoulchain", "TxFailed", "create_key", "load_key"]

# A transaction may commit until this many blocks after the tip it was signed at (as the
# command line's `seoulchain tx` signs them).
EXPIRY_BLOCKS_DEFAULT = 100
# How long `submit(..., wait=True)` waits for the commit by default.
COMMIT_TIMEOUT_S_DEFAULT = 30.0
# An event stream reconnects at most this many times in a row without receiving an event.
STREAM_RECONNECTS_MAX = 3


class TxFailed(RemoteError):
    """A transaction was committed but its execution failed (a non-zero result code)."""

    def __init__(self, status: dict[str, Any]):
        result = status["result"]
        super().__init__(f"transaction {status['hash']} failed at height {status['height']}: "
                         f"{result['code_name']}: {result['log']}")
        self.status = status
        self.code = int(result["code"])
        self.code_name = str(result["code_name"])


@dataclass(frozen=True)
class Event:
    """One event of the node's stream: `kind` block, tx or error, its id and its data."""

    kind: str
    id: str
    data: dict[str, Any]


def create_key(path: Path | str) -> SigningKey:
    """Create a new signing key and save it at `path` (mode 0600; never overwrites)."""
    key = SigningKey.generate()
    try:
        key.save(Path(path))
    except FileExistsError:
        raise LocalError(f"{path} exists; load it with load_key, or choose a new path") \
            from None
    return key


def load_key(path: Path | str) -> SigningKey:
    """Load a signing key saved by `create_key` or `seoulchain keys create`."""
    return SigningKey.load(Path(path))


class Seoulchain:
    """A node's API for applications: sign and submit, query, subscribe, prove."""

    def __init__(self, url: str, key: SigningKey | None = None,
                 genesis: Genesis | None = None, timeout_s: float = REQUEST_TIMEOUT_S,
                 transport: httpx.BaseTransport | None = None):
        self.node = NodeClient(url, timeout_s, transport)
        self.key = key
        self._genesis = genesis
        self._services: dict[str, dict[str, Any]] | None = None
        self._nonces: dict[bytes, int] = {}
        self.tx = TxMethods(self)

    def close(self) -> None:
        self.node.close()

    def __enter__(self) -> Seoulchain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ services

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        """Return the node's installed services by name, as `GET /v1/services` describes."""
        if self._services is None:
            described = self.node.get_json("/v1/services")["services"]
            self._services = {service["name"]: service for service in described}
        return self._services

    def get_method(self, service: str, method: str) -> dict[str, Any]:
        """Return a method's description (roles, argument schema), or raise `LocalError`."""
        if service not in self.services:
            raise LocalError(f"the node has no service {service!r}; it has: "
                             f"{', '.join(sorted(self.services))}")
        methods = self.services[service]["methods"]
        if method not in methods:
            raise LocalError(f"service {service!r} has no method {method!r}; it has: "
                             f"{', '.join(sorted(methods))}")
        return methods[method]

    def check_args(self, service: str, method: str, args: dict[str, Any]) -> None:
        """Refuse arguments the method's schema does not have, or lacks required ones of."""
        schema = self.get_method(service, method)["args"]
        fields = schema.get("properties", {})
        unknown = sorted(set(args) - set(fields))
        if unknown:
            raise LocalError(f"{service}.{method} has no argument {unknown[0]!r}; its "
                             f"arguments: {', '.join(fields) or 'none'}")
        missing = [name for name in schema.get("required", []) if name not in args]
        if missing:
            raise LocalError(f"{service}.{method} needs argument {missing[0]!r}")

    # ------------------------------------------------------------------ transactions

    def require_key(self, key: SigningKey | None) -> SigningKey:
        chosen = key or self.key
        if chosen is None:
            raise LocalError("no signing key: pass key= here or to Seoulchain(...)")
        return chosen

    def build(self, service: str, method: str, args: dict[str, Any],
              key: SigningKey | None = None) -> Transaction:
        """Return a signed transaction calling `service.method(args)` with the next nonce."""
        self.check_args(service, method, args)
        signer = self.require_key(key)
        status = self.node.get_status()
        nonce = self._nonces.get(signer.public_key) or self.node.get_next_nonce(
            signer.public_key)
        self._nonces[signer.public_key] = nonce + 1
        return Transaction.create(signer, chain_id=status["chain_id"], nonce=nonce,
                                  expiry_height=status["height"] + EXPIRY_BLOCKS_DEFAULT,
                                  service=service, method=method, args=args)

    def submit(self, service: str, method: str, args: dict[str, Any], *,
               key: SigningKey | None = None, wait: bool = True,
               timeout_s: float = COMMIT_TIMEOUT_S_DEFAULT) -> dict[str, Any]:
        """Sign and submit a transaction; with `wait`, return its committed status.

        Raises `TxRejected` if the node refuses it and `TxFailed` if it commits with a
        failing result code; without `wait`, returns the admission (`hash`, `code`).
        """
        tx = self.build(service, method, args, key)
        return self.send(tx, wait=wait, timeout_s=timeout_s)

    def send(self, tx: Transaction, *, wait: bool = True,
             timeout_s: float = COMMIT_TIMEOUT_S_DEFAULT) -> dict[str, Any]:
        """Submit a signed transaction; with `wait`, return its committed status."""
        try:
            admitted = self.node.submit(tx)
        except TxRejected:
            self._nonces.pop(tx.signer, None)  # read the nonce from the node next time
            raise
        if not wait:
            return admitted
        return self.wait_for_commit(tx.hash(), timeout_s)

    def wait_for_commit(self, tx_hash: bytes | str,
                        timeout_s: float = COMMIT_TIMEOUT_S_DEFAULT) -> dict[str, Any]:
        """Return a transaction's committed status (`TxFailed` if its execution failed)."""
        tx_hash = bytes.fromhex(tx_hash) if isinstance(tx_hash, str) else tx_hash
        status = self.node.wait_for_commit(tx_hash, timeout_s)
        if status["result"]["code"] != 0:
            raise TxFailed(status)
        return status

    def get_tx(self, tx_hash: bytes | str) -> dict[str, Any]:
        """Return a transaction's status: unknown, pending, or committed with its result."""
        return self.node.get_tx(bytes.fromhex(tx_hash) if isinstance(tx_hash, str)
                                else tx_hash)

    # ------------------------------------------------------------------ reads

    def query(self, service: str, name: str, **args: Any) -> Any:
        """Run a service query on committed state and return its result."""
        return self.node.query(service, name, **args)["result"]

    def status(self) -> dict[str, Any]:
        """Return the node's status: chain id, tip height, mempool."""
        return self.node.get_status()

    def events(self, *, from_height: int | None = None, last_event_id: str | None = None,
               to_height: int | None = None, **filters: str) -> Iterator[Event]:
        """Yield the node's events matching `filters` (service=, signer=, event=, attr_NAME=
        for attr.NAME=), from a height or after an id, live; reconnects where it stopped."""
        params = {(f"attr.{name[5:]}" if name.startswith("attr_") else name): value
                  for name, value in filters.items()}
        for name, value in (("from_height", from_height), ("to_height", to_height)):
            if value is not None:
                params[name] = str(value)
        reconnects = 0
        while True:
            headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
            try:
                for event in self.read_stream(params, headers):
                    reconnects = 0
                    last_event_id = event.id or last_event_id
                    yield event
                return
            except (httpx.TransportError, NodeUnavailable) as exc:
                reconnects += 1
                if reconnects > STREAM_RECONNECTS_MAX:
                    raise NodeUnavailable(f"the event stream of {self.node.base_url} "
                                          f"broke: {exc}") from exc
                if last_event_id:
                    params.pop("from_height", None)  # resume after the last id instead

    def read_stream(self, params: dict[str, str], headers: dict[str, str]
                    ) -> Iterator[Event]:
        """Yield the events of one connection to `GET /v1/events` until it ends."""
        with connect_sse(self.node.http, "GET", "/v1/events", params=params,
                         headers=headers, timeout=httpx.Timeout(None, connect=10.0)
                         ) as source:
            if source.response.status_code >= 400:
                source.response.read()
                raise RemoteError(describe_problem(source.response))
            try:
                for message in source.iter_sse():
                    yield Event(message.event, message.id, json.loads(message.data))
            except SSEError as exc:
                raise RemoteError(f"the node did not answer with an event stream: {exc}") \
                    from exc

    # ------------------------------------------------------------------ proofs

    @property
    def genesis(self) -> Genesis:
        """Return the genesis proofs are verified against (the node's, if none was given:
        compare `genesis.hash()` with the one your agency publishes)."""
        if self._genesis is None:
            self._genesis = Genesis.from_json(self.node.get_genesis())
        return self._genesis

    def prove_tx(self, tx_hash: bytes | str) -> dict[str, Any]:
        """Return a verified proof bundle of a committed transaction and its result."""
        tx_hash = bytes.fromhex(tx_hash) if isinstance(tx_hash, str) else tx_hash
        return build_tx_bundle(open_proof_source(self.node), self.genesis, tx_hash)

    def prove_document(self, doc_hash: bytes, service: str = "notary") -> dict[str, Any]:
        """Return a verified bundle of a document's record (or absence) at the tip."""
        return build_document_bundle(open_proof_source(self.node), self.genesis, doc_hash,
                                     service=service)

    def prove_vehicle(self, vin: str) -> dict[str, Any]:
        """Return a verified bundle of a vehicle's record and history at the tip."""
        return build_vehicle_bundle(open_proof_source(self.node), self.genesis, vin)

    def verify(self, bundle: dict[str, Any] | bytes) -> ProvenStatement:
        """Verify a proof bundle offline against this SDK's genesis; return what it proves."""
        return verify_bundle(bundle, self.genesis)


class TxMethods:
    """`sdk.tx.SERVICE.METHOD(**args)`: one callable per method the node's services have."""

    def __init__(self, sdk: Seoulchain):
        self._sdk = sdk

    def __getattr__(self, service: str) -> ServiceMethods:
        if service.startswith("_"):
            raise AttributeError(service)
        if service not in self._sdk.services:
            raise AttributeError(f"the node has no service {service!r}")
        return ServiceMethods(self._sdk, service)

    def __dir__(self) -> list[str]:
        return sorted(self._sdk.services)


class ServiceMethods:
    """The transaction methods of one service, as keyword-argument callables."""

    def __init__(self, sdk: Seoulchain, service: str):
        self._sdk = sdk
        self._service = service

    def __getattr__(self, method: str) -> Any:
        if method.startswith("_"):
            raise AttributeError(method)
        spec = self._sdk.get_method(self._service, method)
        sdk, service = self._sdk, self._service

        def call(*, key: SigningKey | None = None, wait: bool = True,
                 timeout_s: float = COMMIT_TIMEOUT_S_DEFAULT, **args: Any) -> dict[str, Any]:
            return sdk.submit(service, method, args, key=key, wait=wait, timeout_s=timeout_s)

        call.__name__ = method
        call.__doc__ = f"{service}.{method}: {spec['description']}"
        return call

    def __dir__(self) -> list[str]:
        return sorted(self._sdk.services[self._service]["methods"])
