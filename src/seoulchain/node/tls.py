"""TLS 1.3 identities bound to validator keys: certificates, trust anchors, SSL contexts.

Theory of operation (docs/spec/transport.md has the full argument):

- A node's TLS certificate key IS its Ed25519 validator key. `build_certificate` derives
  the certificate from the 32-byte seed alone, with fixed fields (serial from the key,
  validity 2020-01-01 .. 9999-12-31, names from the key's hex), and Ed25519 signatures
  are deterministic, so the same seed always gives the same DER bytes: nothing to issue,
  renew, distribute or store.
- The certificate names as its issuer a per-key "anchor" name. Any verifier builds the
  matching trust anchor from the public key alone (`build_anchor`): same name, same key.
  A trust anchor is only a (name, key) pair (RFC 5280 §6.1.1(d)); OpenSSL never checks an
  anchor's own self-signature (X509_V_FLAG_CHECK_SS_SIGNATURE is off), so the anchor is
  signed with a fixed, public throwaway key to make plain that it carries no authority.
- Trusting exactly the anchors of the pinned validator keys, with CERT_REQUIRED on both
  sides, makes OpenSSL refuse at the handshake any certificate not signed by a pinned key,
  and TLS 1.3's CertificateVerify proves the peer holds the certificate key's secret half.
  `get_peer_key` then re-checks, before any application byte is read, that the
  certificate's own key is pinned (a pinned validator could sign a certificate for some
  other key; that must not pass).
- Only TLS 1.3; no hostname checks (the identity is the key, not a DNS name); no session
  tickets (a resumed session would skip the certificate exchange).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import ssl
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from seoulchain.crypto import PUBLIC_KEY_BYTES, SigningKey, sha256
from seoulchain.errors import LocalError, RemoteError

# Fixed validity: certificates never need renewing, because trust comes from the pinned key,
# not from a date. 9999-12-31T23:59:59Z is RFC 5280 §4.1.2.5's "no well-defined expiration".
CERT_NOT_BEFORE = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
CERT_NOT_AFTER = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)
CERT_UNIT_LEAF = "seoulchain validator"
CERT_UNIT_ANCHOR = "seoulchain validator anchor"
SERIAL_DOMAIN = b"seoulchain/tls/serial/v1"
# RFC 5280 §4.1.2.2: a serial is a positive integer of at most 20 octets; 16 suffice.
SERIAL_BYTES = 16
# RFC 7093 §2 method 1: the key identifier is the leftmost 160 bits of the SHA-256 hash.
KEY_ID_BYTES = 20
# The anchors' signer: public on purpose, since nobody checks an anchor's signature.
ANCHOR_SIGNER_SEED = sha256(b"seoulchain/tls/anchor-signer/v1")
# A peer certificate is a few hundred bytes; refuse to parse anything absurd.
PEER_CERT_BYTES_MAX = 4096


class PeerIdentityError(RemoteError):
    """A peer's TLS certificate does not carry a pinned Ed25519 validator key."""


def compute_key_id(public_key: bytes) -> bytes:
    """Return the X.509 key identifier of an Ed25519 public key (RFC 7093 method 1)."""
    return sha256(public_key)[:KEY_ID_BYTES]


def compute_serial(public_key: bytes) -> int:
    """Return the deterministic, positive certificate serial number for a public key."""
    return int.from_bytes(sha256(SERIAL_DOMAIN, public_key)[:SERIAL_BYTES], "big") >> 1 or 1


def compute_leaf_name(public_key: bytes) -> x509.Name:
    """Return the subject name of the validator certificate for `public_key`."""
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, CERT_UNIT_LEAF),
                      x509.NameAttribute(NameOID.COMMON_NAME, public_key.hex())])


def compute_anchor_name(public_key: bytes) -> x509.Name:
    """Return the name of the trust anchor for `public_key` (the certificate's issuer)."""
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, CERT_UNIT_ANCHOR),
                      x509.NameAttribute(NameOID.COMMON_NAME, public_key.hex())])


def build_certificate(key: SigningKey) -> bytes:
    """Return the DER certificate of a validator key, signed by that key (deterministic)."""
    private = ed25519.Ed25519PrivateKey.from_private_bytes(key.seed)
    public_key = key.public_key
    key_id = compute_key_id(public_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(compute_leaf_name(public_key))
        .issuer_name(compute_anchor_name(public_key))
        .public_key(private.public_key())
        .serial_number(compute_serial(public_key))
        .not_valid_before(CERT_NOT_BEFORE)
        .not_valid_after(CERT_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier(key_id), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(key_id, None, None), critical=False)
    )
    return builder.sign(private, None).public_bytes(serialization.Encoding.DER)


def build_anchor(public_key: bytes) -> bytes:
    """Return the DER trust anchor that makes OpenSSL accept certificates signed by `public_key`."""
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise LocalError(f"a validator key is {PUBLIC_KEY_BYTES} bytes, got {len(public_key)}")
    signer = ed25519.Ed25519PrivateKey.from_private_bytes(ANCHOR_SIGNER_SEED)
    builder = (
        x509.CertificateBuilder()
        .subject_name(compute_anchor_name(public_key))
        .issuer_name(compute_anchor_name(public_key))
        .public_key(ed25519.Ed25519PublicKey.from_public_bytes(public_key))
        .serial_number(compute_serial(public_key))
        .not_valid_before(CERT_NOT_BEFORE)
        .not_valid_after(CERT_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier(compute_key_id(public_key)), critical=False)
    )
    return builder.sign(signer, None).public_bytes(serialization.Encoding.DER)


def get_certificate_key(cert_der: bytes | None) -> bytes:
    """Return the Ed25519 public key a DER certificate carries, or raise `PeerIdentityError`."""
    if not cert_der:
        raise PeerIdentityError("the peer presented no certificate")
    if len(cert_der) > PEER_CERT_BYTES_MAX:
        raise PeerIdentityError(f"the peer certificate is over {PEER_CERT_BYTES_MAX} bytes")
    try:
        public = x509.load_der_x509_certificate(cert_der).public_key()
    except ValueError as exc:
        raise PeerIdentityError(f"the peer certificate does not parse: {exc}") from exc
    if not isinstance(public, ed25519.Ed25519PublicKey):
        raise PeerIdentityError(f"the peer certificate key is {type(public).__name__}, "
                                "not Ed25519")
    return public.public_bytes_raw()


def get_peer_key(ssl_object: ssl.SSLObject | None, trusted_keys: frozenset[bytes]) -> bytes:
    """Return the pinned validator key a finished TLS session authenticated, or raise."""
    if ssl_object is None or ssl_object.version() != "TLSv1.3":
        raise PeerIdentityError("the connection is not TLS 1.3")
    public_key = get_certificate_key(ssl_object.getpeercert(binary_form=True))
    if public_key not in trusted_keys:
        raise PeerIdentityError(f"peer key {public_key.hex()} is not a pinned validator key")
    return public_key


def make_context(key: SigningKey, trusted_keys: Iterable[bytes], *,
                 server_side: bool) -> ssl.SSLContext:
    """Return a TLS 1.3-only context presenting `key` and accepting only `trusted_keys`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side
                             else ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags = ssl.VERIFY_X509_STRICT | ssl.VERIFY_X509_TRUSTED_FIRST
    context.options |= ssl.OP_NO_TICKET
    if server_side:
        context.num_tickets = 0
    load_identity(context, key)
    anchors = sorted(set(trusted_keys))
    if not anchors:
        raise LocalError("a TLS context needs at least one pinned peer key")
    for public_key in anchors:
        context.load_verify_locations(cadata=build_anchor(public_key))
    return context


def load_identity(context: ssl.SSLContext, key: SigningKey) -> None:
    """Load the validator certificate and key into `context` without persisting the key."""
    private = ed25519.Ed25519PrivateKey.from_private_bytes(key.seed)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    cert = x509.load_der_x509_certificate(build_certificate(key))
    pem += cert.public_bytes(serialization.Encoding.PEM)
    # The ssl module loads keys only from a path: an anonymous memory file where the OS has
    # one (Linux), else a private temporary directory removed at once.
    with open_secret_path(pem) as path:
        context.load_cert_chain(path)


@contextlib.contextmanager
def open_secret_path(data: bytes) -> Iterator[str]:
    """Yield a filesystem path holding `data`, readable by this process only, then erase it."""
    if hasattr(os, "memfd_create") and Path("/proc/self/fd").is_dir():
        descriptor = os.memfd_create("seoulchain-tls", 0)
        try:
            os.write(descriptor, data)
            yield f"/proc/self/fd/{descriptor}"
        finally:
            os.close(descriptor)
        return
    with tempfile.TemporaryDirectory(prefix="seoulchain-tls-") as directory:
        path = Path(directory) / "identity.pem"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        try:
            yield str(path)
        finally:
            path.unlink(missing_ok=True)
