"""Verify credentials and presentations against the chain: what a verifier's office runs.

Theory of operation. A credential (W3C VC 2.0 with an `eddsa-rdfc-2022` proof) is checked
in this order, the first failure raising a `CredentialRejected` subclass named for it:

1. anchor: SHA-256 of the credential's canonical JSON (`compute_anchor_hash`) is anchored
   by `vc.issue`; the anchor gives the type, issuer DID, signing chain key and the
   issuance height;
2. type and issuer: the credential's type and issuer are the anchored ones;
3. proof: the Data Integrity proof verifies under the issuer DID's assertion key *as of
   the issuance height* (a key rotated away after issuance still verifies what it signed;
   one rotated away before does not);
4. role: the anchoring key held `vc.issuer.<type>` at the issuance height
   (`gov.role_history`);
5. validity: `validFrom` <= now < `validUntil`;
6. status: each `credentialStatus` entry's bit on chain (`vc.status`); a status list
   credential, when given, must be the one whose hash the issuer anchored.

A presentation is signed by the holder's DID authentication key over the verifier's
challenge and domain; a challenge is used once (`seen_challenges`), every credential in it
must name the holder as its subject and pass the checks above.
"""

from __future__ import annotations

import json
import random
from collections.abc import MutableSet
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from seoulchain.client.did import DidNotResolved, get_assertion_key, resolve_did
from seoulchain.client.http import NodeClient
from seoulchain.credentials import integrity
from seoulchain.credentials.errors import (
    ChallengeMismatch,
    CredentialError,
    CredentialUsageError,
    StatusListError,
)
from seoulchain.credentials.loader import CREDENTIALS_V2_URL, SEOULCHAIN_CREDENTIALS_V1_URL
from seoulchain.credentials.statuslist import (
    STATUS_ENTRY_TYPE,
    StatusList,
    build_status_entry,
    issuer_id,
    parse_index,
)
from seoulchain.crypto.hashing import sha256
from seoulchain.crypto.keys import SigningKey
from seoulchain.errors import LocalError, RemoteError, VerificationError
from seoulchain.services.did import find_verification_key
from seoulchain.services.vc import STATUS_LIST_ENTRIES_MAX, compute_role

# The JSON-LD credential types of seoulchain's context and the chain's credential types.
CREDENTIAL_TYPES = {
    "ResidencyCredential": "residency",
    "AgeBandCredential": "age-band",
    "YouthAllowanceEligibilityCredential": "youth-allowance",
    "BusinessLicenceCredential": "business-licence",
    "TrainingCertificateCredential": "training",
}
# A status list credential's id names its list on chain: this prefix, then the list id.
STATUS_LIST_URL_PREFIX = "urn:seoulchain:vc:status-list:"
PRESENTATION_TYPE = "VerifiablePresentation"
AUTHENTICATION = "authentication"
# Challenges a presentation may carry: a verifier's nonce, 16-128 characters in practice.
CHALLENGE_CHARS_MAX = 256
# Credentials one presentation may carry (each is verified against the chain).
PRESENTATION_CREDENTIALS_MAX = 8
# A presentation answers a challenge within minutes; an older one is refused, so a verifier
# needs to remember used challenges only this long. Clocks may differ by CLOCK_SKEW_S.
PRESENTATION_AGE_MAX_S = 600
CLOCK_SKEW_S = 60
# An XML datetime with fractions and a zone is under 40 characters.
DATETIME_CHARS_MAX = 64
# Random draws of a free status index before giving up: a list is at least 131,072 entries
# and an issuer keeps it under half full, so each draw is free with probability >= 1/2.
INDEX_DRAWS_MAX = 16


class CredentialRejected(VerificationError):
    """A credential or presentation fails a check; `check` names which."""

    check = "credential"

    def __init__(self, message: str, passed: list[str] | None = None):
        super().__init__(message)
        self.passed = passed or []


class NotAnchored(CredentialRejected):
    """No `vc.issue` anchored this credential's hash: altered, or never issued."""

    check = "anchor"


class WrongType(CredentialRejected):
    """The credential is not of the expected (or anchored) type."""

    check = "type"


class WrongIssuer(CredentialRejected):
    """The credential's issuer is not the anchored issuer DID."""

    check = "issuer"


class InvalidProof(CredentialRejected):
    """The proof does not verify under the issuer's key as of the issuance height."""

    check = "proof"


class IssuerRoleMissing(CredentialRejected):
    """The anchoring key did not hold the type's issuer role at the issuance height."""

    check = "role"


class NotYetValid(CredentialRejected):
    """The credential's validFrom is after now."""

    check = "validity"


class Expired(CredentialRejected):
    """The credential's validUntil is at or before now."""

    check = "validity"


class Revoked(CredentialRejected):
    """The credential's revocation bit is set on chain."""

    check = "status"


class Suspended(CredentialRejected):
    """The credential's suspension bit is set on chain."""

    check = "status"


class StatusUnavailable(CredentialRejected):
    """A status entry is malformed, names an unknown list, or its list credential is not
    the anchored one."""

    check = "status"


class PresentationRejected(CredentialRejected):
    """A presentation's proof, challenge, domain or holder binding fails."""

    check = "presentation"


class ChallengeReplayed(PresentationRejected):
    """The presentation's challenge was already used."""


@dataclass(frozen=True)
class StatusResult:
    """One status entry as the chain answers it."""

    list_id: str
    index: int
    purpose: str
    issuer: str
    is_set: bool
    set_height: int | None
    anchored_sha256: str | None
    anchor_current: bool

    @property
    def ok(self) -> bool:
        """Return True if the bit is clear (not revoked, not suspended)."""
        return not self.is_set


@dataclass
class CredentialReport:
    """What a verified credential is: its hash, type, issuer, issuance and the checks."""

    credential_hash: str
    type: str
    issuer: str
    issuance_height: int
    verification_method: str
    subject: str | None
    checks: list[str] = field(default_factory=list)
    statuses: list[StatusResult] = field(default_factory=list)


@dataclass
class PresentationReport:
    """A verified presentation: the holder and each of its credentials' reports."""

    holder: str
    challenge: str
    domain: str
    credentials: list[CredentialReport]


def compute_anchor_hash(credential: dict[str, Any]) -> bytes:
    """Return the hash `vc.issue` anchors: SHA-256 of the signed credential's canonical JSON
    (keys sorted, no spaces, UTF-8), so that re-indenting a file changes nothing."""
    text = json.dumps(credential, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return sha256(text.encode())


def compute_status_list_url(list_id: str) -> str:
    """Return the id of the status list credential of chain list `list_id`."""
    return STATUS_LIST_URL_PREFIX + list_id


def parse_status_list_url(url: Any) -> str:
    """Return the chain list id a status list credential id names."""
    if not isinstance(url, str) or not url.startswith(STATUS_LIST_URL_PREFIX) or \
            len(url) > len(STATUS_LIST_URL_PREFIX) + 64:
        raise StatusUnavailable(f"statusListCredential {url!r:.120} is not a seoulchain "
                                f"status list ({STATUS_LIST_URL_PREFIX}<list id>)")
    return url[len(STATUS_LIST_URL_PREFIX):]


def get_result(client: NodeClient, service: str, name: str, **args: Any) -> Any:
    """Return a query's result, refusing an answer that is not the API's shape."""
    answer = client.query(service, name, **args)
    if not isinstance(answer, dict) or "result" not in answer:
        raise RemoteError(f"the node's {service}.{name} answer has no result")
    return answer["result"]


def check_credential_status(client: NodeClient, entry: dict[str, Any]) -> StatusResult:
    """Return the chain's answer for a `BitstringStatusListEntry`, or raise
    `StatusUnavailable` if it is malformed or names no list or index on chain."""
    if not isinstance(entry, dict) or entry.get("type", STATUS_ENTRY_TYPE) != STATUS_ENTRY_TYPE:
        raise StatusUnavailable(f"a credentialStatus must be a {STATUS_ENTRY_TYPE}")
    list_id = parse_status_list_url(entry.get("statusListCredential"))
    try:
        index = parse_index(entry.get("statusListIndex"), STATUS_LIST_ENTRIES_MAX)
    except StatusListError as exc:
        raise StatusUnavailable(str(exc)) from None
    try:
        answer = get_result(client, "vc", "status", list_id=list_id, index=index)
    except RemoteError as exc:  # e.g. a list id the chain's schema refuses
        raise StatusUnavailable(f"the chain cannot answer for {list_id!r}: {exc}") from exc
    if answer is None:
        raise StatusUnavailable(f"status list {list_id!r} has no index {index} on chain")
    purpose = entry.get("statusPurpose")
    if purpose != answer["purpose"]:
        raise StatusUnavailable(f"the entry says {purpose!r} but list {list_id!r} is for "
                                f"{answer['purpose']!r}")
    anchor = answer["anchor"]
    return StatusResult(list_id=list_id, index=index, purpose=answer["purpose"],
                        issuer=answer["issuer"], is_set=bool(answer["set"]),
                        set_height=answer["set_height"],
                        anchored_sha256=None if anchor is None else anchor["sha256"],
                        anchor_current=bool(anchor and anchor["current"]))


def check_status_list_credential(client: NodeClient, list_credential: dict[str, Any]
                                 ) -> StatusList:
    """Return the bits of a status list credential whose SHA-256 its issuer anchored on
    chain and whose proof verifies under the issuer's key of the anchoring height."""
    list_id = parse_status_list_url(list_credential.get("id")
                                    if isinstance(list_credential, dict) else None)
    listing = get_result(client, "vc", "status_list", list_id=list_id)
    anchor = listing.get("anchor") if isinstance(listing, dict) else None
    digest = compute_anchor_hash(list_credential).hex()
    if anchor is None or anchor["sha256"] != digest:
        raise StatusUnavailable(f"the status list credential of {list_id!r} is not the one "
                                f"its issuer anchored on chain")
    if issuer_id(list_credential) != listing["issuer"]:
        raise StatusUnavailable(f"the status list credential of {list_id!r} names another "
                                f"issuer than the list's, {listing['issuer']}")
    verify_proof(client, list_credential, listing["issuer"], anchor["height"])
    try:
        return StatusList.decode(list_credential["credentialSubject"]["encodedList"])
    except (KeyError, TypeError, StatusListError) as exc:
        raise StatusUnavailable(f"the status list credential's list is unreadable: "
                                f"{exc}") from None


def verify_proof(client: NodeClient, document: dict[str, Any], issuer: str,
                 height: int) -> integrity.VerifiedProof:
    """Verify a document's proof by a key in `issuer`'s assertionMethod as of `height`."""
    def resolve_key(method: str, purpose: str) -> bytes:
        if method.partition("#")[0] != issuer:
            raise InvalidProof(f"the proof is by {method}, not by a key of {issuer}")
        return get_assertion_key(client, method, height)

    try:
        return integrity.verify(document, resolve_key)
    except CredentialRejected:
        raise
    except (VerificationError, CredentialError) as exc:
        raise InvalidProof(f"the proof does not verify under {issuer}'s keys as of height "
                           f"{height}: {exc}") from exc


def find_credential_type(credential: dict[str, Any], anchored: str,
                         expected_type: str | None) -> str:
    """Return the credential's chain type, refusing one that is not anchored or expected."""
    types = credential.get("type")
    names = types if isinstance(types, list) else [types]
    found = [CREDENTIAL_TYPES[name] for name in names if name in CREDENTIAL_TYPES]
    if found != [anchored]:
        raise WrongType(f"the credential's type {names!r:.120} is not the anchored type "
                        f"{anchored!r}")
    if expected_type is not None and anchored != expected_type:
        raise WrongType(f"the credential is a {anchored} credential, not {expected_type}")
    return anchored


def parse_time(value: Any, name: str) -> datetime:
    """Return a credential's XML datetime (with a zone) as an aware datetime."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) and \
            len(value) <= DATETIME_CHARS_MAX else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise CredentialRejected(f"{name} {value!r:.60} is not a date-time with a time zone")
    return moment


def check_validity(credential: dict[str, Any], now: datetime) -> None:
    """Refuse a credential outside its validity period at `now`."""
    if "validFrom" in credential and now < parse_time(credential["validFrom"], "validFrom"):
        raise NotYetValid(f"the credential is valid from {credential['validFrom']}, after "
                          f"{now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}")
    if "validUntil" in credential and \
            now >= parse_time(credential["validUntil"], "validUntil"):
        raise Expired(f"the credential expired at {credential['validUntil']}")


def check_statuses(client: NodeClient, credential: dict[str, Any], issuer: str,
                   list_credentials: dict[str, dict[str, Any]]) -> list[StatusResult]:
    """Return each status entry's chain answer, refusing a revoked or suspended credential,
    a list of another issuer, or a given list credential that disagrees with the chain."""
    entries = credential.get("credentialStatus", [])
    results = []
    for entry in entries if isinstance(entries, list) else [entries]:
        result = check_credential_status(client, entry)
        if result.issuer != issuer:
            raise StatusUnavailable(f"status list {result.list_id!r} belongs to "
                                    f"{result.issuer}, not to the issuer {issuer}")
        list_credential = list_credentials.get(compute_status_list_url(result.list_id))
        if list_credential is not None and result.anchor_current:
            bits = check_status_list_credential(client, list_credential)
            if result.index >= bits.length or bits.get(result.index) != result.is_set:
                raise StatusUnavailable(f"the status list credential of {result.list_id!r} "
                                        f"disagrees with the chain at index {result.index}")
        if result.is_set:
            error = Revoked if result.purpose == "revocation" else Suspended
            raise error(f"the credential was {'revoked' if error is Revoked else 'suspended'}"
                        f" at height {result.set_height} ({result.list_id} #{result.index})")
        results.append(result)
    return results


def check_anchored_statuses(statuses: list[StatusResult], anchored: list[dict[str, Any]]
                            ) -> None:
    """Refuse status entries other than those the issuer anchored with the credential."""
    given = sorted((status.list_id, status.index) for status in statuses)
    recorded = sorted((entry["list_id"], entry["index"]) for entry in anchored)
    if given != recorded:
        raise StatusUnavailable(f"the credential's status entries {given} are not the "
                                f"anchored ones {recorded}")


def verify_credential(client: NodeClient, credential: dict[str, Any], *, now: datetime,
                      expected_type: str | None = None,
                      status_list_credentials: dict[str, dict[str, Any]] | None = None
                      ) -> CredentialReport:
    """Verify a credential against the chain (see the module's docstring for the checks);
    return its report or raise the `CredentialRejected` of the first failing check."""
    passed: list[str] = []
    try:
        return run_checks(client, credential, now, expected_type,
                          status_list_credentials or {}, passed)
    except CredentialRejected as exc:
        exc.passed = passed
        raise


def run_checks(client: NodeClient, credential: dict[str, Any], now: datetime,
               expected_type: str | None, list_credentials: dict[str, dict[str, Any]],
               passed: list[str]) -> CredentialReport:
    """Run the checks in order, appending each passed one's description to `passed`."""
    if not isinstance(credential, dict):
        raise CredentialRejected("a credential is a JSON object")
    digest = compute_anchor_hash(credential)
    anchor = get_result(client, "vc", "anchor", hash=digest.hex())
    if anchor is None:
        raise NotAnchored(f"credential {digest.hex()} is not anchored on chain: it was "
                          f"altered after signing, or never issued")
    height = anchor["height"]
    passed.append(f"anchor: issued at height {height}")
    kind = find_credential_type(credential, anchor["type"], expected_type)
    if issuer_id(credential) != anchor["issuer"]:
        raise WrongIssuer(f"the credential names issuer {issuer_id(credential)!r}, the "
                          f"anchor {anchor['issuer']}")
    passed.append(f"type and issuer: {kind} by {anchor['issuer']}")
    proof = verify_proof(client, credential, anchor["issuer"], height)
    passed.append(f"proof: {proof.verification_method} as of height {height}")
    role = compute_role(kind)
    history = get_result(client, "gov", "role_history", role=role,
                         public_key=anchor["signer"], height=height)
    if not history["held"]:
        raise IssuerRoleMissing(f"key {anchor['signer']} did not hold {role} at the "
                                f"issuance height {height}")
    passed.append(f"role: {role} held at height {height}")
    check_validity(credential, now)
    passed.append("validity: within validFrom/validUntil")
    statuses = check_statuses(client, credential, anchor["issuer"], list_credentials)
    check_anchored_statuses(statuses, anchor["status"])
    passed.append(f"status: {len(statuses)} entries clear")
    subject = credential.get("credentialSubject")
    return CredentialReport(credential_hash=digest.hex(), type=kind, issuer=anchor["issuer"],
                            issuance_height=height,
                            verification_method=proof.verification_method,
                            subject=subject.get("id") if isinstance(subject, dict) else None,
                            checks=list(passed), statuses=statuses)


def build_credential(kind: str, issuer: str, subject: str, claims: dict[str, Any],
                     valid_from: datetime, valid_until: datetime | None,
                     status: list[dict[str, Any]], credential_id: str | None = None
                     ) -> dict[str, Any]:
    """Return an unsigned credential of chain type `kind` about `subject` with `claims`
    (with `credential_id`, e.g. a `urn:uuid:`, as its id if given)."""
    names = {chain_type: name for name, chain_type in CREDENTIAL_TYPES.items()}
    if kind not in names:
        raise CredentialUsageError(f"credential type must be one of {sorted(names)}")
    if "id" in claims:
        raise CredentialUsageError("claims may not set the subject's id")
    credential: dict[str, Any] = {
        "@context": [CREDENTIALS_V2_URL, SEOULCHAIN_CREDENTIALS_V1_URL]}
    if credential_id is not None:
        credential["id"] = credential_id
    credential.update({"type": ["VerifiableCredential", names[kind]], "issuer": issuer,
                       "validFrom": format_time(valid_from)})
    if valid_until is not None:
        credential["validUntil"] = format_time(valid_until)
    credential["credentialSubject"] = {"id": subject, **claims}
    if status:
        credential["credentialStatus"] = status
    return credential


def build_presentation(credentials: list[dict[str, Any]], holder: str, key: SigningKey,
                       method: str, challenge: str, domain: str,
                       created: datetime) -> dict[str, Any]:
    """Return a presentation of `credentials` signed by the holder's authentication key
    `method` over the verifier's challenge and domain."""
    presentation = {"@context": [CREDENTIALS_V2_URL], "type": [PRESENTATION_TYPE],
                    "holder": holder, "verifiableCredential": credentials}
    return integrity.sign(presentation, key, method, created, proof_purpose=AUTHENTICATION,
                          challenge=challenge, domain=domain)


def format_time(moment: datetime) -> str:
    """Return an aware datetime as a credential's XML datetime (UTC, whole seconds)."""
    if moment.tzinfo is None:
        raise CredentialUsageError("credential times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def get_authentication_key(client: NodeClient, method: str) -> bytes:
    """Return the Ed25519 key of a verification method in its DID's current authentication."""
    did = method.partition("#")[0]
    result = resolve_did(client, did)
    document = result["didDocument"]
    if document is None or result["didDocumentMetadata"].get("deactivated") is True:
        error = result["didResolutionMetadata"].get("error", "deactivated")
        raise DidNotResolved(did, str(error), "no active document")
    return find_verification_key(document, method, AUTHENTICATION)


def verify_presentation(client: NodeClient, vp: dict[str, Any], challenge: str, domain: str,
                        seen_challenges: MutableSet[str], *, now: datetime | None = None,
                        expected_type: str | None = None) -> PresentationReport:
    """Verify a presentation: the holder's proof over `challenge` and `domain`, a challenge
    not seen before, each credential's subject being the holder and each credential valid."""
    if not isinstance(challenge, str) or not 0 < len(challenge) <= CHALLENGE_CHARS_MAX:
        raise PresentationRejected(f"a challenge is 1 to {CHALLENGE_CHARS_MAX} characters")
    if challenge in seen_challenges:
        raise ChallengeReplayed(f"challenge {challenge!r:.60} was already used: a "
                                f"presentation is accepted once")
    holder = vp.get("holder") if isinstance(vp, dict) else None
    types = vp.get("type") if isinstance(vp, dict) else None
    if not isinstance(holder, str) or not isinstance(types, list) or \
            PRESENTATION_TYPE not in types:
        raise PresentationRejected(f"a presentation is a {PRESENTATION_TYPE} with a holder")
    now = now or datetime.now(UTC)
    proof = verify_holder_proof(client, vp, holder, challenge, domain)
    check_presentation_age(proof, now)
    seen_challenges.add(challenge)
    credentials = vp.get("verifiableCredential", [])
    credentials = credentials if isinstance(credentials, list) else [credentials]
    if not 0 < len(credentials) <= PRESENTATION_CREDENTIALS_MAX:
        raise PresentationRejected(f"a presentation carries 1 to "
                                   f"{PRESENTATION_CREDENTIALS_MAX} credentials")
    reports = []
    for credential in credentials:
        report = verify_credential(client, credential, now=now, expected_type=expected_type)
        if report.subject != holder:
            raise PresentationRejected(f"the credential's subject {report.subject} is not "
                                       f"the presentation's holder {holder}")
        reports.append(report)
    return PresentationReport(holder=holder, challenge=challenge, domain=domain,
                              credentials=reports)


def check_presentation_age(proof: integrity.VerifiedProof, now: datetime) -> None:
    """Refuse a presentation made more than PRESENTATION_AGE_MAX_S before `now` (or
    later than `now`, beyond the clocks' skew)."""
    created = parse_time(proof.created, "the presentation's proof created")
    age_s = (now - created).total_seconds()
    if not -CLOCK_SKEW_S <= age_s <= PRESENTATION_AGE_MAX_S:
        raise PresentationRejected(f"the presentation was made at {proof.created}; a "
                                   f"verifier accepts one made in the last "
                                   f"{PRESENTATION_AGE_MAX_S} s")


def verify_holder_proof(client: NodeClient, vp: dict[str, Any], holder: str, challenge: str,
                        domain: str) -> integrity.VerifiedProof:
    """Verify the presentation's proof by a current authentication key of `holder` over
    the verifier's challenge and domain."""
    def resolve_key(method: str, purpose: str) -> bytes:
        if method.partition("#")[0] != holder:
            raise PresentationRejected(f"the presentation is signed by {method}, not by a "
                                       f"key of its holder {holder}")
        return get_authentication_key(client, method)

    try:
        return integrity.verify(vp, resolve_key, proof_purpose=AUTHENTICATION,
                                challenge=challenge, domain=domain)
    except CredentialRejected:
        raise
    except ChallengeMismatch as exc:
        raise PresentationRejected(f"wrong challenge or domain: {exc}") from exc
    except (VerificationError, CredentialError) as exc:
        raise PresentationRejected(f"the holder's proof does not verify: {exc}") from exc


def draw_status_entry(client: NodeClient, list_id: str, purpose: str) -> dict[str, Any]:
    """Return a status entry at a random index of `list_id` no credential was given yet."""
    listing = get_result(client, "vc", "status_list", list_id=list_id)
    if listing is None:
        raise LocalError(f"status list {list_id!r} does not exist on this chain")
    if listing["purpose"] != purpose:
        raise LocalError(f"status list {list_id!r} is for {listing['purpose']}, not {purpose}")
    rng = random.SystemRandom()
    for _ in range(INDEX_DRAWS_MAX):
        index = rng.randrange(listing["size"])
        if get_result(client, "vc", "status", list_id=list_id,
                      index=index)["credential"] is None:
            return build_status_entry(compute_status_list_url(list_id), index, purpose)
    raise LocalError(f"no free index of {list_id!r} in {INDEX_DRAWS_MAX} draws: the list is "
                     f"nearly full; create another")
