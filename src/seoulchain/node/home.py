"""A node's home directory: config, genesis, keys and data, and how to create one.

    HOME/config.toml          node configuration (docs/operations.md)
    HOME/genesis.json         the chain's genesis
    HOME/keys/validator.key   the validator's Ed25519 key (mode 0600)
    HOME/keys/<name>.key      client keys for signing transactions (mode 0600)
    HOME/data/chain.sqlite    the block store
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.types import CHAIN_ID_PATTERN, Validator, ValidatorSet
from seoulchain.node.config import NodeConfig

DEFAULT_CHAIN_ID = "seoul-local-1"
OPERATOR_KEY_NAME = "operator"
# Roles granted to the home's operator key in a freshly initialised chain.
OPERATOR_ROLES = ("notary.issuer",)


@dataclass(frozen=True)
class Home:
    """Paths inside a node home directory."""

    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / "config.toml"

    @property
    def genesis_path(self) -> Path:
        return self.root / "genesis.json"

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def validator_key_path(self) -> Path:
        return self.keys_dir / "validator.key"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def store_path(self) -> Path:
        return self.data_dir / "chain.sqlite"

    def key_path(self, name: str) -> Path:
        if not name.replace("-", "").replace("_", "").isalnum():
            raise LocalError(f"key name {name!r} may contain only letters, digits, - and _")
        return self.keys_dir / f"{name}.key"

    def is_initialised(self) -> bool:
        return self.genesis_path.exists() and self.config_path.exists()

    def require_initialised(self) -> None:
        if not self.is_initialised():
            raise LocalError(f"{self.root} is not a node home; create one with: "
                             f"seoulchain init --home {self.root}")

    def load_config(self) -> NodeConfig:
        return NodeConfig.load(self.config_path)

    def load_genesis(self) -> Genesis:
        return Genesis.load(self.genesis_path)

    def load_key(self, name: str) -> SigningKey:
        path = self.key_path(name)
        if not path.exists():
            raise LocalError(f"no key named {name!r} in {self.keys_dir}; create it with: "
                             f"seoulchain keys new {name} --home {self.root}")
        return SigningKey.load(path)


def init_home(root: Path, chain_id: str = DEFAULT_CHAIN_ID, moniker: str = "validator-0",
              api_port: int = 26657) -> Home:
    """Create a single-validator home: keys, genesis granting the operator key its roles, config."""
    home = Home(root)
    if home.is_initialised():
        raise LocalError(f"{root} already holds a node home; choose another --home")
    if not CHAIN_ID_PATTERN.fullmatch(chain_id):
        raise LocalError(f"chain id {chain_id!r} must be 1-50 letters, digits, '.', '_' or '-'")
    root.mkdir(parents=True, exist_ok=True)
    home.data_dir.mkdir(exist_ok=True)
    validator_key = SigningKey.generate()
    validator_key.save(home.validator_key_path)
    operator_key = SigningKey.generate()
    operator_key.save(home.key_path(OPERATOR_KEY_NAME))
    genesis = Genesis(
        chain_id=chain_id,
        genesis_time_ms=int(time.time() * 1000),
        validators=ValidatorSet.of([Validator(validator_key.public_key, 10, moniker)]),
        roles={role: (operator_key.public_key,) for role in OPERATOR_ROLES},
    )
    genesis.save(home.genesis_path)
    config = NodeConfig(moniker=moniker)
    config.api.port = api_port
    config.save(home.config_path)
    return home
