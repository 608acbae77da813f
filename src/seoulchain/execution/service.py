"""How a service declares itself: methods with argument schemas and roles, and queries.

A service is a class deriving from `Service` with a unique `name`. Each transaction method
is decorated with `@tx_method(args=Model, roles={...})`: `Model` is a strict pydantic model
(the argument schema, unknown fields refused) and `roles` the set of roles allowed to call
it (`None` means any registered signer). Each query is decorated with `@query(args=Model)`.

Rules that keep the chain deterministic: a method reads only `ctx` (block height and time,
the signer, its own namespace of state, read-only views of other services' namespaces) and
its arguments; no floats, randomness, clock or
I/O. It refuses a request by raising `ServiceError`; the transaction is then recorded as
failed and its writes discarded.

A method declared `@tx_method(..., admitted_only=True)` never enters a block as a failure:
the mempool dry-runs it against committed state and refuses it there, a proposer leaves out
one that would fail in its block, and a block that holds a failing one is invalid. It is for
methods whose refusal is about the request itself (a ballot's proofs), so that nothing
invalid is ever recorded. Such a method may also declare `precheck`: a function of committed
state and the validated arguments returning a `Precheck`, the method's expensive pure check
that a node runs ahead, in worker processes, off its event loop; the method itself still
checks whatever the precheck did not record.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from seoulchain.errors import LocalError
from seoulchain.execution.platform import ParamSpec, ParamValue, PlatformAccess
from seoulchain.execution.results import Event, EventValue
from seoulchain.execution.state import ServiceState, StateReader
from seoulchain.ledger.genesis import ROLE_CHARS_MAX, SERVICE_VERSION_PATTERN, Genesis
from seoulchain.ledger.types import (
    PUBLIC_KEY_BYTES,
    VALIDATOR_NAME_CHARS_MAX,
    VALIDATORS_MAX,
    Validator,
    ValidatorSet,
)

ENTRY_POINT_GROUP = "seoulchain.services"
# Roles and nonces live in the "auth" namespace, under these key prefixes.
AUTH_NAMESPACE = "auth"
ROLE_KEY_PREFIX = b"role/"
NONCE_KEY_PREFIX = b"nonce/"
# Each (role, key)'s periods of holding it, [granted_height, revoked_height or None], oldest
# first: a key holds the role in the state after block H when granted_height <= H <
# revoked_height (genesis roles are granted at height 0).
ROLE_HISTORY_KEY_PREFIX = b"rolehistory/"
# Grants one key may receive of one role: an office re-granted its role weekly for a year
# stays inside, and the record stays under 1 KiB; past it, a new key is granted instead.
ROLE_PERIODS_MAX = 64
# Events per transaction; a method that emits more has a bug.
EVENTS_PER_TX_MAX = 32
# The largest amount (KRW, points), count or time (ms) a service stores: a signed 64-bit
# integer, as SQLite and CometBFT keep theirs, so other implementations need no big ints.
INTEGER_MAX = 2**63 - 1
# Platform capabilities a service may declare in `Service.privileges`.
PRIVILEGE_ROLES = "roles"
PRIVILEGE_VALIDATORS = "validators"
PRIVILEGE_PARAMS = "params"
PRIVILEGE_UPGRADES = "upgrades"
PRIVILEGES = frozenset({PRIVILEGE_ROLES, PRIVILEGE_VALIDATORS, PRIVILEGE_PARAMS,
                        PRIVILEGE_UPGRADES})
# Role names granted on chain: "service.role", as genesis roles are named in practice, at
# most genesis's ROLE_CHARS_MAX characters.
ROLE_PATTERN = re.compile(r"[a-z][a-z0-9_-]*\.[a-z][a-z0-9_.-]*")
# Voting power is bounded so that sums stay far inside 64-bit integers (as CometBFT).
VALIDATOR_POWER_MAX = 2**50


class ServiceError(Exception):
    """A service refuses a request; the message is shown to the user and stored on chain."""


class StrictArgs(BaseModel):
    """Base of argument schemas: strict types, unknown fields refused, immutable."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


def parse_hex(value: Any) -> Any:
    """Accept hex text for a bytes field (queries arrive as text over HTTP)."""
    if isinstance(value, str):
        try:
            return bytes.fromhex(value.removeprefix("sha256:"))
        except ValueError as exc:
            raise ValueError("expected hex") from exc
    return value


HexBytes = Annotated[bytes, BeforeValidator(parse_hex)]


class QueryArgs(BaseModel):
    """Base of query schemas: lax types (hex for bytes), unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Precheck:
    """A pure, expensive check a node may run ahead of a method, in another process.

    `run(*args)` is a module-level function (so it can be sent to a worker process) that
    returns a picklable verdict; `record(verdict, *args)` runs in the node's process and
    remembers it where the method's own check will look (a memo of the same pure function).
    """

    run: Callable[..., Any]
    record: Callable[..., None]
    args: tuple[Any, ...]


@dataclass(frozen=True)
class MethodSpec:
    name: str
    args: type[BaseModel]
    roles: frozenset[str] | None
    handler: Callable[..., None]
    # Executed only when it succeeds: refused at admission, left out or the block invalid.
    admitted_only: bool = False
    # (committed state of the service, validated args) -> Precheck | None; see above.
    precheck: Callable[[ServiceState, Any], Precheck | None] | None = None


@dataclass(frozen=True)
class QuerySpec:
    name: str
    args: type[BaseModel]
    handler: Callable[..., Any]


class TxContext:
    """What a transaction method may see and do.

    Every service reads: its own namespace (`state`), another service's namespace
    (`read_service_state`, read-only), the signer, the height and time, roles (`has_role`)
    and the validator set of h+2 (`get_next_validators`). Writing roles and
    requesting validator updates are privileges (`Service.privileges`): a service that does
    not declare one and calls such a method is refused, and the tx fails.
    """

    def __init__(self, *, state: ServiceState, auth: ServiceState, signer: bytes,
                 height: int, time_ms: int, tx_hash: bytes, service_name: str = "",
                 privileges: frozenset[str] = frozenset(),
                 next_validators: ValidatorSet | None = None,
                 platform: PlatformAccess | None = None):
        self.state = state
        self._platform = platform
        self._auth = auth
        self.signer = signer
        self.height = height
        self.time_ms = time_ms
        self.tx_hash = tx_hash
        self.service_name = service_name
        self.privileges = privileges
        self._next_validators = next_validators
        self.events: list[Event] = []
        # This tx's validator updates (public key -> validator, power 0 removes), which the
        # engine applies to the set of h+2 at the end of the block if the tx succeeds.
        self.validator_updates: dict[bytes, Validator] = {}

    def emit(self, kind: str, /, **attributes: EventValue) -> None:
        if len(self.events) >= EVENTS_PER_TX_MAX:
            raise LocalError(f"a transaction may emit at most {EVENTS_PER_TX_MAX} events")
        self.events.append(Event(kind, dict(attributes)))

    def has_role(self, public_key: bytes, role: str) -> bool:
        """Return True if `public_key` holds `role` (as of this point of the block)."""
        return has_role(self._auth, public_key, role)

    def get_platform(self) -> PlatformAccess:
        """Return the platform records (parameters, versions) this transaction sees."""
        if self._platform is None:
            raise LocalError("this context has no platform records")
        return self._platform

    def get_param(self, name: str) -> ParamValue:
        """Return chain parameter `name` ("service.param"): its governed value or default."""
        return self.get_platform().get_param(name)

    def check_param(self, name: str, value: ParamValue) -> None:
        """Raise `LocalError` unless `name` is a known parameter and `value` fits its spec."""
        self.get_platform().check_param(name, value)

    def set_param(self, name: str, value: ParamValue) -> None:
        """Set chain parameter `name` to `value` (privilege "params")."""
        self.require_privilege(PRIVILEGE_PARAMS)
        self.get_platform().set_param(name, value)

    def get_service_version(self) -> str | None:
        """Return the version of this service the chain runs at this height."""
        return self.get_platform().get_version(self.service_name)

    def check_upgrade(self, service: str, version: str, height: int) -> None:
        """Raise `LocalError` unless `service` can be scheduled to run `version` from `height`."""
        self.get_platform().check_upgrade(service, version, height)

    def schedule_upgrade(self, service: str, version: str, height: int) -> None:
        """Record that from `height` on the chain runs `service` at `version` (privilege
        "upgrades"); nodes without that version stop before executing `height`."""
        self.require_privilege(PRIVILEGE_UPGRADES)
        self.get_platform().schedule_upgrade(service, version, height)

    def require_privilege(self, privilege: str) -> None:
        """Raise `LocalError` unless the calling service declared `privilege`."""
        if privilege not in self.privileges:
            raise LocalError(f"service {self.service_name!r} lacks the privilege "
                             f"{privilege!r}")

    def grant_role(self, role: str, public_key: bytes) -> None:
        """Give `public_key` the role `role` (privilege "roles")."""
        self.require_privilege(PRIVILEGE_ROLES)
        check_role_grant(role, public_key)
        record_role_grant(self._auth, role, public_key, self.height)

    def revoke_role(self, role: str, public_key: bytes) -> None:
        """Take the role `role` from `public_key` (privilege "roles")."""
        self.require_privilege(PRIVILEGE_ROLES)
        check_role_grant(role, public_key)
        record_role_revoke(self._auth, role, public_key, self.height)

    def read_service_state(self, service: str) -> ServiceState:
        """Return a read-only view of another service's namespace as this tx sees it."""
        if not isinstance(service, str) or not service or "/" in service:
            raise LocalError(f"no service namespace {service!r}")
        return ServiceState(ReadOnlyState(self.state.overlay), service)

    def get_next_validators(self) -> ValidatorSet:
        """Return the validator set of h+2 as it stands, with this tx's updates."""
        if self._next_validators is None:
            raise LocalError("this context has no validator set")
        return compute_updated_set(self._next_validators, self.validator_updates.values())

    def request_validator_update(self, public_key: bytes, power: int, name: str = "") -> None:
        """Set a validator's power in the set of h+2, 0 removing it (privilege "validators")."""
        self.require_privilege(PRIVILEGE_VALIDATORS)
        if not isinstance(public_key, bytes) or len(public_key) != PUBLIC_KEY_BYTES:
            raise LocalError(f"a validator key is {PUBLIC_KEY_BYTES} bytes")
        if type(power) is not int or not 0 <= power <= VALIDATOR_POWER_MAX:
            raise LocalError("validator power must be an integer from 0 to 2^50")
        if not isinstance(name, str) or len(name) > VALIDATOR_NAME_CHARS_MAX:
            raise LocalError(f"a validator name is at most {VALIDATOR_NAME_CHARS_MAX} characters")
        before = self.validator_updates.get(public_key)
        self.validator_updates[public_key] = Validator(public_key, power, name)
        try:
            self.get_next_validators()
        except LocalError:
            if before is None:
                del self.validator_updates[public_key]
            else:
                self.validator_updates[public_key] = before
            raise


def compute_updated_set(validators: ValidatorSet, updates: Iterable[Validator]) -> ValidatorSet:
    """Return `validators` with each update applied (power 0 removes), or raise `LocalError`
    if the set would be empty or larger than VALIDATORS_MAX."""
    members = {validator.public_key: validator for validator in validators.validators}
    for update in updates:
        if update.power == 0:
            members.pop(update.public_key, None)
        else:
            members[update.public_key] = update
    if not 1 <= len(members) <= VALIDATORS_MAX:
        raise LocalError(f"the validator set would have {len(members)} members; it must "
                         f"have 1 to {VALIDATORS_MAX}")
    return ValidatorSet.of(list(members.values()))


def check_role_grant(role: str, public_key: bytes) -> None:
    """Raise `LocalError` unless `role` is a well-formed role name and `public_key` a key."""
    if (not isinstance(role, str) or len(role) > ROLE_CHARS_MAX
            or not ROLE_PATTERN.fullmatch(role)):
        raise LocalError(f"role name {role!r} must look like 'service.role' (lower-case "
                         f"letters, digits, '_' or '-', at most {ROLE_CHARS_MAX} characters)")
    if not isinstance(public_key, bytes) or len(public_key) != PUBLIC_KEY_BYTES:
        raise LocalError(f"a role is granted to a {PUBLIC_KEY_BYTES}-byte public key")


def compute_role_key(role: str, public_key: bytes) -> bytes:
    """Return the auth-namespace key that records `public_key` holding `role`."""
    return ROLE_KEY_PREFIX + role.encode() + b"/" + public_key


def compute_nonce_key(public_key: bytes) -> bytes:
    """Return the auth-namespace key holding the signer's last used nonce."""
    return NONCE_KEY_PREFIX + public_key


def has_role(roles: ServiceState, public_key: bytes, role: str) -> bool:
    """Return True if `public_key` holds `role` in the given auth state."""
    return roles.has(compute_role_key(role, public_key))


def compute_role_history_key(role: str, public_key: bytes) -> bytes:
    """Return the auth-namespace key of `public_key`'s periods of holding `role`."""
    return ROLE_HISTORY_KEY_PREFIX + role.encode() + b"/" + public_key


def get_role_history(auth: ServiceState, role: str, public_key: bytes) -> list[list[Any]]:
    """Return `public_key`'s periods of holding `role`, [granted, revoked or None], oldest
    first."""
    return auth.get(compute_role_history_key(role, public_key)) or []


def record_role_grant(auth: ServiceState, role: str, public_key: bytes, height: int) -> None:
    """Give `public_key` the role `role` from `height` on and open a period in its history."""
    periods = get_role_history(auth, role, public_key)
    if periods and periods[-1][1] is None:
        raise LocalError(f"key {public_key.hex()} already holds {role}")
    if len(periods) >= ROLE_PERIODS_MAX:
        raise LocalError(f"key {public_key.hex()} was granted {role} {len(periods)} times, "
                         f"the most one key may be ({ROLE_PERIODS_MAX}); grant a new key")
    auth.set(compute_role_key(role, public_key), True)
    auth.set(compute_role_history_key(role, public_key), [*periods, [height, None]])


def record_genesis_role(auth: ServiceState, role: str, public_key: bytes) -> None:
    """Write a genesis role: held from height 0, its history that one open period."""
    auth.set(compute_role_key(role, public_key), True)
    auth.set(compute_role_history_key(role, public_key), [[0, None]])


def record_role_revoke(auth: ServiceState, role: str, public_key: bytes, height: int) -> None:
    """Take `role` from `public_key` from `height` on and close its open period."""
    periods = get_role_history(auth, role, public_key)
    auth.delete(compute_role_key(role, public_key))
    if periods and periods[-1][1] is None:
        auth.set(compute_role_history_key(role, public_key),
                 [*periods[:-1], [periods[-1][0], height]])


def held_role_at(periods: Iterable[list[Any]], height: int) -> bool:
    """Return True if a role history's periods say the key held the role in the state after
    block `height`: granted at or before it, and not revoked at or before it."""
    return any(granted <= height and (revoked is None or height < revoked)
               for granted, revoked in periods)


class ReadOnlyState:
    """A state reader that only reads: another service's namespace seen from a tx."""

    def __init__(self, base: StateReader):
        self.base = base

    def get_state(self, key: bytes) -> bytes | None:
        return self.base.get_state(key)


def tx_method(*, args: type[BaseModel], roles: Iterable[str] | None,
              admitted_only: bool = False,
              precheck: Callable[[ServiceState, Any], Precheck | None] | None = None
              ) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Mark a service method as a transaction method with an argument schema and roles
    (`admitted_only`: it enters a block only when it succeeds; `precheck`: its expensive
    pure check, run ahead by nodes; see the module docstring)."""
    def mark(function: Callable[..., None]) -> Callable[..., None]:
        function.__seoulchain_method__ = (  # type: ignore[attr-defined]
            args, None if roles is None else frozenset(roles), admitted_only, precheck)
        return function
    return mark


def query(*, args: type[BaseModel]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a service method as a read-only query with an argument schema."""
    def mark(function: Callable[..., Any]) -> Callable[..., Any]:
        function.__seoulchain_query__ = args  # type: ignore[attr-defined]
        return function
    return mark


class Service:
    """Base class of every service."""

    name: ClassVar[str] = ""
    # The service's semantic version; genesis pins it and upgrades change it (a node whose
    # installed version differs from the chain's stops, see execution/platform.py).
    version: ClassVar[str] = ""
    # The chain parameters the service reads, by short name ("<service>.<name>" in full).
    params: ClassVar[dict[str, ParamSpec]] = {}
    # Platform capabilities the service uses (PRIVILEGES); genesis pins which code has them.
    privileges: ClassVar[frozenset[str]] = frozenset()
    methods: ClassVar[dict[str, MethodSpec]] = {}
    queries: ClassVar[dict[str, QuerySpec]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.methods = {}
        cls.queries = {}
        members: dict[str, Any] = {}  # own and inherited: a new version may subclass the old
        for klass in reversed(cls.__mro__):
            members.update(vars(klass))
        for attribute, value in members.items():
            if hasattr(value, "__seoulchain_method__"):
                args, roles, admitted_only, precheck = value.__seoulchain_method__
                cls.methods[attribute] = MethodSpec(attribute, args, roles, value,
                                                    admitted_only, precheck)
            if hasattr(value, "__seoulchain_query__"):
                cls.queries[attribute] = QuerySpec(attribute, value.__seoulchain_query__, value)

    def init_genesis(self, state: ServiceState, genesis: Genesis) -> None:
        """Write the service's initial state from genesis (run once, when a store is new)."""

    def check_invariants(self, entries: Iterable[tuple[bytes, Any]]) -> list[str]:
        """Return a description of each invariant the service's state breaks (audit).

        `entries` are the service's committed state entries, keys without the namespace
        and values decoded, in key order; `seoulchain audit` calls this after its replay.
        """
        return []

    def run_query(self, state: ServiceState, name: str, raw_args: dict[str, Any]) -> Any:
        """Validate `raw_args` against the query's schema and run it on committed state."""
        spec = self.queries.get(name)
        if spec is None:
            raise LocalError(f"service {self.name!r} has no query {name!r}; "
                             f"it has: {', '.join(sorted(self.queries)) or 'none'}")
        try:
            args = spec.args.model_validate(raw_args)
        except ValidationError as exc:
            raise LocalError(describe_validation_error(exc)) from exc
        return spec.handler(self, state, args)


def describe_validation_error(error: ValidationError) -> str:
    """Return a short, deterministic description of a schema violation."""
    parts = []
    for item in error.errors(include_url=False)[:5]:
        location = ".".join(str(part) for part in item["loc"]) or "arguments"
        parts.append(f"{location}: {item['msg']}")
    return "; ".join(parts)


def describe_service(service: Service) -> dict[str, Any]:
    """Return a service's declaration as JSON: version, methods with their argument schemas
    (JSON Schema) and allowed roles (None: any signer), queries, and chain parameters."""
    return {
        "name": service.name,
        "description": get_summary(type(service)),
        "version": service.version,
        "privileges": sorted(service.privileges),
        "methods": {name: {"description": get_summary(spec.handler),
                           "roles": None if spec.roles is None else sorted(spec.roles),
                           "args": spec.args.model_json_schema()}
                    for name, spec in sorted(service.methods.items())},
        "queries": {name: {"description": get_summary(spec.handler),
                           "args": spec.args.model_json_schema()}
                    for name, spec in sorted(service.queries.items())},
        "params": {f"{service.name}.{name}": describe_param(spec)
                   for name, spec in sorted(service.params.items())},
    }


def describe_param(spec: ParamSpec) -> dict[str, Any]:
    """Return a parameter declaration as JSON: type name, default, bounds, description."""
    return {"type": spec.type.__name__, "default": spec.default, "minimum": spec.minimum,
            "maximum": spec.maximum, "description": spec.description}


def get_summary(thing: Any) -> str:
    """Return the first line of a class's or function's docstring, or ""."""
    doc = (thing.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def load_services() -> dict[str, Service]:
    """Instantiate every service registered under the `seoulchain.services` entry point."""
    services: dict[str, Service] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        cls = entry.load()
        if not (isinstance(cls, type) and issubclass(cls, Service)) or not cls.name:
            raise LocalError(f"entry point {entry.name!r} is not a named Service class")
        if cls.name in services:
            raise LocalError(f"two services are registered under the name {cls.name!r}")
        if not SERVICE_VERSION_PATTERN.fullmatch(cls.version):
            raise LocalError(f"service {cls.name!r} declares no semantic version "
                             f"(Service.version, e.g. \"1.0.0\"), but {cls.version!r}")
        services[cls.name] = cls()
    return services
