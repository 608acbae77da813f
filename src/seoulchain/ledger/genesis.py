"""Genesis: the chain's first validator set, initial roles, and chain parameters.

The genesis file is JSON for people to read and edit; its hash is SHA-256 of the
deterministic CBOR of its canonical value, so every node and auditor agrees on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seoulchain.codec import encode
from seoulchain.crypto import PUBLIC_KEY_BYTES, sha256
from seoulchain.errors import DecodeError, LocalError
from seoulchain.ledger.types import (
    CHAIN_ID_PATTERN,
    FORMAT_VERSION,
    Validator,
    ValidatorSet,
)

# Role names look like "service.role", e.g. "notary.issuer".
ROLE_CHARS_MAX = 64
GENESIS_BYTES_MAX = 4 * 1024 * 1024


@dataclass(frozen=True)
class Genesis:
    """The agreed starting point of a chain."""

    chain_id: str
    genesis_time_ms: int
    validators: ValidatorSet
    roles: dict[str, tuple[bytes, ...]] = field(default_factory=dict)
    version: int = FORMAT_VERSION

    def to_cbor(self) -> list[Any]:
        roles = {name: list(keys) for name, keys in sorted(self.roles.items())}
        return [self.version, self.chain_id, self.genesis_time_ms, self.validators.to_cbor(),
                roles]

    def hash(self) -> bytes:
        """Return the genesis hash that pins a node, an auditor or a light client to a chain."""
        return sha256(encode(self.to_cbor()))

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "chain_id": self.chain_id,
            "genesis_time_ms": self.genesis_time_ms,
            "validators": [
                {"public_key": validator.public_key.hex(), "power": validator.power,
                 "name": validator.name}
                for validator in self.validators.validators
            ],
            "roles": {name: [key.hex() for key in keys]
                      for name, keys in sorted(self.roles.items())},
        }

    @classmethod
    def from_json(cls, data: Any) -> Genesis:
        """Parse a genesis JSON value, raising `DecodeError` naming the bad field."""
        try:
            if data.get("version", FORMAT_VERSION) != FORMAT_VERSION:
                raise DecodeError(f"genesis version {data['version']!r} is not supported")
            chain_id = data["chain_id"]
            if not isinstance(chain_id, str) or not CHAIN_ID_PATTERN.fullmatch(chain_id):
                raise DecodeError(f"genesis chain_id {chain_id!r} is not well formed")
            time_ms = data["genesis_time_ms"]
            if not isinstance(time_ms, int) or isinstance(time_ms, bool) or time_ms < 0:
                raise DecodeError("genesis_time_ms must be a non-negative integer")
            validators = ValidatorSet.of([
                Validator(parse_key(item["public_key"]), int(item["power"]),
                          str(item.get("name", "")))
                for item in data["validators"]
            ])
            for validator in validators.validators:
                if validator.power < 1:
                    raise DecodeError("validator power must be >= 1")
            roles = {}
            for name, keys in dict(data.get("roles", {})).items():
                if not isinstance(name, str) or not 0 < len(name) <= ROLE_CHARS_MAX:
                    raise DecodeError(f"role name {name!r} is not well formed")
                roles[name] = tuple(sorted({parse_key(key) for key in keys}))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DecodeError(f"genesis is malformed: {exc!r}") from exc
        return cls(chain_id, time_ms, validators, roles)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Genesis:
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise LocalError(f"cannot read genesis file {path}: {exc.strerror}") from exc
        if len(text) > GENESIS_BYTES_MAX:
            raise DecodeError(f"genesis file {path} is larger than {GENESIS_BYTES_MAX} bytes")
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DecodeError(f"genesis file {path} is not valid JSON: {exc}") from exc
        return cls.from_json(data)


def parse_key(text: Any) -> bytes:
    """Parse a hex-encoded Ed25519 public key."""
    if not isinstance(text, str):
        raise DecodeError("a public key must be a hex string")
    try:
        key = bytes.fromhex(text)
    except ValueError as exc:
        raise DecodeError(f"public key {text!r} is not hex") from exc
    if len(key) != PUBLIC_KEY_BYTES:
        raise DecodeError(f"public key {text!r} is not {PUBLIC_KEY_BYTES} bytes")
    return key
