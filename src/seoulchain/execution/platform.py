"""Platform records: the chain parameters services read and the service versions it runs.

Theory of operation: both live in the `platform` namespace of the state (so under the state
root), which no service can write through its own `ctx.state`; only the privileged context
methods below write it, each checking its input first so nothing is half-applied.

Parameters: a service declares the parameters it reads in `Service.params` (a `ParamSpec`
each: type, bounds, default, description); the full name is "<service>.<param>". A value
set through `ctx.set_param` (privilege "params") is stored under `param/<name>`; until then
`ctx.get_param` returns the declared default. Unknown names and values of the wrong type or
out of bounds are refused with a reason.

Versions: genesis pins each service's version (`Genesis.services`). `ctx.schedule_upgrade`
(privilege "upgrades") records under `upgrades` that from height H service S runs version V.
The chain's version of S at height h is its pin amended by every upgrade of S with
H <= h. Before executing a height, the engine checks the installed services against it
(`check_versions`): a node whose installed S is neither that version nor a version still
scheduled for later raises `UpgradeRequired` and stops instead of diverging. The check
reads only committed state, so every node agrees on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from seoulchain.errors import DecodeError, LocalError, StorageError
from seoulchain.execution.state import ServiceState, StateReader
from seoulchain.ledger.genesis import SERVICE_NAME_PATTERN, SERVICE_VERSION_PATTERN

if TYPE_CHECKING:
    from seoulchain.execution.service import Service

PLATFORM_NAMESPACE = "platform"
PARAM_KEY_PREFIX = b"param/"
UPGRADES_KEY = b"upgrades"
# Namespaces the platform itself writes; no service may be installed under these names.
RESERVED_NAMESPACES = frozenset({"auth", "chain", PLATFORM_NAMESPACE})
# Upgrades ever scheduled (the list is kept whole for the history of versions): a few a
# year for a handful of services, for decades.
UPGRADES_MAX = 1024
# A text parameter is a short setting (a unit, a code), not a document.
PARAM_TEXT_CHARS_MAX = 256
PARAM_TYPES = (int, str, bool)
# How a refusal names each parameter type.
PARAM_TYPE_NAMES = {int: "an integer", str: "text", bool: "true or false"}
ParamValue = int | str | bool


class ServiceVersionError(LocalError):
    """The installed services are not the ones the chain runs: the node must not run."""


class ServicesMismatch(ServiceVersionError):
    """The installed services differ from the ones the chain runs (genesis and upgrades)."""

    def __init__(self, differences: list[str]):
        self.differences = differences
        super().__init__("the installed services differ from the chain's: "
                         + "; ".join(differences))


class UpgradeRequired(ServiceVersionError):
    """The chain runs another version of an installed service from the next height on."""

    def __init__(self, service: str, version: str, installed: str | None, height: int):
        self.service, self.version, self.installed, self.height = (service, version,
                                                                   installed, height)
        have = "is not installed" if installed is None else f"is at version {installed}"
        super().__init__(f"upgrade required: from height {height} the chain runs service "
                         f"{service!r} version {version}, and this node's {service!r} {have}; "
                         f"install {service} {version} and start the node again "
                         "(docs/operations.md, \"Upgrading a service\")")


@dataclass(frozen=True)
class ParamSpec:
    """A chain parameter a service reads: its type, bounds, default and a description.

    Bounds are inclusive: `minimum`/`maximum` bound an int's value and a str's length.
    """

    type: type
    default: ParamValue
    description: str
    minimum: int | None = None
    maximum: int | None = None

    def __post_init__(self) -> None:
        if self.type not in PARAM_TYPES:
            raise LocalError(f"a parameter is an int, str or bool, not {self.type!r}")
        self.check("default", self.default)

    def check(self, name: str, value: Any) -> None:
        """Raise `LocalError` unless `value` has this parameter's type and bounds."""
        if type(value) is not self.type:
            given = PARAM_TYPE_NAMES.get(type(value), type(value).__name__)
            raise LocalError(f"parameter {name} takes {PARAM_TYPE_NAMES[self.type]}, not "
                             f"{given}")
        if self.type is bool:
            return
        measure = len(value) if isinstance(value, str) else value
        minimum, maximum = self.minimum, self.maximum
        if self.type is str:
            maximum = min(PARAM_TEXT_CHARS_MAX if maximum is None else maximum,
                          PARAM_TEXT_CHARS_MAX)
        what = "length" if isinstance(value, str) else "value"
        if minimum is not None and measure < minimum:
            raise LocalError(f"parameter {name}'s {what} must be at least {minimum}, not "
                             f"{measure}")
        if maximum is not None and measure > maximum:
            raise LocalError(f"parameter {name}'s {what} must be at most {maximum}, not "
                             f"{measure}")


@dataclass(frozen=True)
class Upgrade:
    """From `height` on, the chain runs `service` at `version`."""

    service: str
    version: str
    height: int

    def to_cbor(self) -> list[Any]:
        return [self.service, self.version, self.height]


def find_param_spec(services: dict[str, Service], name: Any) -> ParamSpec:
    """Return the spec of the parameter "<service>.<param>", or raise `LocalError`."""
    if not isinstance(name, str):
        raise LocalError(f"a parameter name is text such as 'notary.metadata_entries_max', "
                         f"not {name!r}")
    service_name, _, param = name.partition(".")
    service = services.get(service_name)
    spec = None if service is None else service.params.get(param)
    if spec is None:
        known = sorted(f"{service.name}.{key}" for service in services.values()
                       for key in service.params)
        raise LocalError(f"unknown parameter {name!r}; known: {', '.join(known) or 'none'}")
    return spec


def get_param(state: StateReader, services: dict[str, Service], name: str) -> ParamValue:
    """Return the parameter's governed value, or its declared default."""
    spec = find_param_spec(services, name)
    value = ServiceState(state, PLATFORM_NAMESPACE).get(PARAM_KEY_PREFIX + name.encode())
    return spec.default if value is None else value


def get_upgrades(state: StateReader) -> list[Upgrade]:
    """Return every upgrade ever scheduled, in the order they were recorded."""
    try:
        raw = ServiceState(state, PLATFORM_NAMESPACE).get(UPGRADES_KEY) or []
        return [Upgrade(str(service), str(version), int(height))
                for service, version, height in raw]
    except (DecodeError, TypeError, ValueError) as exc:
        raise StorageError(f"the stored service upgrades are corrupt: {exc}") from exc


def compute_versions(pins: dict[str, str], upgrades: list[Upgrade],
                     height: int) -> dict[str, str]:
    """Return the version of each service the chain runs at `height`."""
    versions = dict(pins)
    for upgrade in sorted(upgrades, key=lambda item: item.height):
        if upgrade.height <= height:
            versions[upgrade.service] = upgrade.version
    return versions


def get_installed_versions(services: dict[str, Service]) -> dict[str, str]:
    """Return name -> version of the installed services (what a new genesis pins)."""
    return {name: service.version for name, service in sorted(services.items())}


def compute_ahead(upgrades: list[Upgrade], height: int) -> set[tuple[str, str | None]]:
    """Return the (service, version) pairs scheduled after `height`: these may be installed
    ahead of their height (the new version behaves as the old one until then)."""
    return {(item.service, item.version) for item in upgrades if item.height > height}


def find_differences(pins: dict[str, str], services: dict[str, Service],
                     upgrades: list[Upgrade], height: int,
                     known: list[Upgrade] | None = None) -> list[str]:
    """Describe each way the installed services differ from the chain's at `height`."""
    expected = compute_versions(pins, upgrades, height)
    ahead = compute_ahead(upgrades + (known or []), height)
    differences = []
    for name in sorted(set(expected) | set(services)):
        installed = services[name].version if name in services else None
        if name in RESERVED_NAMESPACES:
            differences.append(f"service name {name!r} is reserved for the platform; "
                               "uninstall that service")
        elif installed == expected.get(name) or (name, installed) in ahead:
            continue
        elif installed is None:
            differences.append(f"service {name!r} {expected[name]} is missing; install it")
        elif name not in expected:
            differences.append(f"service {name!r} {installed} is installed but the chain does "
                               "not run it; uninstall it")
        else:
            differences.append(f"service {name!r} is at version {installed} but the chain "
                               f"runs {expected[name]}; install {name} {expected[name]}")
    return differences


def check_installed(pins: dict[str, str], services: dict[str, Service], state: StateReader,
                    height: int, known: list[Upgrade] | None = None) -> None:
    """Raise `ServicesMismatch` unless the installed services fit the chain at `height`.

    A genesis that pins no services (version 1) checks nothing.
    """
    if not pins:
        return
    differences = find_differences(pins, services, get_upgrades(state), height, known)
    if differences:
        raise ServicesMismatch(differences)


def check_versions(pins: dict[str, str], services: dict[str, Service], state: StateReader,
                   height: int, known: list[Upgrade] | None = None) -> None:
    """Raise `UpgradeRequired` if a scheduled upgrade applies at `height` that this node
    lacks (or a service the chain runs is not installed)."""
    upgrades = get_upgrades(state)
    if not pins and not upgrades:
        return
    expected = compute_versions(pins, upgrades, height)
    ahead = compute_ahead(upgrades + (known or []), height)
    for name, version in sorted(expected.items()):
        installed = services[name].version if name in services else None
        if installed != version and (name, installed) not in ahead:
            since = max((item.height for item in upgrades
                         if item.service == name and item.height <= height), default=height)
            raise UpgradeRequired(name, version, installed, since)


class PlatformAccess:
    """A transaction's access to the platform records (writes go to its own overlay)."""

    def __init__(self, state: ServiceState, services: dict[str, Service], pins: dict[str, str],
                 height: int):
        assert state.prefix == PLATFORM_NAMESPACE.encode() + b"/"
        self.state = state
        self.services = services
        self.pins = pins
        self.height = height

    def get_param(self, name: str) -> ParamValue:
        """Return the parameter's governed value, or its declared default."""
        return get_param(self.state.overlay, self.services, name)

    def check_param(self, name: str, value: Any) -> None:
        """Raise `LocalError` unless `name` is a known parameter and `value` fits it."""
        find_param_spec(self.services, name).check(name, value)

    def set_param(self, name: str, value: ParamValue) -> None:
        """Store the parameter's new value (the caller checked the privilege)."""
        self.check_param(name, value)
        self.state.set(PARAM_KEY_PREFIX + name.encode(), value)

    def get_version(self, service: str) -> str | None:
        """Return the version of `service` the chain runs at this height (None: not run)."""
        return compute_versions(self.pins, get_upgrades(self.state.overlay),
                                self.height).get(service)

    def check_upgrade(self, service: Any, version: Any, height: Any) -> None:
        """Raise `LocalError` unless `service` can be scheduled to run `version` from `height`."""
        if not isinstance(service, str) or not SERVICE_NAME_PATTERN.fullmatch(service) \
                or service in RESERVED_NAMESPACES:
            raise LocalError(f"{service!r} is not a service name")
        if not isinstance(version, str) or not SERVICE_VERSION_PATTERN.fullmatch(version):
            raise LocalError(f"version {version!r} is not a semantic version such as \"1.1.0\"")
        if type(height) is not int or height <= self.height:
            raise LocalError(f"an upgrade applies from a later height than this block's "
                             f"({self.height}), not {height!r}")
        upgrades = get_upgrades(self.state.overlay)
        if len(upgrades) >= UPGRADES_MAX:
            raise LocalError(f"the chain has recorded {UPGRADES_MAX} upgrades, the most it keeps")
        if any(item.service == service and item.height >= height for item in upgrades):
            raise LocalError(f"service {service!r} already has an upgrade scheduled at or after "
                             f"height {height}")
        if compute_versions(self.pins, upgrades, height).get(service) == version:
            raise LocalError(f"the chain already runs {service} {version} at height {height}")

    def schedule_upgrade(self, service: str, version: str, height: int) -> None:
        """Record that from `height` on the chain runs `service` at `version`."""
        self.check_upgrade(service, version, height)
        upgrades = get_upgrades(self.state.overlay)
        upgrades.append(Upgrade(service, version, height))
        self.state.set(UPGRADES_KEY, [item.to_cbor() for item in upgrades])


def describe_params(state: StateReader, services: dict[str, Service]) -> list[dict[str, Any]]:
    """Return every declared parameter with its current value, default, type and bounds."""
    described = []
    for service_name, service in sorted(services.items()):
        for param, spec in sorted(service.params.items()):
            name = f"{service_name}.{param}"
            described.append({
                "name": name, "value": get_param(state, services, name),
                "default": spec.default, "type": spec.type.__name__,
                "minimum": spec.minimum, "maximum": spec.maximum,
                "description": spec.description})
    return described
