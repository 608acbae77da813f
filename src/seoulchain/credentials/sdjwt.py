"""Eligibility checks with selective-disclosure credentials (IETF SD-JWT VC, RFC 9901).

Theory of operation. An issuer (an agency's DID) signs an SD-JWT VC with EdDSA under its
assertion key, the JWS header's `kid` naming that verification method. The always-disclosed
claims are `iss`, `vct`, `iat`, `exp`, `cnf` (the holder's Ed25519 public key as a JWK) and
`status` (a W3C BitstringStatusListEntry); every personal claim (`residence_city`,
`age_band`, `birth_date`, `youth_allowance`, ...) is a salted disclosure, with decoy digests
so the count of claims is hidden too. A verifier writes an `EligibilityRequest`: a yes/no
`Question`, a fresh nonce, its audience and the issuers it trusts. The holder's software
discloses only the claims the question needs and appends a Key Binding JWT over the nonce,
the audience and the presentation's hash. The verifier checks, in order: size and shape,
the issuer's signature (key resolved from the DID by the caller), the disclosures against
the signed digests, the key binding (nonce, audience, freshness, sd_hash), expiry, the
one-time use of the nonce, the status bit, then evaluates the question.

The `sd-jwt` package (0.10.4) issues, selects disclosures and unpacks them. Its verifier
checks a KB-JWT only with the default ES256 (its constructor passes no algorithm), so an
EdDSA key binding never verifies there; the KB-JWT is checked here with jwcrypto instead,
as are the things the package leaves out (expiry, freshness, unreferenced disclosures).
This module does no I/O: the chain lookups are callables the caller passes in.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from jwcrypto.common import JWException
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS, InvalidJWSSignature
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.issuer import SDJWTIssuer
from sd_jwt.verifier import SDJWTVerifier

from seoulchain.crypto.keys import PUBLIC_KEY_BYTES, SigningKey
from seoulchain.errors import DecodeError, LocalError, RemoteError, VerificationError

# JWS header `typ` of an SD-JWT VC (draft-ietf-oauth-sd-jwt-vc, section 3.2.1).
SD_JWT_VC_TYP = "dc+sd-jwt"
# JWS header `typ` of a Key Binding JWT (RFC 9901, section 4.3).
KB_JWT_TYP = "kb+jwt"
# The only signature algorithm issued or accepted: Ed25519 (RFC 8037).
SIGN_ALG = "EdDSA"
# The one digest algorithm (RFC 9901's default, the only one the sd-jwt package does).
SD_ALG = "sha-256"
# The credential type of a Seoul residence and eligibility credential.
VCT_RESIDENT = "https://seoulchain.seoul.go.kr/vct/resident-eligibility/v1"
# Claims the issuer always discloses (never selectively disclosable) and JWT claims
# a selectively disclosable claim may not be named after.
RESERVED_CLAIMS = frozenset({"iss", "sub", "vct", "iat", "exp", "nbf", "cnf", "status",
                             "aud", "jti", "_sd", "_sd_alg", "vct#integrity"})
CLAIM_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
AGE_BAND = re.compile(r"(\d{1,3})-(\d{1,3})")
# A credential carries at most this many personal claims, each value at most this long:
# a resident credential has about ten; the bound keeps a presentation far under its size cap.
CLAIMS_MAX = 32
CLAIM_VALUE_CHARS_MAX = 256
# A presentation (issuer JWT, disclosures, KB-JWT) is refused above this size before any
# parsing; a full credential with CLAIMS_MAX claims and decoys is about 9 KiB.
PRESENTATION_BYTES_MAX = 16 * 1024
# Disclosures in one presentation: the claims plus nothing else, so CLAIMS_MAX.
DISCLOSURES_MAX = CLAIMS_MAX
# A KB-JWT older than this is stale (the holder answers while the verifier waits); clocks
# may differ by CLOCK_SKEW_S (a minute, as OpenID4VP implementations commonly allow).
KB_JWT_AGE_S_MAX = 300
CLOCK_SKEW_S = 60
# A request's nonce: 128 bits from the OS CSPRNG (RFC 9901 section 9.1 asks for a fresh,
# unpredictable nonce); a request can be answered for REQUEST_LIFETIME_S.
NONCE_BYTES = 16
REQUEST_LIFETIME_S = 600
# A request lives at least as long as a holder needs to answer (10 s) and at most a day
# (a desk may send a request ahead of an appointment): its nonce is kept that long.
REQUEST_LIFETIME_S_MIN = 10
REQUEST_LIFETIME_S_MAX = 86_400
NONCE_CHARS_MAX = 128
AUDIENCE_CHARS_MAX = 256
ISSUERS_MAX = 16
# A question is a small tree: this deep, this many conditions, this many accepted values.
QUESTION_DEPTH_MAX = 4
QUESTION_CONDITIONS_MAX = 16
QUESTION_VALUES_MAX = 32
REQUEST_TYPE = "seoulchain/eligibility-request"
# Nonces of unexpired requests one verifier keeps at once: a busy desk asks a few thousand
# a day, each answerable for REQUEST_LIFETIME_S; this is many days of that at once.
USED_NONCES_MAX = 100_000

ClaimValue = str | int | bool


class EligibilityInputError(LocalError):
    """Issuing or presenting was asked for something invalid (a claim, a key, a question)."""


class PresentationError(RemoteError):
    """A presentation was refused; the verifier's answer is "no" for this reason."""


class MalformedPresentation(PresentationError, DecodeError):
    """The presentation is oversized, not an SD-JWT, or its parts do not parse."""


class IssuerNotTrusted(PresentationError, VerificationError):
    """The credential's issuer is not one the request trusts, or its kid is not its DID's."""


class IssuerKeyNotAuthorised(PresentationError, VerificationError):
    """The signing key is not an assertion method of the issuer's DID document."""


class IssuerSignatureInvalid(PresentationError, VerificationError):
    """The issuer's signature does not verify: the credential was altered or forged."""


class DisclosureInvalid(PresentationError, VerificationError):
    """A disclosure is not one the issuer signed, or its value is not a plain claim."""


class KeyBindingInvalid(PresentationError, VerificationError):
    """The Key Binding JWT is missing, not signed by the credential's holder key or malformed."""


class NonceMismatch(KeyBindingInvalid):
    """The answer was made for another request's nonce."""


class AudienceMismatch(KeyBindingInvalid):
    """The answer was made for another verifier."""


class StaleKeyBinding(KeyBindingInvalid):
    """The Key Binding JWT is too old, or dated in the future."""


class PresentationHashMismatch(KeyBindingInvalid):
    """The KB-JWT's sd_hash is not the hash of this presentation: parts were swapped."""


class CredentialExpired(PresentationError, VerificationError):
    """The credential's `exp` has passed (or its `iat` is in the future)."""


class RequestExpired(PresentationError):
    """The request this answers is past its lifetime."""


class ReplayedAnswer(PresentationError):
    """The request's nonce was already used by an answer this verifier accepted."""


class CredentialRevoked(PresentationError):
    """The credential's status bit is set on its issuer's status list (revoked or suspended)."""


class StatusNotConfirmed(PresentationError):
    """The credential's status cannot be confirmed: no such list or index, or not the
    issuer's list."""


# --- questions -------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """One claim must have one of the accepted values."""

    claim: str
    accepted: tuple[ClaimValue, ...]


@dataclass(frozen=True)
class Question:
    """`all` or `any` of conditions and nested questions; `to_json` is its file form."""

    mode: str
    parts: tuple[Question | Condition, ...]

    def to_json(self) -> dict[str, Any]:
        return {self.mode: [part_to_json(part) for part in self.parts]}


def part_to_json(part: Question | Condition) -> dict[str, Any]:
    if isinstance(part, Question):
        return part.to_json()
    if len(part.accepted) == 1:
        return {"claim": part.claim, "equals": part.accepted[0]}
    return {"claim": part.claim, "in": list(part.accepted)}


def parse_question(value: Any) -> Question:
    """Return the question of its JSON form, or raise `EligibilityInputError`."""
    counter = [0]
    part = parse_question_part(value, 1, counter)
    if isinstance(part, Condition):
        return Question("all", (part,))
    return part


def parse_question_part(value: Any, depth: int, counter: list[int]) -> Question | Condition:
    """Parse one node of a question: {"all"|"any": [...]} or a claim condition."""
    if not isinstance(value, dict):
        raise EligibilityInputError(f"a question part is a JSON object, not {value!r:.60}")
    if depth > QUESTION_DEPTH_MAX:
        raise EligibilityInputError(f"a question nests at most {QUESTION_DEPTH_MAX} levels")
    if set(value) in ({"all"}, {"any"}):
        mode = next(iter(value))
        items = value[mode]
        if not isinstance(items, list) or not items:
            raise EligibilityInputError(f'"{mode}" takes a non-empty list')
        return Question(mode, tuple(parse_question_part(item, depth + 1, counter)
                                    for item in items))
    counter[0] += 1
    if counter[0] > QUESTION_CONDITIONS_MAX:
        raise EligibilityInputError(f"a question has at most {QUESTION_CONDITIONS_MAX} "
                                    f"conditions")
    return parse_condition(value)


def parse_condition(value: dict[str, Any]) -> Condition:
    """Parse {"claim": NAME, "equals": V} or {"claim": NAME, "in": [V, ...]}."""
    keys = set(value)
    if keys not in ({"claim", "equals"}, {"claim", "in"}):
        raise EligibilityInputError(f'a condition is {{"claim", "equals"}} or {{"claim", '
                                    f'"in"}}, or a part is {{"all"|"any": [...]}}; got keys '
                                    f'{sorted(keys)}')
    claim = value["claim"]
    check_claim_name(claim)
    accepted = [value["equals"]] if "equals" in value else value["in"]
    if not isinstance(accepted, list) or not 1 <= len(accepted) <= QUESTION_VALUES_MAX:
        raise EligibilityInputError(f'"in" takes a list of 1 to {QUESTION_VALUES_MAX} values')
    for item in accepted:
        check_claim_value(claim, item)
    return Condition(claim, tuple(accepted))


def get_question_claims(question: Question | Condition) -> set[str]:
    """Return every claim the question names."""
    if isinstance(question, Condition):
        return {question.claim}
    return set().union(*(get_question_claims(part) for part in question.parts))


def is_satisfied(question: Question | Condition, claims: Mapping[str, Any]) -> bool:
    """Return True if `claims` answer the question "yes" (an undisclosed claim is unmet)."""
    if isinstance(question, Condition):
        value = claims.get(question.claim, _MISSING)
        # bool is an int in Python; True must not match 1.
        return any(type(value) is type(item) and value == item for item in question.accepted)
    results = (is_satisfied(part, claims) for part in question.parts)
    return all(results) if question.mode == "all" else any(results)


_MISSING = object()


def get_unmet(question: Question | Condition, claims: Mapping[str, Any]) -> list[str]:
    """Return, in words, each condition of `question` that `claims` do not meet."""
    if isinstance(question, Question):
        return [text for part in question.parts for text in get_unmet(part, claims)]
    if is_satisfied(question, claims):
        return []
    if question.claim not in claims:
        return [f"{question.claim} not disclosed"]
    accepted = ", ".join(json.dumps(item) for item in question.accepted)
    return [f"{question.claim} is {json.dumps(claims[question.claim])}, not one of {accepted}"]


def select_claims(question: Question | Condition, claims: Mapping[str, Any]) -> set[str]:
    """Return the fewest claims to disclose: every part of an `all`, one part of an `any`.

    Of an `any`, the first part the holder's claims satisfy; if none does, the first part
    whose claims the holder has (the answer will be "no" either way).
    """
    if isinstance(question, Condition):
        return {question.claim}
    if question.mode == "all":
        return set().union(*(select_claims(part, claims) for part in question.parts))
    for part in question.parts:
        if is_satisfied(part, claims):
            return select_claims(part, claims)
    for part in question.parts:
        if get_question_claims(part) <= set(claims):
            return select_claims(part, claims)
    return select_claims(question.parts[0], claims)


# Ready-made questions a desk can ask by name. The youth allowance (청년수당) is for residents
# of Seoul aged 19 to 39; age bands are issued 19-24 and then five years wide.
PRESETS: dict[str, Question] = {
    "youth-allowance": Question("all", (
        Condition("residence_city", ("Seoul",)),
        Condition("age_band", ("19-24", "25-29", "30-34", "35-39")),
    )),
    "seoul-resident": Question("all", (Condition("residence_city", ("Seoul",)),)),
}


# --- claims and keys -------------------------------------------------------------------


def check_claim_name(name: Any) -> None:
    """Raise `EligibilityInputError` unless `name` may be a selectively disclosable claim."""
    if not isinstance(name, str) or not CLAIM_NAME.fullmatch(name) or name in RESERVED_CLAIMS:
        raise EligibilityInputError(f"claim name {name!r:.70} must be lower-case letters, "
                                    f"digits and '_' (at most 64), and not one of "
                                    f"{', '.join(sorted(RESERVED_CLAIMS))}")


def check_claim_value(name: str, value: Any) -> None:
    """Raise `EligibilityInputError` unless `value` is a plain claim value (text, integer,
    true/false); an `age_band` is "lo-hi"."""
    if isinstance(value, str):
        if len(value) > CLAIM_VALUE_CHARS_MAX:
            raise EligibilityInputError(f"claim {name}: at most {CLAIM_VALUE_CHARS_MAX} "
                                        f"characters")
        band = AGE_BAND.fullmatch(value)
        if name == "age_band" and (band is None or int(band[1]) > int(band[2])):
            raise EligibilityInputError(f"age_band {value!r:.40} is not a band like '19-24'")
    elif type(value) is int:
        if abs(value) > 2**53:
            raise EligibilityInputError(f"claim {name}: integers are within ±2^53 (JSON)")
    elif not isinstance(value, bool):
        raise EligibilityInputError(f"claim {name}: a value is text, an integer, true or "
                                    f"false, not {type(value).__name__}")


def check_claims(claims: Any) -> dict[str, ClaimValue]:
    """Return `claims` checked: at most CLAIMS_MAX named plain values."""
    if not isinstance(claims, dict) or not 1 <= len(claims) <= CLAIMS_MAX:
        raise EligibilityInputError(f"claims are a JSON object of 1 to {CLAIMS_MAX} claims")
    for name, value in claims.items():
        check_claim_name(name)
        check_claim_value(name, value)
    return dict(claims)


def get_private_jwk(key: SigningKey) -> JWK:
    """Return an Ed25519 signing key as a private OKP JWK."""
    return JWK.from_pyca(Ed25519PrivateKey.from_private_bytes(key.seed))


def get_public_jwk(public_key: bytes) -> JWK:
    """Return an Ed25519 public key as an OKP JWK."""
    if not isinstance(public_key, bytes) or len(public_key) != PUBLIC_KEY_BYTES:
        raise EligibilityInputError(f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes")
    return JWK.from_pyca(Ed25519PublicKey.from_public_bytes(public_key))


def get_did_of_kid(kid: str) -> str:
    """Return the DID of a verification method id ("did:seoul:...#key-1")."""
    did, sep, fragment = kid.partition("#")
    if not sep or not fragment or not did.startswith("did:"):
        raise EligibilityInputError(f"{kid!r:.80} is not a DID verification method id "
                                    f"(did:...#fragment)")
    return did


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def compute_b64_sha256(text: str) -> str:
    """Return base64url(SHA-256(ascii text)), no padding: RFC 9901's digests and sd_hash."""
    digest = hashlib.sha256(text.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


# --- issuing and presenting --------------------------------------------------------------


def issue_credential(issuer_key: SigningKey, kid: str, holder_public_key: bytes,
                     claims: Mapping[str, Any], status: Mapping[str, Any], *,
                     issued_at_s: int, expires_at_s: int, vct: str = VCT_RESIDENT) -> str:
    """Return an SD-JWT VC (compact, `~`-separated) with every claim selectively disclosable."""
    checked = check_claims(dict(claims))
    if not issued_at_s < expires_at_s:
        raise EligibilityInputError("a credential expires after it is issued")
    payload: dict[Any, Any] = {
        "iss": get_did_of_kid(kid), "vct": vct, "iat": issued_at_s, "exp": expires_at_s,
        "status": dict(status),
    }
    payload.update({SDObj(name): value for name, value in checked.items()})
    issuer = SDJWTIssuer(payload, get_private_jwk(issuer_key),
                         holder_key=get_public_jwk(holder_public_key), sign_alg=SIGN_ALG,
                         add_decoy_claims=True,
                         extra_header_parameters={"typ": SD_JWT_VC_TYP, "kid": kid})
    return issuer.sd_jwt_issuance


def read_credential_claims(credential: str) -> tuple[dict[str, Any], dict[str, ClaimValue]]:
    """Return a credential's signed payload and its disclosed claims, unverified (the holder's
    own view of what it holds)."""
    try:
        check_presentation_size(credential)
        jwt_part, *disclosures, _kb_jwt = credential.split("~")
        payload = read_signed_payload(jwt_part)
        claims = {}
        for disclosure in disclosures:
            _salt, name, value = json.loads(b64url_decode(disclosure))
            claims[name] = value
    except (MalformedPresentation, *PARSE_ERRORS) as exc:
        raise EligibilityInputError(f"the credential is not an SD-JWT: {exc}") from None
    return payload, claims


def present(credential: str, question: Question, holder_key: SigningKey,
            request: EligibilityRequest) -> str:
    """Return a presentation disclosing only the claims `question` needs, key-bound to the
    request's nonce and audience."""
    payload, claims = read_credential_claims(credential)
    cnf = payload.get("cnf")
    jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
    bound = jwk.get("x") if isinstance(jwk, dict) else None
    if bound != get_public_jwk(holder_key.public_key).get("x"):
        raise EligibilityInputError("this credential is bound to another holder key")
    chosen = select_claims(question, claims)
    missing = sorted(chosen - set(claims))
    if missing:
        raise EligibilityInputError(f"the credential has no {', '.join(missing)} claim: it "
                                    f"cannot answer this question")
    holder = SDJWTHolder(credential)
    holder.create_presentation({name: True for name in chosen}, nonce=request.nonce,
                               aud=request.audience, holder_key=get_private_jwk(holder_key),
                               sign_alg=SIGN_ALG)
    return holder.sd_jwt_presentation


# --- requests, nonces and verdicts -----------------------------------------------------


@dataclass(frozen=True)
class EligibilityRequest:
    """What a verifier asks: the question, for whom (audience), once (nonce), trusting whom."""

    question: Question
    audience: str
    nonce: str
    issuers: tuple[str, ...]
    created_at_s: int
    expires_at_s: int
    vct: str = VCT_RESIDENT

    def to_json(self) -> dict[str, Any]:
        return {"type": REQUEST_TYPE, "question": self.question.to_json(),
                "audience": self.audience, "nonce": self.nonce, "issuers": list(self.issuers),
                "vct": self.vct, "created_at_s": self.created_at_s,
                "expires_at_s": self.expires_at_s}


def make_request(question: Question, audience: str, issuers: Iterable[str], now_s: int,
                 *, lifetime_s: int = REQUEST_LIFETIME_S) -> EligibilityRequest:
    """Return a request with a fresh nonce from the OS CSPRNG."""
    if not REQUEST_LIFETIME_S_MIN <= lifetime_s <= REQUEST_LIFETIME_S_MAX:
        raise EligibilityInputError(f"a request lives {REQUEST_LIFETIME_S_MIN} to "
                                    f"{REQUEST_LIFETIME_S_MAX} s")
    request = EligibilityRequest(question, audience, secrets.token_urlsafe(NONCE_BYTES),
                                 tuple(issuers), now_s, now_s + lifetime_s)
    return parse_request(request.to_json())


def parse_request(value: Any) -> EligibilityRequest:
    """Return the request of its JSON form, or raise `EligibilityInputError`."""
    if not isinstance(value, dict) or value.get("type") != REQUEST_TYPE:
        raise EligibilityInputError(f"not an eligibility request (type {REQUEST_TYPE!r})")
    audience, nonce, vct = value.get("audience"), value.get("nonce"), value.get("vct")
    issuers = value.get("issuers")
    for name, text, limit in (("audience", audience, AUDIENCE_CHARS_MAX),
                              ("nonce", nonce, NONCE_CHARS_MAX),
                              ("vct", vct, CLAIM_VALUE_CHARS_MAX)):
        if not isinstance(text, str) or not 1 <= len(text) <= limit:
            raise EligibilityInputError(f"the request's {name} is text of 1 to {limit} "
                                        f"characters")
    if (not isinstance(issuers, list) or not 1 <= len(issuers) <= ISSUERS_MAX
            or not all(isinstance(did, str) and did.startswith("did:") for did in issuers)):
        raise EligibilityInputError(f"the request names 1 to {ISSUERS_MAX} trusted issuer "
                                    f"DIDs")
    created, expires = value.get("created_at_s"), value.get("expires_at_s")
    if type(created) is not int or type(expires) is not int or not created < expires:
        raise EligibilityInputError("the request's created_at_s and expires_at_s are "
                                    "integers, created first")
    return EligibilityRequest(parse_question(value.get("question")), audience, nonce,
                              tuple(issuers), created, expires, vct)


class NonceStore:
    """The verifier's record of nonces already answered, so an answer counts once.

    A nonce is kept until its request expires; after that the request itself refuses
    every answer, so forgetting the nonce lets no replay through.
    """

    def __init__(self, used: Mapping[str, int] | None = None,
                 entries_max: int = USED_NONCES_MAX):
        self.used: dict[str, int] = dict(used or {})  # nonce -> request expiry (s)
        self.entries_max = entries_max

    def claim(self, nonce: str, expires_at_s: int, now_s: int) -> None:
        """Record `nonce` as used, or raise `ReplayedAnswer` if it already was."""
        self.used = {key: until for key, until in self.used.items() if until >= now_s}
        if nonce in self.used:
            raise ReplayedAnswer("this request was already answered: the answer is a replay")
        if len(self.used) >= self.entries_max:
            raise EligibilityInputError(f"the store of used nonces is full ({self.entries_max} "
                                        f"unexpired requests): wait for requests to expire")
        self.used[nonce] = expires_at_s


@dataclass(frozen=True)
class Verdict:
    """The verifier's answer and exactly what it learnt."""

    eligible: bool
    claims_seen: dict[str, ClaimValue]
    issuer: str
    kid: str
    vct: str
    holder_jwk_thumbprint: str
    status: dict[str, Any]
    expires_at_s: int
    unmet: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {"answer": "yes" if self.eligible else "no", "claims_seen": self.claims_seen,
                "issuer": self.issuer, "kid": self.kid, "vct": self.vct,
                "holder_key_thumbprint": self.holder_jwk_thumbprint, "status": self.status,
                "credential_expires_at_s": self.expires_at_s, "unmet": list(self.unmet)}


# --- verifying -------------------------------------------------------------------------

# Errors the sd-jwt package and jwcrypto raise on input that does not parse.
PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, UnicodeError,
                binascii.Error, JWException)


def check_presentation_size(text: Any) -> None:
    """Raise `MalformedPresentation` unless `text` is ASCII of a bounded size."""
    if not isinstance(text, str) or len(text) > PRESENTATION_BYTES_MAX:
        raise MalformedPresentation(f"a presentation is text of at most "
                                    f"{PRESENTATION_BYTES_MAX} bytes")
    if not text.isascii() or text.count("~") > DISCLOSURES_MAX + 1:
        raise MalformedPresentation(f"a presentation is ASCII with at most "
                                    f"{DISCLOSURES_MAX} disclosures")


def verify_presentation(text: str, request: EligibilityRequest, *,
                        get_issuer_key: Callable[[str], bytes],
                        is_status_set: Callable[[dict[str, Any], str], bool],
                        nonces: NonceStore, now_s: int) -> Verdict:
    """Verify a presentation against `request` and answer its question, or raise a
    `PresentationError` naming why the answer is "no".

    `get_issuer_key(kid)` returns the Ed25519 key of an assertion method of the kid's DID
    (or raises `IssuerKeyNotAuthorised`); `is_status_set(entry, issuer)` reads the status
    bit of an entry on a list of `issuer` (or raises `StatusNotConfirmed`).
    """
    verified = verify_signed_parts(text, request, get_issuer_key, now_s)
    nonces.claim(request.nonce, request.expires_at_s, now_s)
    status = verified.status
    if is_status_set(status, verified.issuer):
        state = "suspended" if status.get("statusPurpose") == "suspension" else "revoked"
        raise CredentialRevoked(f"the credential is {state} (status list "
                                f"{status.get('statusListCredential')!r:.100}, index "
                                f"{status.get('statusListIndex')!r:.20})")
    eligible = is_satisfied(request.question, verified.claims_seen)
    unmet = () if eligible else tuple(get_unmet(request.question, verified.claims_seen))
    return dataclasses.replace(verified, eligible=eligible, unmet=unmet)


def verify_signed_parts(text: str, request: EligibilityRequest,
                        get_issuer_key: Callable[[str], bytes], now_s: int) -> Verdict:
    """Check everything signed (issuer JWT, disclosures, KB-JWT) and the validity period;
    return what the presentation shows, as a verdict of "no" until the question is asked."""
    check_presentation_size(text)
    if "~" not in text:
        raise MalformedPresentation("an SD-JWT presentation is JWT~disclosures~KB-JWT")
    if now_s > request.expires_at_s:
        raise RequestExpired("the request has expired; ask again with a new request")
    jwt_part, *disclosures, kb_jwt = text.split("~")
    kid = read_jws_header(jwt_part)["kid"]
    issuer, _, fragment = kid.partition("#")
    if not fragment or issuer not in request.issuers:
        raise IssuerNotTrusted(f"the credential's issuer key {kid!r:.100} is not of an issuer "
                               f"this request trusts")
    verifier = verify_issuer_signature(text, kid, get_issuer_key)
    payload = read_signed_payload(jwt_part)
    check_issuer_payload(payload, issuer, request, now_s)
    check_disclosures(payload, disclosures)
    holder_jwk = check_key_binding(text, kb_jwt, payload, request, now_s)
    try:
        unpacked = verifier.get_verified_payload()
    except PARSE_ERRORS as exc:
        raise DisclosureInvalid(f"the disclosures do not unpack: {exc}") from None
    seen = {name: value for name, value in unpacked.items() if name not in payload}
    for name, value in seen.items():
        check_disclosed_claim(name, value)
    return Verdict(False, seen, issuer, kid, payload["vct"], holder_jwk.thumbprint(),
                   unpacked["status"], payload["exp"])


def read_jws_header(jwt_part: str) -> dict[str, Any]:
    """Return the issuer JWT's protected header after checking typ, alg and kid."""
    try:
        header = json.loads(b64url_decode(jwt_part.split(".")[0]))
    except PARSE_ERRORS as exc:
        raise MalformedPresentation(f"the issuer JWT's header does not parse: {exc}") from None
    if not isinstance(header, dict):
        raise MalformedPresentation("the issuer JWT's header is not a JSON object")
    if header.get("typ") != SD_JWT_VC_TYP or header.get("alg") != SIGN_ALG:
        raise MalformedPresentation(f"the issuer JWT is not an {SIGN_ALG} {SD_JWT_VC_TYP} "
                                    f"(typ {header.get('typ')!r:.30}, alg "
                                    f"{header.get('alg')!r:.20})")
    if not isinstance(header.get("kid"), str) or len(header["kid"]) > AUDIENCE_CHARS_MAX:
        raise MalformedPresentation("the issuer JWT names no key (kid)")
    return header


def verify_issuer_signature(text: str, kid: str,
                            get_issuer_key: Callable[[str], bytes]) -> SDJWTVerifier:
    """Return the package's verifier after it checked the issuer's EdDSA signature."""
    def get_key(_issuer: Any, header: dict[str, Any]) -> JWK:
        if header.get("alg") != SIGN_ALG or header.get("kid") != kid:
            raise InvalidJWSSignature("unexpected algorithm or key id")
        return get_public_jwk(get_issuer_key(kid))

    try:
        return SDJWTVerifier(text, get_key)
    except InvalidJWSSignature:
        raise IssuerSignatureInvalid("the issuer's signature does not verify: the credential "
                                     "was altered or not signed by this key") from None
    except PARSE_ERRORS as exc:
        raise MalformedPresentation(f"the presentation does not parse: {exc}") from None


def read_signed_payload(jwt_part: str) -> dict[str, Any]:
    """Return the (already verified) issuer JWT's payload."""
    try:
        payload = json.loads(b64url_decode(jwt_part.split(".")[1]))
    except PARSE_ERRORS as exc:
        raise MalformedPresentation(f"the issuer JWT's payload does not parse: {exc}") from None
    if not isinstance(payload, dict):
        raise MalformedPresentation("the issuer JWT's payload is not a JSON object")
    return payload


def check_issuer_payload(payload: dict[str, Any], issuer: str, request: EligibilityRequest,
                         now_s: int) -> None:
    """Check iss, vct, the validity period, the status entry and the digest algorithm."""
    if payload.get("iss") != issuer:
        raise IssuerNotTrusted("the credential's iss is not the DID of its signing key")
    if payload.get("vct") != request.vct:
        raise MalformedPresentation(f"the credential's type {payload.get('vct')!r:.80} is "
                                    f"not the requested {request.vct!r}")
    issued, expires = payload.get("iat"), payload.get("exp")
    if type(issued) is not int or type(expires) is not int:
        raise MalformedPresentation("the credential has no integer iat and exp")
    if now_s >= expires:
        raise CredentialExpired(f"the credential expired at {expires} (now {now_s})")
    if issued > now_s + CLOCK_SKEW_S:
        raise CredentialExpired(f"the credential is dated in the future (iat {issued})")
    if not isinstance(payload.get("status"), dict):
        raise MalformedPresentation("the credential carries no status entry")
    if payload.get("_sd_alg", SD_ALG) != SD_ALG:
        raise MalformedPresentation(f"digest algorithm {payload.get('_sd_alg')!r:.20} is not "
                                    f"{SD_ALG}")


def check_disclosures(payload: dict[str, Any], disclosures: list[str]) -> None:
    """Refuse a disclosure whose digest the issuer did not sign (RFC 9901, section 7.1)."""
    signed = payload.get("_sd", [])
    if not isinstance(signed, list):
        raise MalformedPresentation("the credential's _sd is not a list")
    for disclosure in disclosures:
        if compute_b64_sha256(disclosure) not in signed:
            raise DisclosureInvalid("a disclosure is not one the issuer signed")


def check_disclosed_claim(name: Any, value: Any) -> None:
    """Refuse a disclosed claim that is not a plain named value."""
    try:
        check_claim_name(name)
        check_claim_value(name, value)
    except EligibilityInputError as exc:
        raise DisclosureInvalid(f"a disclosed claim is not a plain value: {exc}") from None


def check_key_binding(text: str, kb_jwt: str, payload: dict[str, Any],
                      request: EligibilityRequest, now_s: int) -> JWK:
    """Verify the KB-JWT with the holder key in `cnf`; return that key."""
    if not kb_jwt:
        raise KeyBindingInvalid("the answer has no Key Binding JWT: it is not bound to this "
                                "request")
    try:
        holder_jwk = JWK(**payload["cnf"]["jwk"])
        if holder_jwk.get("kty") != "OKP" or holder_jwk.get("crv") != "Ed25519" \
                or holder_jwk.has_private:
            raise ValueError("the holder key is not an Ed25519 public key")
        jws = JWS()
        jws.deserialize(kb_jwt)
    except PARSE_ERRORS as exc:
        raise KeyBindingInvalid(f"the holder key or the KB-JWT does not parse: {exc}") from None
    try:
        jws.verify(holder_jwk, alg=SIGN_ALG)
    except PARSE_ERRORS:
        raise KeyBindingInvalid("the KB-JWT is not signed by the credential's holder key"
                                ) from None
    try:
        claims = json.loads(jws.payload)
    except PARSE_ERRORS:
        claims = None
    if jws.jose_header.get("typ") != KB_JWT_TYP or not isinstance(claims, dict):
        raise KeyBindingInvalid(f"the KB-JWT is not a {KB_JWT_TYP} with a JSON object")
    check_key_binding_claims(claims, text[:len(text) - len(kb_jwt)], request, now_s)
    return holder_jwk


def check_key_binding_claims(claims: dict[str, Any], presented: str,
                             request: EligibilityRequest, now_s: int) -> None:
    """Check the KB-JWT's nonce, aud, iat and sd_hash."""
    if claims.get("nonce") != request.nonce:
        raise NonceMismatch("the answer was made for another request (nonce differs)")
    if claims.get("aud") != request.audience:
        raise AudienceMismatch(f"the answer was made for audience {claims.get('aud')!r:.80}, "
                               f"not {request.audience!r}")
    issued = claims.get("iat")
    if type(issued) is not int or not (now_s - KB_JWT_AGE_S_MAX <= issued
                                       <= now_s + CLOCK_SKEW_S):
        raise StaleKeyBinding(f"the answer was signed at {issued!r:.20}, not within "
                              f"{KB_JWT_AGE_S_MAX} s before now ({now_s})")
    if claims.get("sd_hash") != compute_b64_sha256(presented):
        raise PresentationHashMismatch("the KB-JWT's sd_hash is not this presentation's hash")
