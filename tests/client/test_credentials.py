"""Credential verification against a chain: anchors, proofs as of the issuance height, issuer
roles, validity, status and presentations, and each way a credential is rejected.

The chain is a LocalChain; the client reaches its engine through the HTTP client's own code
(an httpx transport answering `/v1/query/...` as the API does).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from seoulchain.client.credentials import (
    PRESENTATION_AGE_MAX_S,
    ChallengeReplayed,
    Expired,
    InvalidProof,
    IssuerRoleMissing,
    NotAnchored,
    NotYetValid,
    PresentationRejected,
    Revoked,
    StatusUnavailable,
    Suspended,
    WrongType,
    build_credential,
    build_presentation,
    check_credential_status,
    compute_anchor_hash,
    compute_status_list_url,
    verify_credential,
    verify_presentation,
)
from seoulchain.client.http import NodeClient
from seoulchain.codec.jsonview import to_jsonable
from seoulchain.credentials import integrity
from seoulchain.credentials.statuslist import (
    StatusList,
    build_status_entry,
    build_status_list_credential,
)
from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError
from tests.conftest import LocalChain, make_key
from tests.services.gov_helpers import propose
from tests.services.vc_helpers import (
    AGENCY,
    HOLDER,
    LIST_SIZE,
    RESIDENCY_ROLE,
    STRANGER,
    create_did,
    make_vc_chain,
    send,
    set_up_issuer,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
NEW_AGENCY = make_key(33)
CHALLENGE, DOMAIN = "c-8f2a61", "verifier.seoul.go.kr"


def make_transport(chain: LocalChain) -> httpx.MockTransport:
    """Answer `/v1/status` and `/v1/query/{service}/{name}` from the chain's engine, as
    the API does."""
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/status":
            return httpx.Response(200, json={"height": chain.engine.height})
        _, _, service, name = request.url.path.strip("/").split("/")
        try:
            result = chain.engine.query(service, name, dict(request.url.params))
        except LocalError as exc:
            return httpx.Response(400, json={"title": "bad_query", "detail": str(exc)})
        return httpx.Response(200, json={"height": chain.engine.height,
                                         "result": to_jsonable(result)})
    return httpx.MockTransport(answer)


@dataclass
class World:
    chain: LocalChain
    client: NodeClient
    issuer: str
    holder: str

    def issue(self, key: SigningKey = AGENCY, method: str | None = None,
              valid_until: datetime | None = NOW + timedelta(days=365),
              valid_from: datetime = NOW - timedelta(days=1), index: int = 7,
              anchor_key: SigningKey = AGENCY, **claims: Any) -> dict[str, Any]:
        """Sign a residency credential for the holder and anchor it; return it."""
        status = [build_status_entry(compute_status_list_url("residency-1"), index),
                  build_status_entry(compute_status_list_url("hold-1"), index, "suspension")]
        unsigned = build_credential("residency", self.issuer, self.holder,
                                    claims or {"residentOf": "Jongno-gu"}, valid_from,
                                    valid_until, status)
        credential = integrity.sign(unsigned, key, method or f"{self.issuer}#key-1", NOW)
        result = self.anchor(credential, anchor_key, index)
        assert result.ok, result.log
        return credential

    def anchor(self, credential: dict[str, Any], key: SigningKey = AGENCY,
               index: int = 7) -> Any:
        result = send(self.chain, key, "vc", "issue",
                      credential_hash=compute_anchor_hash(credential), type="residency",
                      issuer=self.issuer,
                      status=[{"list_id": "residency-1", "index": index},
                              {"list_id": "hold-1", "index": index}])
        return result

    def set_status(self, list_id: str, index: int, value: bool) -> None:
        result = send(self.chain, AGENCY, "vc", "set_status", list_id=list_id, index=index,
                      value=value)
        assert result.ok, result.log

    def verify(self, credential: dict[str, Any], **options: Any) -> Any:
        return verify_credential(self.client, credential, now=NOW, **options)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    chain = make_vc_chain(tmp_path / "vc.sqlite")
    issuer = set_up_issuer(chain)
    created = send(chain, AGENCY, "vc", "create_status_list", list_id="hold-1", issuer=issuer,
                   purpose="suspension", size=LIST_SIZE)
    assert created.ok, created.log
    holder = create_did(chain, HOLDER)
    client = NodeClient("http://node:1", transport=make_transport(chain))
    yield World(chain, client, issuer, holder)
    client.close()
    chain.store.close()


def present(world: World, credential: dict[str, Any], key: SigningKey = HOLDER,
            challenge: str = CHALLENGE, domain: str = DOMAIN) -> dict[str, Any]:
    return build_presentation([credential], world.holder, key, f"{world.holder}#key-1",
                              challenge, domain, NOW)


def test_a_valid_credential_passes_every_check(world: World) -> None:
    credential = world.issue()
    report = world.verify(credential, expected_type="residency")
    assert report.issuer == world.issuer and report.subject == world.holder
    assert report.verification_method == f"{world.issuer}#key-1"
    assert [check.split(":")[0] for check in report.checks] == \
        ["anchor", "type and issuer", "proof", "role", "validity", "status"]
    assert [status.purpose for status in report.statuses] == ["revocation", "suspension"]
    # Re-indenting the file changes nothing: the anchor is over canonical JSON.
    assert world.verify(json.loads(json.dumps(credential, indent=4))).credential_hash == \
        report.credential_hash


def test_an_expired_or_not_yet_valid_credential_is_rejected(world: World) -> None:
    expired = world.issue(valid_until=NOW - timedelta(seconds=1))
    with pytest.raises(Expired, match="expired at"):
        world.verify(expired)
    early = world.issue(valid_from=NOW + timedelta(days=1), index=8)
    with pytest.raises(NotYetValid) as caught:
        world.verify(early)
    assert [check.split(":")[0] for check in caught.value.passed] == \
        ["anchor", "type and issuer", "proof", "role"]


def test_a_revoked_credential_is_rejected(world: World) -> None:
    credential = world.issue()
    world.set_status("residency-1", 7, True)
    with pytest.raises(Revoked, match=f"revoked at height {world.chain.engine.height}"):
        world.verify(credential)


def test_a_suspension_rejects_until_it_is_lifted(world: World) -> None:
    credential = world.issue()
    world.set_status("hold-1", 7, True)
    with pytest.raises(Suspended):
        world.verify(credential)
    world.set_status("hold-1", 7, False)
    assert world.verify(credential).statuses[1].is_set is False


def test_a_credential_tampered_by_one_byte_is_rejected(world: World) -> None:
    credential = world.issue()
    tampered = json.loads(json.dumps(credential))
    tampered["credentialSubject"]["residentOf"] = "Jongno-gv"
    with pytest.raises(NotAnchored, match="altered after signing"):
        world.verify(tampered)
    # Even anchored by the issuer, the altered credential's proof does not verify.
    assert world.anchor(tampered, index=9).ok
    with pytest.raises(InvalidProof, match="does not verify"):
        world.verify(tampered)


def test_a_credential_signed_by_a_rotated_away_key_is_rejected(world: World) -> None:
    before = world.issue()
    rotated = send(world.chain, AGENCY, "did", "rotate", did=world.issuer,
                   new_public_key=NEW_AGENCY.public_key, retire_key_id="key-1")
    assert rotated.ok, rotated.log
    granted = propose(world.chain, world.chain.issuer, "grant_role", role=RESIDENCY_ROLE,
                      public_key=NEW_AGENCY.public_key)
    assert granted.ok, granted.log
    stale = world.issue(key=AGENCY, anchor_key=NEW_AGENCY, index=11)
    with pytest.raises(InvalidProof, match="key-1 is not in the assertionMethod"):
        world.verify(stale)
    # What the old key signed before the rotation stays valid: keys resolve as of issuance.
    assert world.verify(before).verification_method == f"{world.issuer}#key-1"
    fresh = world.issue(key=NEW_AGENCY, method=f"{world.issuer}#key-2",
                        anchor_key=NEW_AGENCY, index=12)
    assert world.verify(fresh).verification_method == f"{world.issuer}#key-2"


def test_an_issuer_whose_role_was_revoked_before_issuance_is_rejected(world: World) -> None:
    before = world.issue()
    revoked = propose(world.chain, world.chain.issuer, "revoke_role", role=RESIDENCY_ROLE,
                      public_key=AGENCY.public_key)
    assert revoked.ok, revoked.log
    unsigned = build_credential("residency", world.issuer, world.holder,
                                {"residentOf": "Mapo-gu"}, NOW, None, [])
    after = integrity.sign(unsigned, AGENCY, f"{world.issuer}#key-1", NOW)
    assert "does not hold vc.issuer.residency" in world.anchor(after).log
    with pytest.raises(NotAnchored):
        world.verify(after)
    # A credential issued while the role was held stays valid after the revocation.
    assert world.verify(before).checks[3].startswith("role: vc.issuer.residency held")


def test_a_credential_anchored_in_the_block_that_revoked_the_role_is_rejected(
        world: World) -> None:
    unsigned = build_credential("residency", world.issuer, world.holder,
                                {"residentOf": "11140"}, NOW, None, [])
    credential = integrity.sign(unsigned, AGENCY, f"{world.issuer}#key-1", NOW)
    anchor = world.chain.make_tx(AGENCY, service="vc", method="issue", args={
        "credential_hash": compute_anchor_hash(credential), "type": "residency",
        "issuer": world.issuer})
    revoke = world.chain.make_tx(world.chain.issuer, service="gov", method="propose", args={
        "kind": "revoke_role", "deadline_height": world.chain.engine.height + 10,
        "role": RESIDENCY_ROLE, "public_key": AGENCY.public_key})
    results = world.chain.commit(anchor, revoke).execution.results
    assert [result.ok for result in results] == [True, True]
    with pytest.raises(IssuerRoleMissing, match=r"did not hold vc\.issuer\.residency"):
        world.verify(credential)


def test_a_credential_of_another_type_than_expected_is_rejected(world: World) -> None:
    with pytest.raises(WrongType, match="not training"):
        world.verify(world.issue(), expected_type="training")


def test_a_presentation_is_accepted_once_for_its_challenge_and_domain(world: World) -> None:
    credential = world.issue()
    seen: set[str] = set()
    report = verify_presentation(world.client, present(world, credential), CHALLENGE, DOMAIN,
                                 seen, now=NOW)
    assert report.holder == world.holder and len(report.credentials) == 1
    assert seen == {CHALLENGE}
    with pytest.raises(ChallengeReplayed, match="already used"):
        verify_presentation(world.client, present(world, credential), CHALLENGE, DOMAIN,
                            seen, now=NOW)


def test_a_presentation_for_another_challenge_or_domain_is_rejected(world: World) -> None:
    credential = world.issue()
    presentation = present(world, credential)
    with pytest.raises(PresentationRejected, match="wrong challenge or domain"):
        verify_presentation(world.client, presentation, "c-other", DOMAIN, set(), now=NOW)
    with pytest.raises(PresentationRejected, match="wrong challenge or domain"):
        verify_presentation(world.client, presentation, CHALLENGE, "evil.example", set(),
                            now=NOW)


def test_a_stale_presentation_is_rejected(world: World) -> None:
    credential = world.issue()
    later = NOW + timedelta(seconds=PRESENTATION_AGE_MAX_S + 1)
    with pytest.raises(PresentationRejected, match="accepts one made in the last"):
        verify_presentation(world.client, present(world, credential), CHALLENGE, DOMAIN,
                            set(), now=later)


def test_a_presentation_not_signed_by_the_subject_is_rejected(world: World) -> None:
    credential = world.issue()
    forged = present(world, credential, key=STRANGER)
    with pytest.raises(PresentationRejected, match="does not verify"):
        verify_presentation(world.client, forged, CHALLENGE, DOMAIN, set(), now=NOW)
    stranger = create_did(world.chain, STRANGER)
    borrowed = build_presentation([credential], stranger, STRANGER, f"{stranger}#key-1",
                                  CHALLENGE, DOMAIN, NOW)
    with pytest.raises(PresentationRejected, match="is not the presentation's holder"):
        verify_presentation(world.client, borrowed, CHALLENGE, DOMAIN, set(), now=NOW)


def test_check_credential_status_answers_and_refuses_bad_entries(world: World) -> None:
    entry = build_status_entry(compute_status_list_url("residency-1"), 5)
    assert check_credential_status(world.client, entry).ok
    world.set_status("residency-1", 5, True)
    result = check_credential_status(world.client, entry)
    assert result.is_set and result.set_height == world.chain.engine.height
    bad_entries = [
        {**entry, "statusListCredential": "https://example.com/list"},
        {**entry, "statusListIndex": "-1"},
        {**entry, "statusListIndex": str(LIST_SIZE)},
        {**entry, "statusListCredential": compute_status_list_url("nope")},
        {**entry, "statusListCredential": compute_status_list_url("Not_A_List_Id")},
        {**entry, "type": "StatusList2021Entry"},
        {**entry, "statusPurpose": "suspension"},
    ]
    for bad in bad_entries:
        with pytest.raises(StatusUnavailable):
            check_credential_status(world.client, bad)


def test_the_status_list_credential_must_be_the_anchored_one(world: World) -> None:
    credential = world.issue()
    url = compute_status_list_url("residency-1")
    bits = StatusList(LIST_SIZE)
    signed = integrity.sign(build_status_list_credential(url, world.issuer, bits),
                            AGENCY, f"{world.issuer}#key-1", NOW)
    result = send(world.chain, AGENCY, "vc", "anchor_status_list", list_id="residency-1",
                  sha256=compute_anchor_hash(signed))
    assert result.ok, result.log
    report = world.verify(credential, status_list_credentials={url: signed})
    assert report.statuses[0].anchored_sha256 == compute_anchor_hash(signed).hex()
    bits.set(7, True)
    other = integrity.sign(build_status_list_credential(url, world.issuer, bits),
                           AGENCY, f"{world.issuer}#key-1", NOW)
    with pytest.raises(StatusUnavailable, match="not the one its issuer anchored"):
        world.verify(credential, status_list_credentials={url: other})


def test_status_entries_other_than_the_anchored_ones_are_rejected(world: World) -> None:
    status = [build_status_entry(compute_status_list_url("residency-1"), 7),
              build_status_entry(compute_status_list_url("hold-1"), 7, "suspension")]
    unsigned = build_credential("residency", world.issuer, world.holder,
                                {"residentOf": "Jung-gu"}, NOW, None, status)
    credential = integrity.sign(unsigned, AGENCY, f"{world.issuer}#key-1", NOW)
    assert world.anchor(credential, index=9).ok
    with pytest.raises(StatusUnavailable, match="not the anchored ones"):
        world.verify(credential)


def test_an_unsigned_random_document_is_not_anchored(world: World) -> None:
    with pytest.raises(NotAnchored):
        world.verify({"@context": [], "id": os.urandom(4).hex()})
