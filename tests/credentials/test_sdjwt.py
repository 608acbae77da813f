"""Eligibility answers from SD-JWT VCs: the holder discloses only what a question needs, and
the verifier answers yes or no, refusing every answer that does not verify.

The issuer's key is looked up in a real did:seoul document (services/did.py), as the CLI
does through a node.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.issuer import SDJWTIssuer

from seoulchain.credentials import sdjwt
from seoulchain.credentials.sdjwt import (
    AudienceMismatch,
    CredentialExpired,
    CredentialRevoked,
    DisclosureInvalid,
    EligibilityInputError,
    EligibilityRequest,
    IssuerKeyNotAuthorised,
    IssuerNotTrusted,
    IssuerSignatureInvalid,
    KeyBindingInvalid,
    MalformedPresentation,
    NonceMismatch,
    NonceStore,
    PresentationError,
    PresentationHashMismatch,
    ReplayedAnswer,
    RequestExpired,
    StaleKeyBinding,
    Verdict,
)
from seoulchain.crypto import SigningKey
from seoulchain.services.did import DidKeyError, compute_document, find_verification_key

ISSUER_DID = "did:seoul:4HbsLFMbXyZYn2VhYRcTkE"
KID = f"{ISSUER_DID}#key-1"
STATUS = {"id": "https://mapo.example/status/3#94567", "type": "BitstringStatusListEntry",
          "statusPurpose": "revocation", "statusListIndex": "94567",
          "statusListCredential": "https://mapo.example/status/3"}
CLAIMS = {"residence_city": "Seoul", "age_band": "25-29", "birth_date": "1999-04-01",
          "youth_allowance": True, "district": "Mapo-gu"}
ISSUER_KEY, HOLDER_KEY, OTHER_KEY = (SigningKey(bytes([n]) * 32) for n in (7, 8, 9))
YOUTH = sdjwt.PRESETS["youth-allowance"]


def get_issuer_key_from(document: dict[str, Any]) -> Callable[[str], bytes]:
    """Return the lookup the verifier uses: the kid must be an assertion method."""
    def get_key(kid: str) -> bytes:
        try:
            return find_verification_key(document, kid, "assertionMethod")
        except DidKeyError as exc:
            raise IssuerKeyNotAuthorised(str(exc)) from None
    return get_key


def make_document(*keys: tuple[int, SigningKey]) -> dict[str, Any]:
    return compute_document(ISSUER_DID, {"controller": ISSUER_DID, "keys": [
        {"index": index, "public_key": key.public_key} for index, key in keys]})


ISSUER_DOCUMENT = make_document((1, ISSUER_KEY))


def issue(claims: dict[str, Any] | None = None, *, now_s: int | None = None,
          lifetime_s: int = 86_400, kid: str = KID, key: SigningKey = ISSUER_KEY) -> str:
    issued = int(time.time()) if now_s is None else now_s
    return sdjwt.issue_credential(key, kid, HOLDER_KEY.public_key,
                                  CLAIMS if claims is None else claims, STATUS,
                                  issued_at_s=issued, expires_at_s=issued + lifetime_s)


def ask(question: sdjwt.Question = YOUTH, lifetime_s: int = 600) -> EligibilityRequest:
    return sdjwt.make_request(question, "mapo-gu-youth-desk", [ISSUER_DID], int(time.time()),
                              lifetime_s=lifetime_s)


def check(answer: str, request: EligibilityRequest, *, nonces: NonceStore | None = None,
          now_s: int | None = None, revoked: frozenset[str] = frozenset(),
          document: dict[str, Any] = ISSUER_DOCUMENT) -> Verdict:
    return sdjwt.verify_presentation(
        answer, request, get_issuer_key=get_issuer_key_from(document),
        is_status_set=lambda entry, _issuer: entry["statusListIndex"] in revoked,
        nonces=nonces or NonceStore(), now_s=int(time.time()) if now_s is None else now_s)


def bind(presented: str, request: EligibilityRequest) -> str:
    """Append a Key Binding JWT by the holder over `presented` (ending in `~`)."""
    kb_jwt = JWS(json.dumps({"nonce": request.nonce, "aud": request.audience,
                             "iat": int(time.time()),
                             "sd_hash": sdjwt.compute_b64_sha256(presented)}))
    kb_jwt.add_signature(sdjwt.get_private_jwk(HOLDER_KEY), alg="EdDSA",
                         protected=json.dumps({"alg": "EdDSA", "typ": "kb+jwt"}))
    return presented + kb_jwt.serialize(compact=True)


def decode_disclosures(presentation: str) -> list[list[Any]]:
    return [json.loads(sdjwt.b64url_decode(part)) for part in presentation.split("~")[1:-1]]


def test_yes_discloses_only_city_and_age_band() -> None:
    request = ask()
    answer = sdjwt.present(issue(), request.question, HOLDER_KEY, request)
    verdict = check(answer, request)
    assert verdict.eligible and verdict.unmet == ()
    assert verdict.claims_seen == {"residence_city": "Seoul", "age_band": "25-29"}
    assert (verdict.issuer, verdict.kid, verdict.status) == (ISSUER_DID, KID, STATUS)
    holder_jwk = JWK.from_pyca(sdjwt.get_public_jwk(HOLDER_KEY.public_key).get_op_key("verify"))
    assert verdict.holder_jwk_thumbprint == holder_jwk.thumbprint()
    disclosed = decode_disclosures(answer)
    assert sorted(name for _salt, name, _value in disclosed) == ["age_band", "residence_city"]
    # The birth date is in the credential but nowhere in the answer, not even encoded.
    assert "birth_date" in {name for _s, name, _v in decode_disclosures(issue())}
    decoded = " ".join(json.dumps(item) for item in disclosed)
    assert "birth_date" not in decoded and "1999" not in decoded
    assert "1999" not in base64.urlsafe_b64decode(answer.split(".")[1] + "==").decode()


def test_no_for_a_band_outside_the_question() -> None:
    request = ask()
    answer = sdjwt.present(issue({**CLAIMS, "age_band": "40-44"}), request.question,
                           HOLDER_KEY, request)
    verdict = check(answer, request)
    assert not verdict.eligible
    assert verdict.claims_seen == {"residence_city": "Seoul", "age_band": "40-44"}
    assert verdict.unmet == ('age_band is "40-44", not one of "19-24", "25-29", "30-34", '
                             '"35-39"',)


def test_any_question_discloses_one_satisfied_branch() -> None:
    question = sdjwt.parse_question({"any": [
        {"claim": "residence_city", "equals": "Busan"},
        {"all": [{"claim": "youth_allowance", "equals": True},
                 {"claim": "district", "in": ["Mapo-gu", "Jung-gu"]}]}]})
    request = ask(question)
    answer = sdjwt.present(issue(), question, HOLDER_KEY, request)
    verdict = check(answer, request)
    assert verdict.eligible and verdict.claims_seen == {"youth_allowance": True,
                                                        "district": "Mapo-gu"}


def test_boolean_is_not_the_integer_one() -> None:
    question = sdjwt.parse_question({"claim": "youth_allowance", "equals": 1})
    assert not sdjwt.is_satisfied(question, {"youth_allowance": True})
    assert sdjwt.is_satisfied(question, {"youth_allowance": 1})


def test_answer_for_another_request_is_refused() -> None:
    first, second = ask(), ask()
    answer = sdjwt.present(issue(), first.question, HOLDER_KEY, first)
    with pytest.raises(NonceMismatch):
        check(answer, second)
    other_desk = EligibilityRequest(first.question, "another-desk", first.nonce, first.issuers,
                                    first.created_at_s, first.expires_at_s)
    with pytest.raises(AudienceMismatch):
        check(answer, other_desk)


def test_replayed_answer_is_refused() -> None:
    request, nonces = ask(), NonceStore()
    answer = sdjwt.present(issue(), request.question, HOLDER_KEY, request)
    assert check(answer, request, nonces=nonces).eligible
    with pytest.raises(ReplayedAnswer):
        check(answer, request, nonces=nonces)
    # A refused answer does not use the nonce up: the holder can still answer properly.
    fresh, store = ask(), NonceStore()
    with pytest.raises(IssuerSignatureInvalid):
        check(sdjwt.present(issue(key=OTHER_KEY), fresh.question, HOLDER_KEY, fresh), fresh,
              nonces=store)
    assert check(sdjwt.present(issue(), fresh.question, HOLDER_KEY, fresh), fresh,
                 nonces=store).eligible


def test_nonce_store_forgets_only_expired_requests() -> None:
    store = NonceStore({"old": 100, "live": 10_000})
    store.claim("new", 5_000, now_s=1_000)
    assert store.used == {"live": 10_000, "new": 5_000}


def test_expired_credential_and_expired_request_are_refused() -> None:
    request = ask()
    old = issue(now_s=int(time.time()) - 7200, lifetime_s=3600)
    with pytest.raises(CredentialExpired):
        check(sdjwt.present(old, request.question, HOLDER_KEY, request), request)
    answer = sdjwt.present(issue(), request.question, HOLDER_KEY, request)
    with pytest.raises(RequestExpired):
        check(answer, request, now_s=request.expires_at_s + 1)


def test_stale_key_binding_is_refused() -> None:
    request = ask(lifetime_s=3600)
    answer = sdjwt.present(issue(), request.question, HOLDER_KEY, request)
    with pytest.raises(StaleKeyBinding):
        check(answer, request, now_s=int(time.time()) + sdjwt.KB_JWT_AGE_S_MAX + 5)


def test_revoked_credential_answers_no() -> None:
    request = ask()
    answer = sdjwt.present(issue(), request.question, HOLDER_KEY, request)
    with pytest.raises(CredentialRevoked, match="94567"):
        check(answer, request, revoked=frozenset({"94567"}))


def test_tampered_disclosure_payload_or_selection_is_refused() -> None:
    request = ask()
    answer = sdjwt.present(issue({**CLAIMS, "age_band": "40-44"}), request.question,
                           HOLDER_KEY, request)
    jwt_part, *disclosures, kb_jwt = answer.split("~")
    forged = []
    for disclosure in disclosures:
        salt, name, value = json.loads(sdjwt.b64url_decode(disclosure))
        value = "25-29" if name == "age_band" else value
        forged.append(base64.urlsafe_b64encode(json.dumps([salt, name, value]).encode())
                      .decode().rstrip("="))
    # The holder itself forges the band and signs a key binding over the forgery.
    with pytest.raises(DisclosureInvalid, match="not one the issuer signed"):
        check(bind("~".join([jwt_part, *forged, ""]), request), request)
    header, payload, signature = jwt_part.split(".")
    claims = json.loads(sdjwt.b64url_decode(payload))
    claims["exp"] += 10**6
    longer = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    with pytest.raises(IssuerSignatureInvalid):
        check("~".join([f"{header}.{longer}.{signature}", *disclosures, kb_jwt]), request)
    # Dropping a disclosure after the holder signed changes the presentation's hash.
    with pytest.raises(PresentationHashMismatch):
        check("~".join([jwt_part, disclosures[0], kb_jwt]), request)


def test_key_binding_by_anyone_but_the_holder_is_refused() -> None:
    request = ask()
    credential = issue()
    with pytest.raises(EligibilityInputError, match="another holder key"):
        sdjwt.present(credential, request.question, OTHER_KEY, request)
    thief = SDJWTHolder(credential)
    thief.create_presentation({"residence_city": True, "age_band": True}, nonce=request.nonce,
                              aud=request.audience, holder_key=sdjwt.get_private_jwk(OTHER_KEY),
                              sign_alg=sdjwt.SIGN_ALG)
    with pytest.raises(KeyBindingInvalid, match="holder key"):
        check(thief.sd_jwt_presentation, request)
    without = SDJWTHolder(credential)
    without.create_presentation({"residence_city": True, "age_band": True})
    with pytest.raises(KeyBindingInvalid, match="no Key Binding"):
        check(without.sd_jwt_presentation, request)
    presented = without.sd_jwt_presentation
    for payload in (b"not json", b"[1]"):
        kb_jwt = JWS(payload)
        kb_jwt.add_signature(sdjwt.get_private_jwk(HOLDER_KEY), alg="EdDSA",
                             protected=json.dumps({"alg": "EdDSA", "typ": "kb+jwt"}))
        with pytest.raises(KeyBindingInvalid, match="JSON object"):
            check(presented + kb_jwt.serialize(compact=True), request)


def test_issuer_key_not_in_assertion_method_is_refused() -> None:
    request = ask()
    answer = sdjwt.present(issue(), request.question, HOLDER_KEY, request)
    rotated = make_document((2, OTHER_KEY))  # key-1 was rotated away
    with pytest.raises(IssuerKeyNotAuthorised, match="assertionMethod"):
        check(answer, request, document=rotated)
    # A key the DID never had, claimed under a kid of that DID.
    forged = sdjwt.present(issue(kid=f"{ISSUER_DID}#key-2", key=ISSUER_KEY),
                           request.question, HOLDER_KEY, request)
    with pytest.raises(IssuerSignatureInvalid):
        check(forged, request, document=rotated)


def test_untrusted_issuer_is_refused() -> None:
    request = ask()
    stranger = "did:seoul:7XqYt3oUdUt2rEwGfuCQZS"
    answer = sdjwt.present(issue(kid=f"{stranger}#key-1"), request.question, HOLDER_KEY,
                           request)
    with pytest.raises(IssuerNotTrusted):
        check(answer, request)
    for kid in ("#key-1", ISSUER_DID, f"{ISSUER_DID}#"):
        odd = SDJWTIssuer({"iss": ISSUER_DID, "vct": sdjwt.VCT_RESIDENT, "iat": 1, "exp": 2**40,
                           "status": STATUS, SDObj("residence_city"): "Seoul",
                           SDObj("age_band"): "25-29"},
                          sdjwt.get_private_jwk(ISSUER_KEY),
                          holder_key=sdjwt.get_public_jwk(HOLDER_KEY.public_key),
                          sign_alg="EdDSA", extra_header_parameters={"typ": "dc+sd-jwt",
                                                                     "kid": kid})
        with pytest.raises(IssuerNotTrusted):
            check(sdjwt.present(odd.sd_jwt_issuance, request.question, HOLDER_KEY, request),
                  request)


def test_malformed_and_oversized_answers_raise_typed_errors() -> None:
    request = ask()
    for text in ("", "not an sd-jwt", "a.b.c~", "~~~", "x" * (sdjwt.PRESENTATION_BYTES_MAX + 1),
                 "é~", "~" * 40):
        with pytest.raises(MalformedPresentation):
            check(text, request)


def test_every_mutation_verifies_the_same_or_raises_a_typed_error() -> None:
    """The decoder invariant: whatever the bytes, a verdict or a `PresentationError`."""
    request = ask()
    answer = sdjwt.present(issue(), request.question, HOLDER_KEY, request)
    expected = check(answer, request)
    alphabet = "Aa0_-~.="
    for position in range(0, len(answer), 7):
        for variant in (answer[:position], answer[:position] + alphabet[position % 8]
                        + answer[position + 1:]):
            with contextlib.suppress(PresentationError):
                assert check(variant, request) == expected


def test_bad_claims_and_questions_are_refused() -> None:
    for claims in ({}, {"iss": "x"}, {"Age": "1"}, {"age_band": "39-19"},
                   {"note": 1.5}, {"note": "x" * 300}, {f"c{n}": n for n in range(40)}):
        with pytest.raises(EligibilityInputError):
            issue(claims)
    with pytest.raises(EligibilityInputError):
        issue(kid="not-a-kid")
    for question in ({}, {"all": []}, {"claim": "age_band"}, {"claim": "x", "in": []},
                     {"claim": "x", "equals": {"a": 1}}, {"any": [{"all": [{"all": [
                         {"all": [{"claim": "x", "equals": 1}]}]}]}]},
                     {"all": [{"claim": f"c{n}", "equals": 1} for n in range(20)]}):
        with pytest.raises(EligibilityInputError):
            sdjwt.parse_question(question)
    request = ask(sdjwt.parse_question({"claim": "passport_number", "equals": "x"}))
    with pytest.raises(EligibilityInputError, match="no passport_number claim"):
        sdjwt.present(issue(), request.question, HOLDER_KEY, request)


def test_request_round_trips_and_bad_requests_are_refused() -> None:
    request = ask()
    assert sdjwt.parse_request(json.loads(json.dumps(request.to_json()))) == request
    assert len(request.nonce) >= 22 and ask().nonce != request.nonce
    for change in ({"type": "other"}, {"nonce": ""}, {"issuers": []},
                   {"issuers": ["mapo"]}, {"expires_at_s": 0}, {"question": {"x": 1}}):
        with pytest.raises(EligibilityInputError):
            sdjwt.parse_request({**request.to_json(), **change})

