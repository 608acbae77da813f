"""Platform records: pinned service versions, scheduled upgrades, and chain parameters."""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path
from typing import ClassVar

import pytest

from seoulchain.consensus.evidence import verify_evidence_bytes
from seoulchain.execution.engine import Engine
from seoulchain.execution.platform import (
    ParamSpec,
    ServicesMismatch,
    UpgradeRequired,
    get_installed_versions,
    get_upgrades,
)
from seoulchain.execution.results import ResultCode
from seoulchain.execution.service import (
    Service,
    StrictArgs,
    TxContext,
    load_services,
    tx_method,
)
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.store import BlockStore
from seoulchain.services.gov import GovService
from seoulchain.services.notary import (
    ISSUER_ROLE,
    METADATA_ENTRIES_PARAM,
    AnchorArgs,
    NotaryService,
)
from tests.conftest import LocalChain

UPGRADE_VERSION = "1.1.0"


class NotaryNext(NotaryService):
    """The notary's next version: as the old one until the chain runs it, then one more event
    per anchor (a new version subclasses the old)."""

    version = UPGRADE_VERSION

    @tx_method(args=AnchorArgs, roles={ISSUER_ROLE})
    def anchor(self, ctx: TxContext, args: AnchorArgs) -> None:
        super().anchor(ctx, args)
        if ctx.get_service_version() == UPGRADE_VERSION:
            ctx.emit("notary.anchored_by_next")


class Registry(Service):
    """A service that the chain does not pin."""

    name = "registry"
    version = "1.0.0"


class SetParamArgs(StrictArgs):
    name: str
    value: bool | int | str


class UpgradeArgs(StrictArgs):
    service: str
    version: str
    height: int


class Tuner(Service):
    """A test service that sets parameters and schedules upgrades, as governance does."""

    name = "tuner"
    version = "1.0.0"
    params: ClassVar[dict[str, ParamSpec]] = {
        "label": ParamSpec(str, "city", "a label", minimum=1, maximum=8),
        "enabled": ParamSpec(bool, False, "a switch")}

    @tx_method(args=SetParamArgs, roles=None)
    def set(self, ctx: TxContext, args: SetParamArgs) -> None:
        ctx.set_param(args.name, args.value)

    @tx_method(args=UpgradeArgs, roles=None)
    def upgrade(self, ctx: TxContext, args: UpgradeArgs) -> None:
        ctx.schedule_upgrade(args.service, args.version, args.height)


class PrivilegedTuner(Tuner):
    privileges = frozenset({"params", "upgrades"})


def installed(*services: Service) -> dict[str, Service]:
    return {service.name: service for service in services}


def pin(genesis: Genesis, services: dict[str, Service]) -> Genesis:
    return dataclasses.replace(genesis, services=get_installed_versions(services))


def open_engine(path: Path, genesis: Genesis, services: dict[str, Service]) -> Engine:
    return Engine(genesis, BlockStore(path), services, verify_evidence_bytes)


# ---------------------------------------------------------------------- pinned versions


@pytest.mark.parametrize(("services", "expected"), [
    (installed(NotaryService()), "service 'gov' 1.0.0 is missing; install it"),
    (installed(NotaryService(), GovService(), Registry()),
     "service 'registry' 1.0.0 is installed but the chain does not run it; uninstall it"),
    (installed(NotaryNext(), GovService()),
     "service 'notary' is at version 1.1.0 but the chain runs 1.0.0; install notary 1.0.0"),
], ids=["missing", "extra", "other-version"])
def test_versions_mismatched_install_refused(chain: LocalChain, tmp_path: Path,
                                             services: dict[str, Service],
                                             expected: str) -> None:
    with pytest.raises(ServicesMismatch) as raised:
        open_engine(tmp_path / "other.sqlite", chain.genesis, services)
    assert raised.value.differences == [expected]
    assert expected in str(raised.value)


def test_versions_genesis_pins_installed_services(chain: LocalChain) -> None:
    assert chain.genesis.services == {"gov": "1.0.0", "notary": "1.0.0"}
    again = Genesis.from_json(chain.genesis.to_json())
    assert again == chain.genesis and again.hash() == chain.genesis.hash()
    unpinned = dataclasses.replace(chain.genesis, services={})
    assert unpinned.hash() != chain.genesis.hash()


def test_versions_genesis_refuses_malformed_pins(chain: LocalChain) -> None:
    from seoulchain.errors import DecodeError

    data = chain.genesis.to_json()
    for services in ({"notary": "one"}, {"Notary!": "1.0.0"}, ["notary"]):
        with pytest.raises(DecodeError):
            Genesis.from_json({**data, "services": services})


def test_versions_service_without_version_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from seoulchain.errors import LocalError
    from seoulchain.execution import service as service_module

    class Entry:
        name = "unversioned"

        def load(self) -> type[Service]:
            return type("Unversioned", (Service,), {"name": "unversioned"})

    monkeypatch.setattr(service_module, "entry_points", lambda group: [Entry()])
    with pytest.raises(LocalError, match="declares no semantic version"):
        load_services()


# ---------------------------------------------------------------------- upgrades


def schedule_notary_upgrade(chain: LocalChain, height: int) -> None:
    """Have governance (k = 1, the issuer's agency) schedule notary 1.1.0 from `height`."""
    proposal = chain.make_tx(service="gov", method="propose", args={
        "kind": "upgrade", "deadline_height": chain.engine.height + 10, "service": "notary",
        "version": UPGRADE_VERSION, "height": height})
    result = chain.commit(proposal).execution.results[0]
    assert result.code == ResultCode.OK, result.log


@pytest.fixture(autouse=True)
def chain_runs_notary_and_gov(monkeypatch: pytest.MonkeyPatch) -> None:
    """These stories are about two services: the chain pins and runs just notary and gov,
    whatever else this package installs."""
    monkeypatch.setattr(sys.modules[LocalChain.__module__], "load_services",
                        lambda: installed(NotaryService(), GovService()))


def install(monkeypatch: pytest.MonkeyPatch, *services: Service) -> None:
    """Make the chain's next (re)open load `services`, as a package upgrade does."""
    monkeypatch.setattr(sys.modules[LocalChain.__module__], "load_services",
                        lambda: installed(*services))


def test_upgrade_halts_node_lacking_version_before_height(chain: LocalChain) -> None:
    upgrade_height = chain.engine.height + 4
    schedule_notary_upgrade(chain, upgrade_height)
    while chain.engine.height < upgrade_height - 1:
        chain.commit(chain.make_tx())
    with pytest.raises(UpgradeRequired) as raised:
        chain.commit(chain.make_tx())
    assert chain.engine.height == upgrade_height - 1
    assert (raised.value.service, raised.value.version, raised.value.installed,
            raised.value.height) == ("notary", UPGRADE_VERSION, "1.0.0", upgrade_height)
    assert f"install notary {UPGRADE_VERSION}" in str(raised.value)
    # Restarted without the new version, the node refuses to start, naming it.
    with pytest.raises(ServicesMismatch, match=re.escape(f"install notary {UPGRADE_VERSION}")):
        chain.reopen()


def test_upgrade_node_with_version_runs_on(chain: LocalChain,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    upgrade_height = chain.engine.height + 4
    schedule_notary_upgrade(chain, upgrade_height)
    install(monkeypatch, NotaryNext(), GovService())
    chain.reopen()  # installed ahead of its height: accepted
    while chain.engine.height < upgrade_height + 2:
        result = chain.commit(chain.make_tx()).execution.results[0]
        assert result.code == ResultCode.OK, result.log
        kinds = [event.kind for event in result.events]
        next_events = ["notary.anchored_by_next"] if chain.engine.height >= upgrade_height else []
        assert kinds == ["notary.anchored", *next_events]
    assert chain.engine.get_chain_versions() == {"gov": "1.0.0", "notary": UPGRADE_VERSION}


def test_upgrade_validator_lacking_version_refuses_proposal(chain: LocalChain,
                                                            tmp_path: Path) -> None:
    upgrade_height = chain.engine.height + 3
    schedule_notary_upgrade(chain, upgrade_height)
    chain.commit(chain.make_tx())
    # A validator that has the version proposes height H; one that lacks it halts on it.
    lagging = open_engine(tmp_path / "lagging.sqlite", chain.genesis,
                          installed(NotaryService(), GovService()))
    for height in range(1, chain.engine.height + 1):
        block = chain.store.get_block(height)
        lagging.commit(block, chain.store.get_commit(height))
    # Replaying from genesis with the new version installed, as an audit does, needs the
    # upgrade named up front.
    proposer = Engine(chain.genesis, BlockStore(tmp_path / "upgraded.sqlite"),
                      installed(NotaryNext(), GovService()), verify_evidence_bytes,
                      known_upgrades=get_upgrades(chain.store))
    for height in range(1, chain.engine.height + 1):
        proposer.commit(chain.store.get_block(height), chain.store.get_commit(height))
    block = proposer.prepare_proposal(time_ms=chain.clock_ms + 1000,
                                      proposer=chain.validator.public_key, candidates=[],
                                      last_commit=chain.store.get_commit(chain.engine.height))
    with pytest.raises(UpgradeRequired):
        lagging.process_proposal(block)
    assert lagging.height == upgrade_height - 1


# ---------------------------------------------------------------------- parameters


def make_tuner_chain(path: Path, chain: LocalChain, tuner: Service) -> Engine:
    services = installed(NotaryService(), GovService(), tuner)
    return open_engine(path, pin(chain.genesis, services), services)


def run_tx(engine: Engine, chain: LocalChain, service: str, method: str,
           args: dict[str, object]) -> tuple[ResultCode, str]:
    """Execute one tx at the engine's next height and return its result code and log."""
    tx = chain.make_tx(service=service, method=method, args=args, nonce=1)  # nothing commits
    execution = engine.execute_block(engine.height + 1, chain.clock_ms + 1000, [tx.encode()],
                                     strict=True)
    result = execution.results[0]
    return result.code, result.log


def test_params_default_then_set_through_privileged_channel(chain: LocalChain,
                                                            tmp_path: Path) -> None:
    engine = make_tuner_chain(tmp_path / "tuner.sqlite", chain, PrivilegedTuner())
    values = {item["name"]: item["value"] for item in engine.get_params()}
    assert values == {METADATA_ENTRIES_PARAM: 16, "tuner.enabled": False,
                      "tuner.label": "city"}
    code, log = run_tx(engine, chain, "tuner", "set",
                       {"name": METADATA_ENTRIES_PARAM, "value": 1})
    assert code == ResultCode.OK, log


@pytest.mark.parametrize(("name", "value", "reason"), [
    ("notary.nonexistent", 1, "unknown parameter 'notary.nonexistent'"),
    (METADATA_ENTRIES_PARAM, "4", "takes an integer, not text"),
    (METADATA_ENTRIES_PARAM, True, "takes an integer, not true or false"),
    (METADATA_ENTRIES_PARAM, 17, "must be at most 16"),
    ("tuner.label", "", "length must be at least 1"),
], ids=["unknown", "wrong-type", "bool-for-int", "out-of-bounds", "too-short"])
def test_params_bad_name_or_value_refused(chain: LocalChain, tmp_path: Path, name: str,
                                          value: object, reason: str) -> None:
    engine = make_tuner_chain(tmp_path / "tuner.sqlite", chain, PrivilegedTuner())
    code, log = run_tx(engine, chain, "tuner", "set", {"name": name, "value": value})
    assert code == ResultCode.REFUSED and reason in log, log


def test_params_set_without_privilege_refused(chain: LocalChain, tmp_path: Path) -> None:
    engine = make_tuner_chain(tmp_path / "tuner.sqlite", chain, Tuner())
    code, log = run_tx(engine, chain, "tuner", "set",
                       {"name": METADATA_ENTRIES_PARAM, "value": 1})
    assert code == ResultCode.REFUSED
    assert "service 'tuner' lacks the privilege 'params'" in log
    code, log = run_tx(engine, chain, "tuner", "upgrade",
                       {"service": "notary", "version": UPGRADE_VERSION, "height": 9})
    assert "service 'tuner' lacks the privilege 'upgrades'" in log


def test_params_notary_reads_governed_metadata_bound(chain: LocalChain) -> None:
    proposal = chain.make_tx(service="gov", method="propose", args={
        "kind": "set_param", "deadline_height": chain.engine.height + 10,
        "param": METADATA_ENTRIES_PARAM, "value": 1})
    assert chain.commit(proposal).execution.results[0].code == ResultCode.OK
    two = chain.make_tx(args={"doc_hash": bytes(32), "kind": "permit",
                              "metadata": {"a": "1", "b": "2"}})
    result = chain.commit(two).execution.results[0]
    assert result.code == ResultCode.REFUSED
    assert "at most 1 (notary.metadata_entries_max)" in result.log
    one = chain.make_tx(args={"doc_hash": bytes(32), "kind": "permit", "metadata": {"a": "1"}})
    assert chain.commit(one).execution.results[0].code == ResultCode.OK


def test_upgrade_audit_replays_across_upgrade_with_new_version(
        chain: LocalChain, monkeypatch: pytest.MonkeyPatch) -> None:
    from seoulchain.client.audit import audit_chain

    upgrade_height = chain.engine.height + 3
    schedule_notary_upgrade(chain, upgrade_height)
    install(monkeypatch, NotaryNext(), GovService())
    chain.reopen()
    while chain.engine.height < upgrade_height + 1:
        chain.commit(chain.make_tx())
    report = audit_chain(chain.genesis, chain.store, installed(NotaryNext(), GovService()))
    assert report.ok, report.failure
    with pytest.raises(UpgradeRequired, match=f"from height {upgrade_height}"):
        audit_chain(chain.genesis, chain.store, installed(NotaryService(), GovService()))
    with pytest.raises(ServicesMismatch, match=re.escape("'registry' 1.0.0 is installed")):
        audit_chain(chain.genesis, chain.store,
                    installed(NotaryNext(), GovService(), Registry()))
