"""The agencies a new chain names in its genesis, each with its own client key.

A home (`init`, `demo`) or a devnet names its agencies in genesis (`agencies`, see
docs/spec/ledger.md §16) so that `verify` and `query` can say which agency signed. Each
agency gets its own key in keys/: the first agency is the operator's own and its key is
keys/operator.key (the CLI's default signing key); every other agency's key is
keys/<agency>.key. Every agency holds `notary.issuer`; the first also holds the operator's
roles. The agencies are the first members of the `gov` service, which changes validators,
roles and parameters when k of them approve (`compute_default_threshold`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError
from seoulchain.ledger.genesis import AGENCY_NAME_PATTERN, Agency, Genesis

OPERATOR_KEY_NAME = "operator"
# Roles of every agency genesis names (the operator's own agency adds its operator roles).
AGENCY_ROLES = ("notary.issuer",)
# The agency name `init` gives the operator key unless told another (`--agency`).
OPERATOR_AGENCY_DEFAULT = "operator"
# The demo city's agencies, each with its own key; the first, the city hall, runs the chain.
DEMO_AGENCIES = ("city-hall", "mapo-gu", "jongno-gu", "gangnam-gu")


def compute_default_threshold(agencies: int) -> int:
    """Return the k of n a new chain's governance starts with: more than two thirds of the
    agencies, as BFT asks of validators (1 of 1, 3 of 4, 5 of 7)."""
    return agencies - (agencies - 1) // 3


def check_agency_names(agencies: Sequence[str]) -> None:
    """Raise `LocalError` unless the names are distinct, at least one, and well formed."""
    for name in agencies:
        if not AGENCY_NAME_PATTERN.fullmatch(name):
            raise LocalError(f"agency name {name!r} must be 1-64 lower-case letters, digits "
                             "or '-', starting with a letter")
    if not agencies or len(set(agencies)) != len(agencies):
        raise LocalError(f"agency names must be distinct, at least one: {list(agencies)}")


def create_agency_keys(keys_dir: Path, agencies: Sequence[str]) -> dict[str, SigningKey]:
    """Write one new key per agency: the first as operator.key, the others as <agency>.key."""
    check_agency_names(agencies)
    keys = {name: SigningKey.generate() for name in agencies}
    for index, (name, key) in enumerate(keys.items()):
        key.save(keys_dir / f"{OPERATOR_KEY_NAME if index == 0 else name}.key")
    return keys


def compute_agency_genesis(keys: dict[str, SigningKey], operator_roles: Sequence[str]
                           ) -> tuple[dict[str, tuple[bytes, ...]], tuple[Agency, ...]]:
    """Return genesis roles and agencies: all issue; the first holds `operator_roles` too."""
    publics = [key.public_key for key in keys.values()]
    roles = {role: tuple(sorted(publics)) for role in AGENCY_ROLES}
    for role in operator_roles:
        roles[role] = tuple(sorted({*roles.get(role, ()), publics[0]}))
    return roles, tuple(Agency(name, key.public_key) for name, key in keys.items())


def load_agency_keys(keys_dir: Path, genesis: Genesis) -> dict[str, SigningKey]:
    """Return the keys in `keys_dir` that genesis names as agencies, by agency name."""
    found: dict[str, SigningKey] = {}
    for path in sorted(keys_dir.glob("*.key")):
        key = SigningKey.load(path)
        name = genesis.get_agency_name(key.public_key)
        if name is not None:
            found[name] = key
    return found
