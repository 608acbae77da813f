"""The network benchmark under the CometBFT engine: the same load, through CometBFT's RPC.

The load generator is bench/loadgen.py's — same schedule, lanes, batches, follower, drain
and summary — with its transport swapped: a batch goes to its node as one JSON-RPC batch
of `broadcast_tx_sync` calls (each runs CheckTx, the admission the built-in engine's
`/v1/txs/batch` runs), blocks are read from `/block`, the node furthest ahead is found with
`/status`, and results come from `/block_results`. A tx's finality is the time from its
submission until the follower reads the block that holds it, as for the built-in engine:
CometBFT's blocks are final once committed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import tomli_w

from seoulchain.bench.loadgen import CODE_UNAVAILABLE, LoadConfig, LoadGenerator
from seoulchain.bench.network import BlockDigest, LocalNetwork
from seoulchain.crypto import sha256
from seoulchain.errors import LocalError
from seoulchain.execution.results import ResultCode
from seoulchain.node.abci import COMETBFT_DIR, get_rpc_url, prepare_cometbft_home

# An RPC answer from a loopback node under load; as the built-in network's status timeout.
RPC_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class CometBlock:
    """What the load follower needs of a CometBFT block: its height and transactions."""

    height: int
    txs: tuple[bytes, ...]


def read_block(answer: dict[str, Any]) -> CometBlock:
    block = answer["block"]
    return CometBlock(int(block["header"]["height"]),
                      tuple(base64.b64decode(tx) for tx in block["data"]["txs"] or ()))


class CometLoadGenerator(LoadGenerator):
    """bench/loadgen.py's load generator speaking CometBFT's RPC."""

    async def post_batch(self, node: int, body: bytes) -> list[dict[str, Any]] | None:
        """Send one JSON-RPC batch of `broadcast_tx_sync`; a refused call counts as refused."""
        from seoulchain.codec import decode

        calls = [{"jsonrpc": "2.0", "id": index, "method": "broadcast_tx_sync",
                  "params": {"tx": base64.b64encode(raw).decode()}}
                 for index, raw in enumerate(decode(body))]
        try:
            response = await self.clients[node].post("/", json=calls)
            replies = response.json()
        except (httpx.HTTPError, ValueError):
            return None
        if not isinstance(replies, list) or len(replies) != len(calls):
            return None  # the whole batch refused (an error object), as a node not answering
        replies.sort(key=lambda reply: reply.get("id", -1))
        return [{"code": int(reply["result"]["code"])} if "result" in reply
                else {"code": CODE_UNAVAILABLE} for reply in replies]

    async def get_block(self, node: int, height: int) -> CometBlock | None:  # type: ignore[override]
        """Return block `height` from `node`, or None if it has none yet or did not answer."""
        try:
            response = await self.clients[node].get(
                "/block", params={"height": str(height)},
                timeout=self.config.request_timeout_s / 4)
            answer = response.json()
        except (httpx.HTTPError, ValueError):
            self.follow.node = (node + 1) % len(self.clients)
            self.follow.switches += 1
            return None
        if "result" not in answer:
            return None  # not decided yet
        return read_block(answer["result"])

    async def choose_node(self) -> None:
        """Follow the node that is furthest ahead."""
        best, best_height = self.follow.node, -1
        for node, client in enumerate(self.clients):
            try:
                response = await client.get("/status", timeout=1.0)
                height = int(response.json()["result"]["sync_info"]["latest_block_height"])
            except (httpx.HTTPError, ValueError, KeyError):
                continue
            if height > best_height:
                best, best_height = node, height
        if best != self.follow.node:
            self.follow.node = best
            self.follow.switches += 1


class CometNetwork(LocalNetwork):
    """A devnet's validators started with `--engine cometbft`, observed through CometBFT."""

    engine = "cometbft"

    @property
    def rpc_urls(self) -> list[str]:
        """CometBFT's RPC URL of each node (its homes written by `prepare`); `urls` are the
        seoulchain APIs beside them."""
        urls = [get_rpc_url(node.home) for node in self.nodes]
        if None in urls:
            raise LocalError("the CometBFT homes are not written yet (bench prepare)")
        return [url for url in urls if url is not None]

    def call(self, index: int, method: str, **params: str) -> Any:
        reply = httpx.get(f"{self.rpc_urls[index]}/{method}", params=params,
                          timeout=RPC_TIMEOUT_S).json()
        return reply["result"]

    def get_height(self, index: int) -> int | None:
        if not self.nodes[index].is_running() or self.nodes[index].paused:
            return None
        try:
            return int(self.call(index, "status")["sync_info"]["latest_block_height"])
        except (httpx.HTTPError, ValueError, KeyError):
            return None

    def get_block_digest(self, index: int, height: int) -> BlockDigest:
        answer = self.call(index, "block", height=str(height))
        block = read_block(answer)
        return BlockDigest(answer["block_id"]["hash"], answer["block"]["header"]["app_hash"],
                           frozenset(sha256(raw).hex() for raw in block.txs))



def prepare(network: LocalNetwork, timeout_commit_ms: int | None, batch_txs: int) -> None:
    """Write every node's CometBFT home now: JSON-RPC batches as large as the load's (CometBFT
    allows 10 calls by default), and CometBFT's timeout_commit if given."""
    for node in network.nodes:
        path = prepare_cometbft_home(node.home) / "config" / "config.toml"
        settings = tomllib.loads(path.read_text())
        settings["rpc"]["max_request_batch_size"] = max(
            batch_txs, settings["rpc"].get("max_request_batch_size", 0))
        if timeout_commit_ms is not None:
            settings["consensus"]["timeout_commit"] = f"{timeout_commit_ms}ms"
        path.write_text(tomli_w.dumps(settings))


def get_timeout_commit_ms(network: LocalNetwork) -> int:
    """Return CometBFT's timeout_commit (its pause after a commit) of node 0, in ms."""
    path = network.nodes[0].home.root / COMETBFT_DIR / "config" / "config.toml"
    return parse_duration_ms(tomllib.loads(path.read_text())["consensus"]["timeout_commit"])


def run_load(network: LocalNetwork, txs: Sequence[bytes], out: Path, config: LoadConfig
             ) -> dict[str, Any]:
    """Offer `txs` through CometBFT's RPC (in this process) and write the report to `out`
    (`config.urls`, the seoulchain APIs, are replaced by the RPC URLs beside them)."""
    assert isinstance(network, CometNetwork)
    config = replace(config, urls=network.rpc_urls)
    report = asyncio.run(CometLoadGenerator(config, txs).run())
    out.write_text(json.dumps(report) + "\n")
    return report


def count_results_not_ok(network: LocalNetwork, first_height: int, last_height: int
                         ) -> dict[str, int]:
    """Return how many txs of heights first..last executed with each result but OK."""
    assert isinstance(network, CometNetwork)
    counts: dict[str, int] = {}
    for height in range(first_height, last_height + 1):
        results = network.call(0, "block_results", height=str(height))["txs_results"] or ()
        for result in results:
            code = int(result.get("code", 0))
            if code != ResultCode.OK:
                name = ResultCode(code).name
                counts[name] = counts.get(name, 0) + 1
    return counts


def parse_duration_ms(text: str) -> int:
    """Return a Go duration of CometBFT's config ("1s", "500ms") in milliseconds."""
    if text.endswith("ms"):
        return int(float(text[:-2]))
    if text.endswith("s"):
        return int(float(text[:-1]) * 1000)
    raise ValueError(f"unsupported duration {text!r}")


class CometEngine:
    """The CometBFT engine as `run_network_bench` drives it (bench/network.py `OtherEngine`)."""

    name = "cometbft"
    network_class = CometNetwork

    prepare = staticmethod(prepare)
    run_load = staticmethod(run_load)
    count_results_not_ok = staticmethod(count_results_not_ok)
    get_timeout_commit_ms = staticmethod(get_timeout_commit_ms)


COMETBFT = CometEngine()
