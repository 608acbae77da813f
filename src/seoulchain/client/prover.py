"""Proof pieces from a node's HTTP API, for bundles built away from the node.

Theory of operation: `light/bundle.py` builds a bundle from any `ProofSource`.
`HttpProofSource` asks a node's API for light blocks, tx proofs and state proofs; the node
assembles them from its store (`node/proofs.py`). A node run under CometBFT answers
`/v1/light/{height}` with CometBFT's signed header instead (`cometbft_light_block`), and
`open_proof_source` then returns an `HttpCometProofSource`, which also reads seoulchain
headers and waits, polling, for the signed header h + 1 that certifies height h. Nothing
here is trusted: the bundle builder verifies everything it is given before handing a
bundle out.
"""

from __future__ import annotations

import time
from typing import Any

from seoulchain.errors import DecodeError, LocalError, RemoteError
from seoulchain.ledger.types import BLOCK_BYTES_MAX, Block, BlockHeader
from seoulchain.light import cometbft
from seoulchain.light.bundle import (
    TxProof,
    light_block_from_json,
    state_proof_from_json,
    tx_proof_from_json,
)
from seoulchain.light.lightclient import LightBlock
from seoulchain.node.abci import NEXT_HEADER_POLL_S, NEXT_HEADER_WAIT_S
from seoulchain.proofs import StateProof


class HttpProofSource:
    """Asks a node's API for light blocks and proofs (client: `NodeClient`)."""

    def __init__(self, client: Any):
        self.client = client

    def get_light_block(self, height: int) -> LightBlock:
        body = self.client.get_light_block(height)
        if isinstance(body, dict) and "cometbft_light_block" in body:
            raise LocalError("the node runs under CometBFT: its light blocks are CometBFT's "
                             "signed headers, not seoulchain light blocks (bundles from it "
                             "use them; state sync is CometBFT's own under that engine)")
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


# A block's encoding: its transactions (at most BLOCK_BYTES_MAX) and a header and framing
# far smaller than they may be.
BLOCK_ENCODING_BYTES_MAX = 2 * BLOCK_BYTES_MAX


class HttpCometProofSource(HttpProofSource):
    """Asks a node run under CometBFT for its signed headers and seoulchain headers."""

    def get_comet_light_block(self, height: int) -> cometbft.CometLightBlock:
        deadline = time.monotonic() + NEXT_HEADER_WAIT_S
        path = f"/v1/light/{height}"
        while (response := self.client.request("GET", path)).status_code == 404:
            if time.monotonic() > deadline:
                raise RemoteError(f"the node's CometBFT has not decided height {height} "
                                  f"within {NEXT_HEADER_WAIT_S:.0f} s")
            time.sleep(NEXT_HEADER_POLL_S)
        if response.status_code >= 400:
            raise RemoteError(f"the node did not serve CometBFT's signed header {height}: "
                              f"{response.status_code} {response.text[:200]}")
        try:
            body = response.json()
            block = cometbft.light_block_from_json(body["cometbft_light_block"],
                                                   f"signed header {height}")
        except (DecodeError, KeyError, TypeError, ValueError) as exc:
            raise RemoteError(f"the node sent a malformed signed header {height}: "
                              f"{exc}") from exc
        if block.height != height:
            raise RemoteError(f"the node sent signed header {block.height} for {height}")
        return block

    def get_header(self, height: int) -> BlockHeader:
        data = self.client.get_bytes(f"/v1/blocks/{height}?format=cbor",
                                     BLOCK_ENCODING_BYTES_MAX)
        try:
            block = Block.decode(data)
        except DecodeError as exc:
            raise RemoteError(f"the node sent a malformed block {height}: {exc}") from exc
        if block.height != height:
            raise RemoteError(f"the node sent block {block.height} for {height}")
        return block.header


def open_proof_source(client: Any) -> HttpProofSource:
    """Return the proof source for the node behind `client`: CometBFT's signed headers if
    its chain runs under CometBFT (its status says so), else seoulchain light blocks."""
    if client.get_status().get("engine") == "cometbft":
        return HttpCometProofSource(client)
    return HttpProofSource(client)
