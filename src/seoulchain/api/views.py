"""JSON views of blocks, transactions and results, shared by the API and the CLI."""

from __future__ import annotations

from typing import Any

from seoulchain.codec.jsonview import to_jsonable
from seoulchain.crypto import sha256
from seoulchain.execution.results import TxResult
from seoulchain.ledger.types import Block, BlockHeader, Commit


def header_view(header: BlockHeader) -> dict[str, Any]:
    return {
        "version": header.version, "chain_id": header.chain_id, "height": header.height,
        "time_ms": header.time_ms, "prev_block_id": header.prev_block_id.hex(),
        "tx_root": header.tx_root.hex(), "log_root": header.log_root.hex(),
        "log_size": header.log_size, "state_root": header.state_root.hex(),
        "results_root": header.results_root.hex(), "evidence_root": header.evidence_root.hex(),
        "validators_hash": header.validators_hash.hex(),
        "next_validators_hash": header.next_validators_hash.hex(),
        "proposer": header.proposer.hex(), "last_commit_hash": header.last_commit_hash.hex(),
    }


def commit_view(commit: Commit | None) -> dict[str, Any] | None:
    if commit is None:
        return None
    return {"height": commit.height, "round": commit.round, "block_id": commit.block_id.hex(),
            "signatures": [{"validator": sig.validator.hex(), "signature": sig.signature.hex()}
                           for sig in commit.signatures]}


def block_view(block: Block, commit: Commit | None) -> dict[str, Any]:
    return {
        "block_id": block.block_id().hex(),
        "header": header_view(block.header),
        "txs": [sha256(raw).hex() for raw in block.txs],
        "last_commit": commit_view(block.last_commit),
        "commit": commit_view(commit),
    }


def result_view(result: TxResult) -> dict[str, Any]:
    return {
        "code": int(result.code), "code_name": result.code.name, "log": result.log,
        "events": [{"kind": event.kind, "attributes": to_jsonable(event.attributes)}
                   for event in result.events],
    }
