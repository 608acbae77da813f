"""A node's home directory: config, genesis, keys and data, and how to create one.

    HOME/config.toml          node configuration (docs/operations.md)
    HOME/genesis.json         the chain's genesis
    HOME/keys/validator.key   the validator's Ed25519 key (mode 0600)
    HOME/keys/operator.key    the operator's client key; its agency is named in genesis
    HOME/keys/<name>.key      other client keys, e.g. one per further agency (mode 0600)
    HOME/keys/admin.token     the secret admin API requests carry (mode 0600)
    HOME/data/chain.sqlite    the block store
    HOME/node.lock            held by the one process running the node or writing its store
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError
from seoulchain.execution.platform import get_installed_versions
from seoulchain.execution.service import load_services
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.types import CHAIN_ID_PATTERN, Validator, ValidatorSet
from seoulchain.node.agencies import (
    OPERATOR_AGENCY_DEFAULT,
    check_agency_names,
    compute_agency_genesis,
    compute_default_threshold,
    create_agency_keys,
)
from seoulchain.node.agencies import OPERATOR_KEY_NAME as OPERATOR_KEY_NAME  # re-exported
from seoulchain.node.config import NodeConfig
from seoulchain.node.lock import HomeLock, acquire_home_lock

DEFAULT_CHAIN_ID = "seoul-local-1"
# Roles granted to the home's operator key in a freshly initialised chain.
OPERATOR_ROLES = ("notary.issuer",)
# 256 random bits, as hex: as strong as the Ed25519 keys beside it.
ADMIN_TOKEN_BYTES = 32


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

    def lock(self, purpose: str) -> HomeLock:
        """Take the home's exclusive lock for this process, or raise `HomeInUse` at once."""
        return acquire_home_lock(self.root, purpose)

    @property
    def admin_token_path(self) -> Path:
        return self.keys_dir / "admin.token"

    def key_path(self, name: str) -> Path:
        if not name.replace("-", "").replace("_", "").isalnum():
            raise LocalError(f"key name {name!r} may contain only letters, digits, - and _")
        return self.keys_dir / f"{name}.key"

    def is_initialised(self) -> bool:
        return self.genesis_path.exists() and self.config_path.exists()

    def require_initialised(self) -> None:
        if self.is_initialised():
            return
        if is_empty_or_missing(self.root):
            raise LocalError(f"{self.root} is not a node home; create one with: "
                             f"seoulchain init --home {self.root}")
        raise LocalError(f"{self.root} is not a node home: it has no {self.config_path.name} "
                         f"and {self.genesis_path.name} side by side; restore them from a "
                         f"backup, or pass another --home (`seoulchain init --home NEW` "
                         f"creates a new node in NEW)")

    def load_config(self) -> NodeConfig:
        return NodeConfig.load(self.config_path)

    def load_genesis(self) -> Genesis:
        return Genesis.load(self.genesis_path)

    def load_key(self, name: str) -> SigningKey:
        path = self.key_path(name)
        if not path.exists():
            raise LocalError(f"no key named {name!r} in {self.keys_dir}; create it with: "
                             f"seoulchain keys create {name} --home {self.root}")
        return SigningKey.load(path)

    def load_admin_token(self) -> str:
        """Return the node's admin token, refusing a token file that others can read."""
        path = self.admin_token_path
        try:
            mode = path.stat().st_mode & 0o777
            token = path.read_text().strip()
        except OSError as exc:
            raise LocalError(f"cannot read the admin token {path}: {exc.strerror}; the node "
                             f"creates it when it starts (seoulchain start --home "
                             f"{self.root})") from exc
        if mode & 0o077:
            raise LocalError(f"admin token {path} has mode {mode:o}; run: chmod 600 {path}")
        if not token:
            raise LocalError(f"admin token {path} is empty; delete it and restart the node")
        return token

    def ensure_admin_token(self) -> str:
        """Return the node's admin token, first creating it (mode 0600) if there is none."""
        path = self.admin_token_path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return self.load_admin_token()
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(ADMIN_TOKEN_BYTES) + "\n")
        return self.load_admin_token()


def is_empty_or_missing(path: Path) -> bool:
    """True when nothing is at `path`, or an empty directory is."""
    if not path.exists():
        return True
    return path.is_dir() and next(path.iterdir(), None) is None


def init_home(root: Path, chain_id: str = DEFAULT_CHAIN_ID, moniker: str = "validator-0",
              api_port: int = 26657,
              agencies: tuple[str, ...] = (OPERATOR_AGENCY_DEFAULT,)) -> Home:
    """Create a single-validator home in a new or empty directory, all at once or not at all.

    The home is written in a scratch directory beside `root` and renamed into place, so a
    failure part-way leaves nothing behind. Genesis names `agencies`, each with its own key:
    the first is keys/operator.key, the others keys/<agency>.key.
    """
    check_agency_names(agencies)
    if Home(root).is_initialised():
        raise LocalError(f"{root} already holds a node home; choose another --home")
    if not is_empty_or_missing(root):
        what = "a directory that is not empty" if root.is_dir() else "a file"
        raise LocalError(f"{root} is {what}; a new node home needs a new or empty "
                         f"directory: choose another --home")
    if not CHAIN_ID_PATTERN.fullmatch(chain_id):
        raise LocalError(f"chain id {chain_id!r} must be 1-50 letters, digits, '.', '_' or '-'")
    missing = [parent for parent in (root.absolute(), *root.absolute().parents)
               if not parent.exists()]
    root.absolute().parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.absolute().parent))
    try:
        write_home(Home(scratch), chain_id, moniker, api_port, agencies)
        scratch.replace(root)  # an empty directory at `root` is replaced too
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        for directory in missing[1:]:  # parents made above, innermost first
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    return Home(root)


def write_home(home: Home, chain_id: str, moniker: str, api_port: int,
               agencies: tuple[str, ...]) -> None:
    """Write a single-validator home's keys, genesis (naming its agencies, the first one's
    key keys/operator.key, and their roles) and config into an existing directory."""
    home.data_dir.mkdir(exist_ok=True)
    validator_key = SigningKey.generate()
    validator_key.save(home.validator_key_path)
    roles, named = compute_agency_genesis(create_agency_keys(home.keys_dir, agencies),
                                          OPERATOR_ROLES)
    home.ensure_admin_token()
    genesis = Genesis(
        chain_id=chain_id,
        genesis_time_ms=int(time.time() * 1000),
        validators=ValidatorSet.of([Validator(validator_key.public_key, 10, moniker)]),
        roles=roles,
        agencies=named,
        threshold=compute_default_threshold(len(named)),
        services=get_installed_versions(load_services()),
    )
    genesis.save(home.genesis_path)
    config = NodeConfig(moniker=moniker)
    config.api.port = api_port
    config.save(home.config_path)
