"""Threshold key establishment as belenios-tool runs it (specification 3.1.1, 4.6).

Each trustee draws a 22-character seed from which sk = SHA-256("sk|" ‖ seed) and
dk = SHA-256("dk|" ‖ seed) (mod q) derive; its certificate publishes g^sk and g^dk signed
with sk (step 1). Each trustee i then draws a polynomial f_i of degree t − 1, publishes its
signed commitments g^a_ik and sends f_i(j) to every trustee j through a channel (step 3).
The administrator routes those into one vinput per trustee (step 4); trustee j checks every
f_i(j) against the commitments, sums them into its decryption key S_j, and returns g^S_j
with a proof and S_j sealed to itself (step 5); the administrator assembles the threshold
parameters (step 6). A channel message is a signed channel_msg {recipient, message}
encrypted to the recipient's key: El Gamal on a random g^s, then AES-CCM (8-byte tag,
nonce the first 13 bytes of SHA-256("iv|" ‖ g^r)) under the key SHA-256("key|" ‖ g^s),
the data hex-encoded, exactly as the tool writes them, so the files interoperate.
Every function here is one party's step; nothing is shared between parties but the JSON.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from gmpy2 import mpz

from seoulchain.voting.errors import BadTrusteeKey, MalformedVotingData
from seoulchain.voting.group import (
    Group,
    compute_hash_zq,
    parse_element,
    parse_number,
)
from seoulchain.voting.jsonform import dump_json, load_json, require_dict, require_list
from seoulchain.voting.threshold import (
    SignedMessage,
    ThresholdTrustees,
    compute_verification_key,
    parse_certificate,
    parse_signed_message,
    parse_threshold_trustees,
    verify_signed_message,
)
from seoulchain.voting.trustees import make_trustee_public_key
from seoulchain.voting.zkp import Proof, random_exponent

SEED_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"  # 4.6.1
SEED_CHARS = 22  # 4.6.1: a seed is 22 characters of SEED_ALPHABET
CCM_TAG_BYTES = 8  # what belenios-tool 2.0 writes (checked against its step-3 output)
CCM_NONCE_BYTES = 13  # likewise: the first 13 bytes of SHA-256("iv|" ‖ g^r)


@dataclass(frozen=True)
class TrusteeSeed:
    """A threshold trustee's secret seed and the keys derived from it."""

    seed: str
    signing_key: mpz
    decryption_key: mpz


def derive_seed_keys(group: Group, seed: str) -> TrusteeSeed:
    """Derive sk and dk from a seed (a belenios-tool `.key` file's contents)."""
    if len(seed) != SEED_CHARS or any(char not in SEED_ALPHABET for char in seed):
        raise MalformedVotingData(f"a trustee seed is {SEED_CHARS} Base58 characters")

    def derive(prefix: str) -> mpz:
        digest = hashlib.sha256(f"{prefix}|{seed}".encode()).digest()
        return mpz(int.from_bytes(digest, "big")) % group.q

    return TrusteeSeed(seed, derive("sk"), derive("dk"))


def sign_message(group: Group, signing_key: mpz, message: str) -> SignedMessage:
    """Return a signed_msg over `message` (challenge SHA-256("sigmsg|M|A") mod q)."""
    nonce = random_exponent(group)
    challenge = compute_hash_zq(group, f"sigmsg|{message}|", [group.exp_g(nonce)])
    return SignedMessage(message, Proof(challenge, (nonce - signing_key * challenge) % group.q))


def generate_certificate(group: Group) -> tuple[TrusteeSeed, SignedMessage]:
    """Step 1: draw a seed and return it with the trustee's self-signed certificate."""
    keys = derive_seed_keys(group, "".join(secrets.choice(SEED_ALPHABET)
                                           for _ in range(SEED_CHARS)))
    message = dump_json({"verification": str(group.exp_g(keys.signing_key)),
                         "encryption": str(group.exp_g(keys.decryption_key))})
    return keys, sign_message(group, keys.signing_key, message)


def compute_ccm(group: Group, shared: mpz, alpha: mpz) -> tuple[AESCCM, bytes]:
    """Return the AES-CCM cipher and nonce of a channel message."""
    key = hashlib.sha256(f"key|{shared}".encode()).digest()
    nonce = hashlib.sha256(f"iv|{alpha}".encode()).digest()[:CCM_NONCE_BYTES]
    return AESCCM(key, tag_length=CCM_TAG_BYTES), nonce


def seal_channel(group: Group, signing_key: mpz, recipient: mpz, message: str) -> str:
    """Return send(sk, recipient, message): signed, then encrypted to `recipient`."""
    inner = dump_json({"recipient": str(recipient), "message": message})
    signed = dump_json(sign_message(group, signing_key, inner).to_json())
    randomness, shared_exponent = random_exponent(group), random_exponent(group)
    alpha, shared = group.exp_g(randomness), group.exp_g(shared_exponent)
    beta = group.mul(group.pow(recipient, randomness), shared)
    cipher, nonce = compute_ccm(group, shared, alpha)
    data = cipher.encrypt(nonce, signed.encode(), None).hex()
    return dump_json({"alpha": str(alpha), "beta": str(beta), "data": data})


def open_channel(group: Group, keys: TrusteeSeed, sender: mpz, text: str) -> str:
    """Decrypt and check a channel message to this trustee from verification key `sender`."""
    body = require_dict(load_json(text, "channel message"), {"alpha", "beta", "data"},
                        "channel message")
    alpha = parse_element(group, body["alpha"], "channel alpha")
    beta = parse_element(group, body["beta"], "channel beta")
    shared = group.div(beta, group.pow(alpha, keys.decryption_key))
    cipher, nonce = compute_ccm(group, shared, alpha)
    try:
        plain = cipher.decrypt(nonce, bytes.fromhex(str(body["data"])), None)
    except (InvalidTag, ValueError):
        raise BadTrusteeKey("a channel message does not decrypt for this trustee") from None
    signed = parse_signed_message(group, load_json(plain, "channel message"), "channel")
    verify_signed_message(group, sender, signed, "channel message")
    inner = require_dict(load_json(signed.message, "channel message"),
                         {"recipient", "message"}, "channel message")
    if inner["recipient"] != str(group.exp_g(keys.decryption_key)) or not isinstance(
            inner["message"], str):
        raise BadTrusteeKey("a channel message is addressed to another trustee")
    return inner["message"]


def read_certificates(group: Group, certificates: Sequence[str]) -> list[tuple[mpz, mpz]]:
    """Check certificates (JSON lines of certs.jsons); return (verification, encryption)."""
    keys = []
    for index, text in enumerate(certificates):
        signed, verification = parse_certificate(group, load_json(text, "certificate"), index)
        encryption = parse_element(group, load_json(signed.message, "certificate")[
            "encryption"], "encryption key")  # parse_certificate checked the shape
        keys.append((verification, encryption))
    return keys


def find_own_index(group: Group, keys: TrusteeSeed, certs: list[tuple[mpz, mpz]]) -> int:
    """Return this trustee's index (from 0) among the certificates."""
    own = group.exp_g(keys.signing_key)
    for index, (verification, _) in enumerate(certs):
        if verification == own:
            return index
    raise BadTrusteeKey("this trustee's certificate is not among the certificates")


def generate_polynomial(group: Group, keys: TrusteeSeed, certificates: Sequence[str],
                        threshold: int) -> str:
    """Step 3: draw f of degree threshold − 1; return the polynomial JSON for the others."""
    certs = read_certificates(group, certificates)
    if not 1 <= threshold <= len(certs):
        raise MalformedVotingData("the threshold is between 1 and the number of trustees")
    own = certs[find_own_index(group, keys, certs)][1]
    coefficients = [random_exponent(group) for _ in range(threshold)]
    shares = [sum(coefficient * index ** power for power, coefficient in enumerate(
        coefficients)) % group.q for index in range(1, len(certs) + 1)]
    coefexps = dump_json({"coefexps": [str(group.exp_g(value)) for value in coefficients]})
    return dump_json({
        "polynomial": seal_channel(group, keys.signing_key, own, dump_json(
            {"polynomial": [str(value) for value in coefficients]})),
        "secrets": [seal_channel(group, keys.signing_key, encryption,
                                 dump_json({"secret": str(share)}))
                    for share, (_, encryption) in zip(shares, certs, strict=True)],
        "coefexps": sign_message(group, keys.signing_key, coefexps).to_json()})


def compute_vinputs(polynomials: Sequence[str]) -> list[str]:
    """Step 4 (administrator): route the polynomials' secrets into one vinput per trustee."""
    bodies = [require_dict(load_json(text, "polynomial"), {"polynomial", "secrets",
                                                           "coefexps"}, "polynomial")
              for text in polynomials]
    return [dump_json({"polynomial": body["polynomial"],
                       "secrets": [require_list(other["secrets"], "secrets", len(bodies))[index]
                                   for other in bodies],
                       "coefexps": [other["coefexps"] for other in bodies]})
            for index, body in enumerate(bodies)]


def compute_voutput(group: Group, keys: TrusteeSeed, certificates: Sequence[str],
                    vinput: str) -> str:
    """Step 5: check every received share against its commitments; return the voutput."""
    certs = read_certificates(group, certificates)
    index = find_own_index(group, keys, certs)
    body = require_dict(load_json(vinput, "vinput"), {"polynomial", "secrets", "coefexps"},
                        "vinput")
    received = require_list(body["secrets"], "vinput secrets", len(certs))
    total = mpz(0)
    for sender, (text, coefexps) in enumerate(zip(received, require_list(
            body["coefexps"], "vinput coefexps", len(certs)), strict=True)):
        signed = parse_signed_message(group, coefexps, f"coefexps {sender}")
        verify_signed_message(group, certs[sender][0], signed, f"coefexps {sender}")
        body_coefexps = require_dict(load_json(signed.message, "coefexps"), {"coefexps"},
                                     "coefexps")
        commitments = [parse_element(group, item, "coefexps") for item in require_list(
            body_coefexps["coefexps"], "coefexps")]
        share = require_dict(load_json(open_channel(group, keys, certs[sender][0], text),
                                       "secret"), {"secret"}, "secret")
        secret = parse_number(share["secret"], "secret") % group.q  # the tool's is unreduced
        if group.exp_g(secret) != compute_verification_key(group, [commitments], index + 1):
            raise BadTrusteeKey(f"trustee {sender + 1}'s share does not match its commitments")
        total = (total + secret) % group.q
    public = make_trustee_public_key(group, total)
    return dump_json({"private_key": seal_channel(group, keys.signing_key, certs[index][1],
                                                  dump_json({"decryption_key": str(total)})),
                      "public_key": public.to_json()})


def make_threshold_parameters(group: Group, certificates: Sequence[str], threshold: int,
                              vinput: str, voutputs: Sequence[str]) -> ThresholdTrustees:
    """Step 6 (administrator): assemble and check the Pedersen item of trustees.json."""
    coefexps = require_dict(load_json(vinput, "vinput"), {"polynomial", "secrets", "coefexps"},
                            "vinput")["coefexps"]
    keys = [require_dict(load_json(text, "voutput"), {"private_key", "public_key"},
                         "voutput")["public_key"] for text in voutputs]
    return parse_threshold_trustees(group, {
        "threshold": threshold, "certs": [load_json(text, "certificate")
                                          for text in certificates],
        "coefexps": coefexps, "verification_keys": keys}, "threshold parameters")


def open_decryption_key(group: Group, keys: TrusteeSeed, sealed: str) -> mpz:
    """Return S_j from the sealed private_key of this trustee's voutput (its `.dkey`)."""
    own = group.exp_g(keys.signing_key)
    body = require_dict(load_json(open_channel(group, keys, own, sealed), "decryption key"),
                        {"decryption_key"}, "decryption key")
    # belenios-tool writes the sum of the shares unreduced; S_j is that sum modulo q.
    return parse_number(body["decryption_key"], "decryption key") % group.q
