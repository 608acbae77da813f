"""Ed25519 keys: key files, sign/verify, domain separation, and refusal of forgeries."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seoulchain.crypto import (
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    SigningKey,
    compute_sign_bytes,
    is_valid_signature,
    sha256,
)
from seoulchain.crypto.keys import KEY_FILE_MODE
from seoulchain.errors import DecodeError, LocalError

# Order of the Ed25519 base point (RFC 8032 §5.1).
GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493
SEED = bytes(range(32))


@pytest.fixture
def key() -> SigningKey:
    return SigningKey(SEED)


# --------------------------------------------------------------------------- key files


def test_keys_file_is_written_owner_only(tmp_path: Path, key: SigningKey) -> None:
    path = tmp_path / "keys" / "validator.key"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == KEY_FILE_MODE == 0o600
    assert path.read_text() == f"ed25519-seed:{SEED.hex()}\n"
    assert SigningKey.load(path) == key


def test_keys_file_is_owner_only_even_under_a_permissive_umask(tmp_path: Path,
                                                               key: SigningKey) -> None:
    previous = os.umask(0)
    try:
        key.save(tmp_path / "validator.key")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "validator.key").stat().st_mode) == 0o600


def test_keys_save_never_overwrites_an_existing_key(tmp_path: Path, key: SigningKey) -> None:
    path = tmp_path / "validator.key"
    key.save(path)
    with pytest.raises(OSError):
        SigningKey(bytes(32)).save(path)
    assert SigningKey.load(path) == key


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o666, 0o610, 0o601])
def test_keys_load_refuses_group_or_world_accessible_files(tmp_path: Path, key: SigningKey,
                                                           mode: int) -> None:
    path = tmp_path / "validator.key"
    key.save(path)
    path.chmod(mode)
    with pytest.raises(LocalError, match=rf"chmod 600 {path}"):
        SigningKey.load(path)
    path.chmod(0o600)  # the fix the message tells the operator
    assert SigningKey.load(path) == key


def test_keys_load_accepts_owner_read_only(tmp_path: Path, key: SigningKey) -> None:
    path = tmp_path / "validator.key"
    key.save(path)
    path.chmod(0o400)
    assert SigningKey.load(path) == key


def test_keys_load_missing_file_is_a_local_error(tmp_path: Path) -> None:
    with pytest.raises(LocalError, match="cannot read key file"):
        SigningKey.load(tmp_path / "absent.key")


@pytest.mark.parametrize("content", [
    "", "hello\n", f"rsa-seed:{SEED.hex()}\n", "ed25519-seed:zz\n",
    f"ed25519-seed:{SEED.hex()[:-2]}\n", f"ed25519-seed:{SEED.hex()}00\n",
])
def test_keys_load_rejects_malformed_files(tmp_path: Path, content: str) -> None:
    path = tmp_path / "validator.key"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(DecodeError):
        SigningKey.load(path)


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_keys_seed_must_be_32_bytes(size: int) -> None:
    with pytest.raises(LocalError):
        SigningKey(bytes(size))


def test_keys_repr_does_not_reveal_the_seed(key: SigningKey) -> None:
    assert SEED.hex() not in repr(key)
    assert key.public_key.hex() in repr(key)


def test_keys_generate_gives_distinct_keys() -> None:
    assert SigningKey.generate().public_key != SigningKey.generate().public_key


# --------------------------------------------------------------------------- sign and verify


def test_keys_rfc8032_test_vector_1() -> None:
    """RFC 8032 §7.1 TEST 1: pure Ed25519, empty message."""
    rfc_key = SigningKey(bytes.fromhex(
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
    assert rfc_key.public_key.hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    signature = rfc_key.sign(b"")
    assert signature.hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065"
        "224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
    assert is_valid_signature(rfc_key.public_key, b"", signature)


@given(st.binary(max_size=256))
def test_keys_sign_then_verify(message: bytes) -> None:
    key = SigningKey(SEED)
    signature = key.sign(message)
    assert len(signature) == SIGNATURE_BYTES
    assert len(key.public_key) == PUBLIC_KEY_BYTES
    assert signature == key.sign(message)  # deterministic (RFC 8032)
    assert is_valid_signature(key.public_key, message, signature)
    assert not is_valid_signature(key.public_key, message + b"\x00", signature)
    assert not is_valid_signature(SigningKey(bytes(32)).public_key, message, signature)


def test_keys_sign_payload_signs_the_domain_separated_bytes(key: SigningKey) -> None:
    signature = key.sign_payload("seoulchain/tx", "seoul-devnet-1", [1, "hello"])
    sign_bytes = compute_sign_bytes("seoulchain/tx", "seoul-devnet-1", [1, "hello"])
    assert sign_bytes.hex() == (
        "836d73656f756c636861696e2f74786e73656f756c2d6465766e65742d3182016568656c6c6f")
    assert is_valid_signature(key.public_key, sign_bytes, signature)


@pytest.mark.parametrize(("context_tag", "chain_id", "payload"), [
    ("seoulchain/vote", "seoul-devnet-1", [1, "hello"]),  # another purpose
    ("seoulchain/tx", "seoul-testnet-1", [1, "hello"]),  # another chain
    ("seoulchain/tx", "seoul-devnet-1", [1, "hello!"]),  # another payload
    ("seoulchain/tx", "seoul-devnet-1", [2, "hello"]),  # another version
])
def test_keys_signature_does_not_transfer_across_domains(key: SigningKey, context_tag: str,
                                                         chain_id: str, payload: list) -> None:
    signature = key.sign_payload("seoulchain/tx", "seoul-devnet-1", [1, "hello"])
    other = compute_sign_bytes(context_tag, chain_id, payload)
    assert not is_valid_signature(key.public_key, other, signature)


def test_keys_raw_payload_signature_is_not_a_domain_signature(key: SigningKey) -> None:
    payload_bytes = compute_sign_bytes("seoulchain/tx", "seoul-devnet-1", [1, "hello"])
    raw = key.sign(b"hello")
    assert not is_valid_signature(key.public_key, payload_bytes, raw)


# --------------------------------------------------------------------------- forgeries


def test_keys_every_single_bit_flip_of_a_signature_is_refused(key: SigningKey) -> None:
    message = sha256(b"document")
    signature = key.sign(message)
    for bit in range(8 * SIGNATURE_BYTES):
        flipped = bytearray(signature)
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert not is_valid_signature(key.public_key, message, bytes(flipped)), bit


def test_keys_every_single_bit_flip_of_the_public_key_is_refused(key: SigningKey) -> None:
    message = sha256(b"document")
    signature = key.sign(message)
    for bit in range(8 * PUBLIC_KEY_BYTES):
        flipped = bytearray(key.public_key)
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert not is_valid_signature(bytes(flipped), message, signature), bit


def test_keys_malleated_signature_s_plus_l_is_refused(key: SigningKey) -> None:
    """S and S + L satisfy the same equation; strict verification accepts only S < L."""
    message = b"pay 10 points"
    signature = key.sign(message)
    s_value = int.from_bytes(signature[32:], "little")
    malleated = signature[:32] + (s_value + GROUP_ORDER).to_bytes(32, "little")
    assert is_valid_signature(key.public_key, message, signature)
    assert not is_valid_signature(key.public_key, message, malleated)


def test_keys_small_order_public_key_universal_forgery_is_refused() -> None:
    """With A = identity, R = identity and S = 0, the verification equation holds for every
    message; libsodium refuses small-order keys, so this forgery must fail."""
    identity = (1).to_bytes(32, "little")
    forged = identity + bytes(32)
    for message in (b"", b"transfer everything", sha256(b"x")):
        assert not is_valid_signature(identity, message, forged)


@pytest.mark.parametrize(("public_key_size", "signature_size"), [(31, 64), (33, 64), (32, 63),
                                                                  (32, 65), (0, 0)])
def test_keys_wrong_lengths_are_invalid_not_errors(key: SigningKey, public_key_size: int,
                                                   signature_size: int) -> None:
    public_key = (key.public_key + b"\x00")[:public_key_size]
    signature = (key.sign(b"m") + b"\x00")[:signature_size]
    assert not is_valid_signature(public_key, b"m", signature)


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=64, max_size=64),
       st.binary(max_size=64))
def test_keys_random_signatures_are_refused_without_exceptions(public_key: bytes,
                                                               signature: bytes,
                                                               message: bytes) -> None:
    assert is_valid_signature(public_key, message, signature) is False
