"""Polls of a credential type's holders: the chain caps their credentials at the type's live
credentials, which `vc` counts (anchored, less revoked) from version 1.1.0 on."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seoulchain.execution.results import TxResult
from seoulchain.execution.service import load_services
from seoulchain.services.vc import VcService
from seoulchain.voting import (
    BELENIOS_2048,
    compute_public_credential,
    generate_credential,
    generate_trustee_key,
    parse_election,
)
from seoulchain.voting.jsonform import dump_json
from tests.conftest import LocalChain, make_key
from tests.services import vote_helpers
from tests.services.test_vc import vc_entries
from tests.services.vc_helpers import AGENCY, make_vc_genesis, send, set_up_issuer
from tests.services.vote_helpers import ROLE, create_args, outcome

ORGANISER = make_key(2)
TRUSTEE_PAIR = generate_trustee_key(BELENIOS_2048)
TRUSTEES = [{"chain_key": make_key(5).public_key,
             "public_key": dump_json(TRUSTEE_PAIR.public.to_json())}]


class VcV10(VcService):
    """The installed vc code declared as 1.0.0: it runs as 1.0.0 on a chain pinning it."""

    version = "1.0.0"


def make_chain(path: Path) -> LocalChain:
    """A chain with a residency issuer (AGENCY) and key 2 as DID registrar and organiser."""
    genesis = make_vc_genesis()
    genesis.roles[ROLE] = (ORGANISER.public_key,)
    return LocalChain(path, genesis, make_key(1), ORGANISER)


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[LocalChain]:
    local = make_chain(tmp_path / "eligibility.sqlite")
    set_up_issuer(local)
    yield local
    local.store.close()


@pytest.fixture
def old_chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalChain]:
    """A chain whose genesis pins vc 1.0.0, which keeps no counts."""
    services = {**load_services(), "vc": VcV10()}
    monkeypatch.setattr(sys.modules[LocalChain.__module__], "load_services", lambda: services)
    genesis = make_vc_genesis()
    genesis.roles[ROLE] = (ORGANISER.public_key,)
    genesis.services["vc"] = "1.0.0"
    local = LocalChain(tmp_path / "old.sqlite", genesis, make_key(1), ORGANISER)
    set_up_issuer(local)
    yield local
    local.store.close()


def anchor(chain: LocalChain, index: int, credential_type: str = "residency") -> None:
    """Anchor a residency credential's hash with revocation index `index`."""
    result = send(chain, AGENCY, "vc", "issue", credential_hash=os.urandom(32),
                  type=credential_type, issuer=get_issuer(chain),
                  status=[{"list_id": "residency-1", "index": index}])
    assert result.ok, result.log


def get_issuer(chain: LocalChain) -> str:
    return str(chain.engine.query("vc", "status_list", {"list_id": "residency-1"})["issuer"])


def revoke(chain: LocalChain, index: int) -> None:
    result = send(chain, AGENCY, "vc", "set_status", list_id="residency-1", index=index,
                  value=True)
    assert result.ok, result.log


def count(chain: LocalChain) -> dict[str, Any]:
    return chain.engine.query("vc", "count", {"type": "residency"})


def create_poll(chain: LocalChain, poll_id: str, eligibility: dict[str, Any]) -> None:
    result = vote_helpers.send(chain, "create_poll", **create_args(
        chain, poll_id, eligibility=eligibility, trustees=TRUSTEES, threshold=1,
        open_height=chain.engine.height + 30, close_height=chain.engine.height + 60))
    assert result.ok, outcome(result)


def publish(chain: LocalChain, poll_id: str, voters: int) -> TxResult:
    election = chain.engine.query("vote", "poll", {"poll_id": poll_id})["election"]
    election_uuid = parse_election(election.encode()).uuid
    public = [str(compute_public_credential(BELENIOS_2048, election_uuid,
                                            generate_credential())) for _ in range(voters)]
    return vote_helpers.send(chain, "add_credentials", poll_id=poll_id, credentials=public)


RESIDENTS = {"kind": "credential", "credential_type": "residency"}


def test_vc_counts_anchors_and_revocations_of_each_type(chain: LocalChain) -> None:
    for index in (1, 2, 3):
        anchor(chain, index)
    revoke(chain, 2)
    revoke(chain, 50)  # an index no credential was given: nothing to count
    assert count(chain) == {"anchored": 3, "revoked": 1, "live": 2}
    # A credential given an index whose revocation bit is already set is born revoked.
    anchor(chain, 50)
    assert count(chain) == {"anchored": 4, "revoked": 2, "live": 2}
    assert chain.engine.query("vc", "count", {"type": "training"})["live"] == 0
    assert VcService().check_invariants(vc_entries(chain)) == []


def test_vc_invariants_check_the_counts_against_the_anchors(chain: LocalChain) -> None:
    anchor(chain, 1)
    anchor(chain, 2)
    revoke(chain, 1)
    service = VcService()
    entries = vc_entries(chain)
    assert service.check_invariants(entries) == []
    forged = [(key, {"anchored": 3, "revoked": 1}) if key == b"count/residency" else
              (key, value) for key, value in entries]
    assert service.check_invariants(forged) == [
        "residency credentials: counts say {'anchored': 3, 'revoked': 1} but the anchors "
        "give {'anchored': 2, 'revoked': 1}"]


def test_add_credentials_refuses_more_than_the_live_credentials_of_the_type(
        chain: LocalChain) -> None:
    for index in (1, 2, 3):
        anchor(chain, index)
    revoke(chain, 3)
    create_poll(chain, "ward-budget", RESIDENTS)
    refused = publish(chain, "ward-budget", 3)
    assert not refused.ok
    assert (f"this would publish 3 credentials for a poll of residency holders, but only 2 "
            f"residency credentials are anchored and not revoked at height "
            f"{chain.engine.height}") in refused.log
    assert publish(chain, "ward-budget", 2).ok
    # The cap is on the poll's total: one more is refused, until another is anchored.
    assert "publish 3 credentials" in publish(chain, "ward-budget", 1).log
    anchor(chain, 4)
    assert publish(chain, "ward-budget", 1).ok
    assert chain.engine.query("vote", "poll", {"poll_id": "ward-budget"})[
        "credentials_count"] == 3


def test_a_revocation_after_publication_lowers_the_cap_for_later_batches(
        chain: LocalChain) -> None:
    anchor(chain, 1)
    anchor(chain, 2)
    create_poll(chain, "night-bus", RESIDENTS)
    assert publish(chain, "night-bus", 1).ok
    revoke(chain, 1)
    assert "but only 1 residency" in publish(chain, "night-bus", 1).log


def test_a_poll_of_another_type_counts_that_type_only(chain: LocalChain) -> None:
    anchor(chain, 1)
    create_poll(chain, "youth-forum", {"kind": "credential",
                                       "credential_type": "youth-allowance"})
    assert "but only 0 youth-allowance" in publish(chain, "youth-forum", 1).log


def test_a_list_poll_is_not_capped_by_credentials(chain: LocalChain) -> None:
    create_poll(chain, "tenants", {"kind": "list", "list_hash": vote_helpers.LIST_HASH})
    assert publish(chain, "tenants", 4).ok


def test_a_chain_running_vc_1_0_0_keeps_no_counts_and_no_cap(old_chain: LocalChain) -> None:
    anchor(old_chain, 1)
    revoke(old_chain, 1)
    assert count(old_chain) == {"anchored": 0, "revoked": 0, "live": 0}
    anchored = old_chain.engine.query("vc", "status", {"list_id": "residency-1", "index": 1})
    assert "counted" not in old_chain.engine.query("vc", "anchor",
                                                   {"hash": anchored["credential"].hex()})
    create_poll(old_chain, "ward-budget", RESIDENTS)
    assert publish(old_chain, "ward-budget", 2).ok
