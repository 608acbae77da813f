"""A one-agency chain (k = 1) whose agency mints mileage points and registers merchants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seoulchain.crypto import SigningKey
from seoulchain.execution.platform import get_installed_versions
from seoulchain.execution.results import TxResult
from seoulchain.execution.service import load_services
from seoulchain.ledger.genesis import Agency, Genesis
from seoulchain.ledger.types import Validator, ValidatorSet
from seoulchain.services.mileage import MINTER_ROLE, REGISTRAR_ROLE
from tests.conftest import CHAIN_ID, GENESIS_TIME_MS, LocalChain, make_key

# Proposals pass in the block that proposes them (k = 1); this only has to be in the future.
DEADLINE_BLOCKS = 10


def make_mileage_chain(tmp_path: Path) -> LocalChain:
    """A one-validator chain: agency key 2 mints, registers merchants and governs alone."""
    validator, agency = make_key(1), make_key(2)
    genesis = Genesis(CHAIN_ID, GENESIS_TIME_MS,
                      ValidatorSet.of([Validator(validator.public_key, 10, "v0")]),
                      {"notary.issuer": (agency.public_key,),
                       MINTER_ROLE: (agency.public_key,),
                       REGISTRAR_ROLE: (agency.public_key,)},
                      (Agency("city-hall", agency.public_key),), threshold=1,
                      services=get_installed_versions(load_services()))
    return LocalChain(tmp_path / "chain.sqlite", genesis, validator, agency)


def send(chain: LocalChain, key: SigningKey | None, method: str, **args: Any) -> TxResult:
    """Commit one mileage transaction signed by `key` (default: the agency)."""
    tx = chain.make_tx(key, service="mileage", method=method, args=args)
    return chain.commit(tx).execution.results[0]


def set_param(chain: LocalChain, name: str, value: int) -> None:
    """Set a chain parameter by a governance proposal that passes at once (k = 1)."""
    tx = chain.make_tx(service="gov", method="propose", args={
        "kind": "set_param", "param": name, "value": value,
        "deadline_height": chain.engine.height + DEADLINE_BLOCKS})
    result = chain.commit(tx).execution.results[0]
    assert result.code.name == "OK", result.log


def ask(chain: LocalChain, name: str, **args: Any) -> Any:
    """Run a mileage query, keys given as bytes."""
    return chain.engine.query("mileage", name, {key: value.hex() if isinstance(value, bytes)
                                                else value for key, value in args.items()})
