"""Genesis: the chain's first validator set, initial roles, named agencies, chain parameters.

The genesis file is JSON for people to read and edit; its hash is SHA-256 of the
deterministic CBOR of its canonical value, so every node and auditor agrees on it. The
layout of both, byte for byte, is docs/spec/ledger.md §16.

Versions: a version 1 genesis has no agencies (files written before agencies existed keep
their hash); version 2 adds `agencies`, an ordered, versioned list of the agencies that
take part (a name and a client public key each), which verifiers use to name signers and
which a governance service can take as its first members, and `services`, the service
names and versions the chain runs (a node whose installed services differ refuses to start).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seoulchain.codec import encode
from seoulchain.crypto import PUBLIC_KEY_BYTES, sha256
from seoulchain.errors import DecodeError, LocalError
from seoulchain.ledger.types import (
    CHAIN_ID_PATTERN,
    VALIDATOR_NAME_CHARS_MAX,
    Validator,
    ValidatorSet,
)

# Genesis format versions: 1 without agencies, 2 with them (docs/spec/ledger.md §16).
GENESIS_VERSION_V1 = 1
GENESIS_VERSION = 2
GENESIS_VERSIONS = (GENESIS_VERSION_V1, GENESIS_VERSION)
# Version of the agencies list's own layout (each member is [name, public_key]).
AGENCIES_VERSION = 1
# Role names look like "service.role", e.g. "notary.issuer".
ROLE_CHARS_MAX = 64
GENESIS_BYTES_MAX = 4 * 1024 * 1024
# Seoul has 25 districts and a few hundred city offices; 1024 agencies leave room and keep
# a genesis file near 100 KiB.
AGENCIES_MAX = 1024
# An agency name is a short lower-case identifier, shown beside its key: "mapo-gu".
AGENCY_NAME_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,63}")
# JSON integers in a genesis are unsigned 64-bit, as in CBOR (docs/spec/ledger.md §5).
UINT64_MAX = 2**64 - 1
V1_FIELDS = frozenset({"version", "chain_id", "genesis_time_ms", "validators", "roles"})
V2_FIELDS = V1_FIELDS | {"agencies", "governance", "services"}
# Services a genesis pins; a city runs a handful, and each is a package every node installs.
SERVICES_MAX = 64
# A service name is a lower-case identifier, as its state namespace and role prefix: "notary".
SERVICE_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}")
# A service version is a semantic version, "MAJOR.MINOR.PATCH" with an optional suffix.
SERVICE_VERSION_PATTERN = re.compile(r"(0|[1-9][0-9]{0,8})(\.(0|[1-9][0-9]{0,8})){2}"
                                     r"([-+][0-9A-Za-z.-]{1,32})?")


@dataclass(frozen=True, slots=True)
class Agency:
    """An agency named in genesis: its name and the public key it signs transactions with."""

    name: str
    public_key: bytes

    def to_cbor(self) -> list[Any]:
        return [self.name, self.public_key]


@dataclass(frozen=True)
class Genesis:
    """The agreed starting point of a chain."""

    chain_id: str
    genesis_time_ms: int
    validators: ValidatorSet
    roles: dict[str, tuple[bytes, ...]] = field(default_factory=dict)
    agencies: tuple[Agency, ...] = ()
    version: int = GENESIS_VERSION
    # k of the agencies' k-of-n governance (the `gov` service); 0 when there are no agencies.
    threshold: int = 0
    # The services the chain runs, name -> version; empty pins nothing (version 1 files).
    services: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.version not in GENESIS_VERSIONS:
            raise DecodeError(f"genesis version {self.version!r} is not supported "
                              f"(this software reads {', '.join(map(str, GENESIS_VERSIONS))})")
        if self.version == GENESIS_VERSION_V1 and self.agencies:
            raise DecodeError("a version 1 genesis has no agencies; use version 2")
        if self.version == GENESIS_VERSION_V1 and self.services:
            raise DecodeError("a version 1 genesis pins no services; use version 2")
        check_agencies(self.agencies)
        check_services(self.services)
        check_threshold(self.threshold, len(self.agencies))

    def to_cbor(self) -> list[Any]:
        """Return the value whose CBOR is hashed: roles sorted, members sorted and unique."""
        roles = {name: sorted(set(keys)) for name, keys in sorted(self.roles.items())}
        value = [self.version, self.chain_id, self.genesis_time_ms, self.validators.to_cbor(),
                 roles]
        if self.version >= GENESIS_VERSION:
            value.append([AGENCIES_VERSION, [agency.to_cbor() for agency in self.agencies]])
            if self.threshold:
                value.append({"threshold": self.threshold})
            if self.services:
                value.append({"services": dict(sorted(self.services.items()))})
        return value

    def hash(self) -> bytes:
        """Return the genesis hash that pins a node, an auditor or a light client to a chain."""
        return sha256(encode(self.to_cbor()))

    def get_agency_name(self, public_key: bytes) -> str | None:
        """Return the name genesis gives the agency signing with `public_key`, if any."""
        for agency in self.agencies:
            if agency.public_key == public_key:
                return agency.name
        return None

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "version": self.version,
            "chain_id": self.chain_id,
            "genesis_time_ms": self.genesis_time_ms,
            "validators": [
                {"public_key": validator.public_key.hex(), "power": validator.power,
                 "name": validator.name}
                for validator in self.validators.validators
            ],
            "roles": {name: [key.hex() for key in sorted(set(keys))]
                      for name, keys in sorted(self.roles.items())},
        }
        if self.version >= GENESIS_VERSION:
            value["agencies"] = {"version": AGENCIES_VERSION, "members": [
                {"name": agency.name, "public_key": agency.public_key.hex()}
                for agency in self.agencies]}
            if self.threshold:
                value["governance"] = {"threshold": self.threshold}
            if self.services:
                value["services"] = dict(sorted(self.services.items()))
        return value

    @classmethod
    def from_json(cls, data: Any) -> Genesis:
        """Parse a genesis JSON value, raising `DecodeError` naming the bad field."""
        try:
            version = data.get("version", GENESIS_VERSION_V1)
            if type(version) is not int or version not in GENESIS_VERSIONS:
                raise DecodeError(f"genesis version {version!r} is not supported (this "
                                  f"software reads {', '.join(map(str, GENESIS_VERSIONS))})")
            allowed = V1_FIELDS if version == GENESIS_VERSION_V1 else V2_FIELDS
            unknown = sorted(set(data) - allowed)
            if unknown:
                raise DecodeError(f"genesis version {version} has no field(s) {unknown}")
            chain_id = data["chain_id"]
            if not isinstance(chain_id, str) or not CHAIN_ID_PATTERN.fullmatch(chain_id):
                raise DecodeError(f"genesis chain_id {chain_id!r} is not well formed")
            time_ms = parse_uint(data["genesis_time_ms"], "genesis_time_ms")
            validators = ValidatorSet.of([parse_validator(item)
                                          for item in require_list(data["validators"])])
            roles = parse_roles(data.get("roles", {}))
            agencies = parse_agencies(data.get("agencies", {"version": AGENCIES_VERSION,
                                                            "members": []}))
            threshold = parse_governance(data.get("governance", {"threshold": 0}))
            services = parse_services(data.get("services", {}))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DecodeError(f"genesis is malformed: {exc!r}") from exc
        return cls(chain_id, time_ms, validators, roles, agencies, version, threshold, services)

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


def check_agencies(agencies: tuple[Agency, ...]) -> None:
    """Raise `DecodeError` unless the agencies are few, well named, and each name and key once."""
    if len(agencies) > AGENCIES_MAX:
        raise DecodeError(f"genesis names at most {AGENCIES_MAX} agencies")
    for agency in agencies:
        if not isinstance(agency.name, str) or not AGENCY_NAME_PATTERN.fullmatch(agency.name):
            raise DecodeError(f"agency name {agency.name!r} must be 1-64 lower-case letters, "
                              "digits or '-', starting with a letter")
        if not isinstance(agency.public_key, bytes) or len(agency.public_key) != PUBLIC_KEY_BYTES:
            raise DecodeError(f"agency {agency.name!r} needs a {PUBLIC_KEY_BYTES}-byte key")
    if len({agency.name for agency in agencies}) != len(agencies):
        raise DecodeError("two agencies in genesis have the same name")
    if len({agency.public_key for agency in agencies}) != len(agencies):
        raise DecodeError("two agencies in genesis have the same public key")


def check_threshold(threshold: int, agencies: int) -> None:
    """Raise `DecodeError` unless 1 <= threshold <= agencies (0 when there are none)."""
    if type(threshold) is not int:
        raise DecodeError("the governance threshold must be an integer")
    if agencies == 0 and threshold != 0:
        raise DecodeError("a governance threshold needs agencies to count")
    if agencies and not 1 <= threshold <= agencies:
        raise DecodeError(f"the governance threshold must be from 1 to {agencies} (the number "
                          f"of agencies), not {threshold}")


def parse_governance(value: Any) -> int:
    """Return the threshold of a `{"threshold": k}` governance object."""
    if not isinstance(value, dict) or set(value) != {"threshold"}:
        raise DecodeError('genesis governance must be {"threshold": k}')
    return parse_uint(value["threshold"], "governance threshold")


def check_services(services: dict[str, str]) -> None:
    """Raise `DecodeError` unless each pinned service has a well-formed name and version."""
    if len(services) > SERVICES_MAX:
        raise DecodeError(f"genesis pins at most {SERVICES_MAX} services")
    for name, version in services.items():
        if not isinstance(name, str) or not SERVICE_NAME_PATTERN.fullmatch(name):
            raise DecodeError(f"service name {name!r} must be 1-32 lower-case letters, digits "
                              "or '_', starting with a letter")
        if not isinstance(version, str) or not SERVICE_VERSION_PATTERN.fullmatch(version):
            raise DecodeError(f"service {name!r} version {version!r} is not a semantic version "
                              "such as \"1.0.0\"")


def parse_services(value: Any) -> dict[str, str]:
    """Return the `{"name": "version", ...}` services object (checked by `check_services`)."""
    if not isinstance(value, dict):
        raise DecodeError('genesis services must be an object of name -> version, '
                          'e.g. {"notary": "1.0.0"}')
    return dict(value)


def require_list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise DecodeError("genesis validators must be a list")
    return value


def parse_uint(value: Any, name: str, minimum: int = 0) -> int:
    """Return a JSON integer from `minimum` to 2^64 - 1, or raise naming the field."""
    if type(value) is not int or not minimum <= value <= UINT64_MAX:
        raise DecodeError(f"genesis {name} must be an integer from {minimum} to 2^64 - 1")
    return value


def parse_validator(item: Any) -> Validator:
    name = item.get("name", "")
    if not isinstance(name, str) or len(name) > VALIDATOR_NAME_CHARS_MAX:
        raise DecodeError(f"validator name must be text of at most {VALIDATOR_NAME_CHARS_MAX} "
                          "characters")
    unknown = sorted(set(item) - {"public_key", "power", "name"})
    if unknown:
        raise DecodeError(f"a genesis validator has no field(s) {unknown}")
    return Validator(parse_key(item["public_key"]),
                     parse_uint(item["power"], "validator power", 1), name)


def parse_roles(value: Any) -> dict[str, tuple[bytes, ...]]:
    if not isinstance(value, dict):
        raise DecodeError("genesis roles must be an object of role name -> keys")
    roles = {}
    for name, keys in value.items():
        if not 0 < len(name) <= ROLE_CHARS_MAX:
            raise DecodeError(f"role name {name!r} is not well formed")
        if not isinstance(keys, list):
            raise DecodeError(f"role {name!r} must list hex public keys")
        roles[name] = tuple(sorted({parse_key(key) for key in keys}))
    return roles


def parse_agencies(value: Any) -> tuple[Agency, ...]:
    if not isinstance(value, dict) or set(value) != {"version", "members"}:
        raise DecodeError('genesis agencies must be {"version": 1, "members": [...]}')
    if type(value["version"]) is not int or value["version"] != AGENCIES_VERSION:
        raise DecodeError(f"agencies version {value['version']!r} is not supported "
                          f"(this software reads {AGENCIES_VERSION})")
    members = value["members"]
    if not isinstance(members, list):
        raise DecodeError("genesis agencies members must be a list")
    agencies = []
    for member in members:
        if not isinstance(member, dict) or set(member) != {"name", "public_key"}:
            raise DecodeError('an agency is {"name": ..., "public_key": ...}')
        agencies.append(Agency(member["name"], parse_key(member["public_key"])))
    return tuple(agencies)


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
