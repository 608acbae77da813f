"""Proof pieces from a node's HTTP API, for bundles built away from the node.

Theory of operation: `light/bundle.py` builds a bundle from any `ProofSource`.
`HttpProofSource` asks a node's API for light blocks, tx proofs and state proofs; the node
assembles them from its store (`node/proofs.py`). Nothing here is trusted: the bundle
builder verifies everything it is given before handing a bundle out.
"""

from __future__ import annotations

from typing import Any

from seoulchain.errors import DecodeError, RemoteError
from seoulchain.light.bundle import (
    TxProof,
    light_block_from_json,
    state_proof_from_json,
    tx_proof_from_json,
)
from seoulchain.light.lightclient import LightBlock
from seoulchain.proofs import StateProof


class HttpProofSource:
    """Asks a node's API for light blocks and proofs (client: `NodeClient`)."""

    def __init__(self, client: Any):
        self.client = client

    def get_light_block(self, height: int) -> LightBlock:
        body = self.client.get_light_block(height)
        try:
            return light_block_from_json(body.get("light_block") if isinstance(body, dict)
                                         else None)
        except DecodeError as exc:
            raise RemoteError(f"the node sent a malformed light block {height}: {exc}") from exc

    def get_tx_proof(self, tx_hash: bytes) -> TxProof:
        body = self.client.get_tx_proof(tx_hash)
        try:
            return tx_proof_from_json(body["proof"], require_height(body))
        except (DecodeError, KeyError, TypeError) as exc:
            raise RemoteError(f"the node sent a malformed tx proof: {exc}") from exc

    def get_state_proof(self, namespace: str, key: bytes) -> StateProof:
        body = self.client.get_state_proof(namespace, key)
        try:
            return state_proof_from_json(body["proof"], require_height(body))
        except (DecodeError, KeyError, TypeError) as exc:
            raise RemoteError(f"the node sent a malformed state proof: {exc}") from exc


def require_height(body: Any) -> int:
    height = body.get("height") if isinstance(body, dict) else None
    if type(height) is not int or height < 1:
        raise DecodeError("the answer carries no height")
    return height
