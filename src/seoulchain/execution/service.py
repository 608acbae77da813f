"""How a service declares itself: methods with argument schemas and roles, and queries.

A service is a class deriving from `Service` with a unique `name`. Each transaction method
is decorated with `@tx_method(args=Model, roles={...})`: `Model` is a strict pydantic model
(the argument schema, unknown fields refused) and `roles` the set of roles allowed to call
it (`None` means any registered signer). Each query is decorated with `@query(args=Model)`.

Rules that keep the chain deterministic: a method reads only `ctx` (block height and time,
the signer, its own namespace of state) and its arguments; no floats, randomness, clock or
I/O. It refuses a request by raising `ServiceError`; the transaction is then recorded as
failed and its writes discarded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from seoulchain.errors import LocalError
from seoulchain.execution.results import Event, EventValue
from seoulchain.execution.state import ServiceState

ENTRY_POINT_GROUP = "seoulchain.services"
# Roles and nonces live in the "auth" namespace, under these key prefixes.
AUTH_NAMESPACE = "auth"
ROLE_KEY_PREFIX = b"role/"
NONCE_KEY_PREFIX = b"nonce/"
# Events per transaction; a method that emits more has a bug.
EVENTS_PER_TX_MAX = 32


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
class MethodSpec:
    name: str
    args: type[BaseModel]
    roles: frozenset[str] | None
    handler: Callable[..., None]


@dataclass(frozen=True)
class QuerySpec:
    name: str
    args: type[BaseModel]
    handler: Callable[..., Any]


class TxContext:
    """What a transaction method may see and do."""

    def __init__(self, *, state: ServiceState, roles: ServiceState, signer: bytes,
                 height: int, time_ms: int, tx_hash: bytes):
        self.state = state
        self.roles = roles
        self.signer = signer
        self.height = height
        self.time_ms = time_ms
        self.tx_hash = tx_hash
        self.events: list[Event] = []

    def emit(self, kind: str, /, **attributes: EventValue) -> None:
        if len(self.events) >= EVENTS_PER_TX_MAX:
            raise LocalError(f"a transaction may emit at most {EVENTS_PER_TX_MAX} events")
        self.events.append(Event(kind, dict(attributes)))

    def has_role(self, public_key: bytes, role: str) -> bool:
        return has_role(self.roles, public_key, role)


def compute_role_key(role: str, public_key: bytes) -> bytes:
    """Return the auth-namespace key that records `public_key` holding `role`."""
    return ROLE_KEY_PREFIX + role.encode() + b"/" + public_key


def compute_nonce_key(public_key: bytes) -> bytes:
    """Return the auth-namespace key holding the signer's last used nonce."""
    return NONCE_KEY_PREFIX + public_key


def has_role(roles: ServiceState, public_key: bytes, role: str) -> bool:
    """Return True if `public_key` holds `role` in the given auth state."""
    return roles.has(compute_role_key(role, public_key))


def tx_method(*, args: type[BaseModel], roles: Iterable[str] | None
              ) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Mark a service method as a transaction method with an argument schema and roles."""
    def mark(function: Callable[..., None]) -> Callable[..., None]:
        function.__seoulchain_method__ = (args, None if roles is None else frozenset(roles))  # type: ignore[attr-defined]
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
    methods: ClassVar[dict[str, MethodSpec]] = {}
    queries: ClassVar[dict[str, QuerySpec]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.methods = {}
        cls.queries = {}
        for attribute, value in vars(cls).items():
            if hasattr(value, "__seoulchain_method__"):
                args, roles = value.__seoulchain_method__
                cls.methods[attribute] = MethodSpec(attribute, args, roles, value)
            if hasattr(value, "__seoulchain_query__"):
                cls.queries[attribute] = QuerySpec(attribute, value.__seoulchain_query__, value)

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


def load_services() -> dict[str, Service]:
    """Instantiate every service registered under the `seoulchain.services` entry point."""
    services: dict[str, Service] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        cls = entry.load()
        if not (isinstance(cls, type) and issubclass(cls, Service)) or not cls.name:
            raise LocalError(f"entry point {entry.name!r} is not a named Service class")
        if cls.name in services:
            raise LocalError(f"two services are registered under the name {cls.name!r}")
        services[cls.name] = cls()
    return services
