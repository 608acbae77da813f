"""A four-agency chain (k = 3) run in-process, and helpers to propose and approve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seoulchain.crypto import SigningKey
from seoulchain.execution.platform import get_installed_versions
from seoulchain.execution.results import TxResult
from seoulchain.execution.service import load_services
from seoulchain.ledger.genesis import Agency, Genesis
from seoulchain.ledger.types import Validator, ValidatorSet
from tests.conftest import CHAIN_ID, GENESIS_TIME_MS, LocalChain, make_key

AGENCY_NAMES = ("jongno-gu", "jung-gu", "yongsan-gu", "mapo-gu")
# Periods in these tests: long enough to gather approvals, short enough to run out.
DEADLINE_BLOCKS = 10


def make_agency_keys() -> list[SigningKey]:
    return [make_key(10 + index) for index in range(len(AGENCY_NAMES))]


def make_gov_chain(tmp_path: Path, threshold: int = 3) -> LocalChain:
    """A one-validator chain whose four agencies govern with k = `threshold`."""
    validator = make_key(1)
    keys = make_agency_keys()
    genesis = Genesis(CHAIN_ID, GENESIS_TIME_MS,
                      ValidatorSet.of([Validator(validator.public_key, 10, "v0")]),
                      {"notary.issuer": (keys[0].public_key,)},
                      tuple(Agency(name, key.public_key)
                            for name, key in zip(AGENCY_NAMES, keys, strict=True)),
                      threshold=threshold,
                      services=get_installed_versions(load_services()))
    return LocalChain(tmp_path / "chain.sqlite", genesis, validator, keys[0])


def send(chain: LocalChain, key: SigningKey, method: str, **args: Any) -> TxResult:
    """Commit one gov transaction signed by `key` and return its result."""
    tx = chain.make_tx(key, service="gov", method=method, args=args)
    return chain.commit(tx).execution.results[0]


def propose(chain: LocalChain, key: SigningKey, kind: str, deadline_blocks: int = DEADLINE_BLOCKS,
            **fields: Any) -> TxResult:
    return send(chain, key, "propose", kind=kind,
                deadline_height=chain.engine.height + deadline_blocks, **fields)


def latest_id(chain: LocalChain) -> int:
    return chain.engine.query("gov", "proposals", {"limit": 1})[0]["id"]


def get_proposal(chain: LocalChain, proposal_id: int) -> dict[str, Any]:
    return chain.engine.query("gov", "proposal", {"proposal": proposal_id})


def event_kinds(result: TxResult) -> list[str]:
    return [event.kind for event in result.events]
