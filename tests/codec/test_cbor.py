"""Deterministic CBOR: round trips, an independent reference of the spec, every rejection.

The reference encoder and decoder below are written from docs/spec/ledger.md §2 alone,
without cbor2; the property tests check that the real codec agrees with them exactly, on
valid values and on arbitrary (mostly invalid) bytes.
"""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seoulchain.codec import decode, encode
from seoulchain.codec.cbor import DEPTH_MAX, INT_MAX, INT_MIN
from seoulchain.errors import DecodeError, LocalError

# --------------------------------------------------------------------------- strategies

INTS = st.integers(min_value=INT_MIN, max_value=INT_MAX)
# Small, edge-heavy integers: every head width and both sides of each boundary.
EDGE_INTS = st.sampled_from([0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32,
                             INT_MAX, -1, -24, -25, -256, -257, -(2**32), INT_MIN])
SCALARS = (st.none() | st.booleans() | INTS | EDGE_INTS | st.binary(max_size=40)
           | st.text(max_size=20))
KEYS = st.text(max_size=6)


def compute_depth(value: Any) -> int:
    """Return the depth of the deepest item of `value` (the top-level item is depth 0)."""
    if isinstance(value, list | tuple):
        return 1 + max((compute_depth(item) for item in value), default=-1)
    if isinstance(value, dict):
        return 1 + max((compute_depth(item) for item in value.values()), default=-1)
    return 0


VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(KEYS, children, max_size=6),
    max_leaves=25,
).filter(lambda value: compute_depth(value) <= DEPTH_MAX)


def is_same_value(left: Any, right: Any) -> bool:
    """Return True if two data-model values are equal *and* of the same types throughout."""
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(map(is_same_value, left, right))
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return (list(left) == list(right) or sorted(left) == sorted(right)) and all(
            is_same_value(item, right[key]) for key, item in left.items())
    return bool(left == right)


# --------------------------------------------------------------------------- reference codec


def reference_head(major: int, argument: int) -> bytes:
    """Return the shortest head for `argument` (spec §2.2 rule 1)."""
    if argument < 24:
        return bytes([major << 5 | argument])
    for additional, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if argument < 1 << (8 * size):
            return bytes([major << 5 | additional]) + argument.to_bytes(size, "big")
    raise ValueError("argument beyond 64 bits")


def reference_encode(value: Any) -> bytes:
    """Encode a data-model value following spec §2.2, independently of cbor2."""
    if value is False:
        return b"\xf4"
    if value is True:
        return b"\xf5"
    if value is None:
        return b"\xf6"
    if isinstance(value, int):
        return reference_head(0, value) if value >= 0 else reference_head(1, -1 - value)
    if isinstance(value, bytes):
        return reference_head(2, len(value)) + value
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return reference_head(3, len(raw)) + raw
    if isinstance(value, list | tuple):
        return reference_head(4, len(value)) + b"".join(map(reference_encode, value))
    pairs = sorted((reference_encode(key), reference_encode(item)) for key, item in value.items())
    return reference_head(5, len(pairs)) + b"".join(key + item for key, item in pairs)


class Rejected(Exception):
    """The reference decoder refuses the input."""


def reference_decode(data: bytes) -> Any:
    """Decode strictly following spec §2.3, independently of cbor2."""
    value, end = reference_item(data, 0, 0)
    if end != len(data):
        raise Rejected("trailing bytes")
    return value


def reference_argument(data: bytes, position: int) -> tuple[int, int, int]:
    """Return (major, argument, position after the head), enforcing the shortest head."""
    if position >= len(data):
        raise Rejected("truncated head")
    major, additional = data[position] >> 5, data[position] & 31
    if additional < 24:
        return major, additional, position + 1
    if additional > 27:
        raise Rejected("indefinite length or reserved additional information")
    size = 1 << (additional - 24)
    if position + 1 + size > len(data):
        raise Rejected("truncated argument")
    argument = int.from_bytes(data[position + 1:position + 1 + size], "big")
    if major != 7 and reference_head(major, argument) != data[position:position + 1 + size]:
        raise Rejected("argument not in its shortest form")
    return major, argument, position + 1 + size


def reference_item(data: bytes, position: int, depth: int) -> tuple[Any, int]:
    if depth > DEPTH_MAX:
        raise Rejected("too deep")
    start = position
    major, argument, position = reference_argument(data, position)
    if major == 0:
        return argument, position
    if major == 1:
        return -1 - argument, position
    if major in (2, 3):
        if argument > len(data) - position:
            raise Rejected("string longer than the input")
        raw = data[position:position + argument]
        if major == 2:
            return raw, position + argument
        try:
            return raw.decode("utf-8"), position + argument
        except UnicodeDecodeError as exc:
            raise Rejected("invalid UTF-8") from exc
    if major == 4:
        items = []
        for _ in range(argument):
            item, position = reference_item(data, position, depth + 1)
            items.append(item)
        return items, position
    if major == 5:
        result: dict[str, Any] = {}
        previous_key = b""
        for index in range(argument):
            key_start = position
            key, position = reference_item(data, position, depth + 1)
            if not isinstance(key, str):
                raise Rejected("map key is not a text string")
            if index and data[key_start:position] <= previous_key:
                raise Rejected("map keys unsorted or duplicated")
            previous_key = data[key_start:position]
            result[key], position = reference_item(data, position, depth + 1)
        return result, position
    if major == 7 and data[start] in (0xF4, 0xF5, 0xF6):
        return {0xF4: False, 0xF5: True, 0xF6: None}[data[start]], position
    raise Rejected("tag, float, undefined or simple value")


def reference_accepts(data: bytes) -> tuple[bool, Any]:
    try:
        return True, reference_decode(data)
    except Rejected:
        return False, None


def codec_accepts(data: bytes) -> tuple[bool, Any]:
    try:
        return True, decode(data)
    except DecodeError:
        return False, None


# --------------------------------------------------------------------------- raw CBOR generator


@st.composite
def raw_cbor(draw: st.DrawFn, depth: int = 0) -> bytes:
    """Draw well-formed-looking CBOR that may break any determinism rule."""

    def head(major: int, argument: int) -> bytes:
        widths = [size for size in (0, 1, 2, 4, 8)
                  if (size == 0 and argument < 24) or (size and argument < 1 << (8 * size))]
        # Usually the shortest width, sometimes a longer (non-canonical) one.
        size = widths[0] if draw(st.integers(0, 9)) else draw(st.sampled_from(widths))
        if size == 0:
            return bytes([major << 5 | argument])
        code = {1: 24, 2: 25, 4: 26, 8: 27}[size]
        return bytes([major << 5 | code]) + argument.to_bytes(size, "big")

    kind = draw(st.sampled_from(
        ["uint", "nint", "bytes", "text", "array", "map", "simple", "float", "tag",
         "indefinite", "random"] if depth < 4 else ["uint", "bytes", "text", "simple"]))
    if kind in ("uint", "nint"):
        return head(0 if kind == "uint" else 1, draw(st.integers(0, 2**64 - 1) | EDGE_INTS
                                                     .filter(lambda number: number >= 0)))
    if kind == "bytes":
        raw = draw(st.binary(max_size=8))
        return head(2, len(raw)) + raw
    if kind == "text":
        raw = draw(st.text(max_size=4).map(str.encode) | st.binary(max_size=4))
        return head(3, len(raw)) + raw
    if kind == "array":
        items = draw(st.lists(raw_cbor(depth + 1), max_size=4))
        return head(4, len(items)) + b"".join(items)
    if kind == "map":
        pairs = draw(st.lists(st.tuples(st.one_of(st.text(max_size=3).map(encode),
                                                  raw_cbor(depth + 1)), raw_cbor(depth + 1)),
                              max_size=4))
        if draw(st.booleans()):
            pairs.sort()
        return head(5, len(pairs)) + b"".join(key + item for key, item in pairs)
    if kind == "simple":
        return draw(st.sampled_from([b"\xf4", b"\xf5", b"\xf6", b"\xf7", b"\xf0", b"\xf8\x20",
                                     b"\xff", b"\x1c"]))
    if kind == "float":
        return draw(st.sampled_from([b"\xf9\x3c\x00", b"\xfa\x3f\x80\x00\x00",
                                     b"\xfb\x3f\xf0\x00\x00\x00\x00\x00\x00"]))
    if kind == "tag":
        return head(6, draw(st.sampled_from([0, 1, 2, 3, 24, 28, 29, 30, 55799]))) + draw(
            raw_cbor(depth + 1))
    if kind == "indefinite":
        major = draw(st.sampled_from([2, 3, 4, 5]))
        items = draw(st.lists(raw_cbor(depth + 1), max_size=3))
        return bytes([major << 5 | 31]) + b"".join(items) + b"\xff"
    return draw(st.binary(min_size=1, max_size=6))


# --------------------------------------------------------------------------- round trips


@given(VALUES)
def test_codec_round_trip_is_exact(value: Any) -> None:
    data = encode(value)
    decoded = decode(data)
    assert is_same_value(decoded, value)
    assert encode(decoded) == data


@given(VALUES)
def test_codec_matches_the_reference_encoder(value: Any) -> None:
    assert encode(value) == reference_encode(value)


@given(VALUES)
def test_codec_matches_the_reference_decoder_on_valid_encodings(value: Any) -> None:
    data = encode(value)
    assert is_same_value(reference_decode(data), decode(data))


@given(st.dictionaries(KEYS, SCALARS, min_size=2, max_size=8), st.randoms())
def test_codec_map_encoding_ignores_insertion_order(mapping: dict[str, Any], rng: Any) -> None:
    items = list(mapping.items())
    rng.shuffle(items)
    assert encode(dict(items)) == encode(mapping)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(raw_cbor())
def test_codec_agrees_with_the_reference_decoder_on_arbitrary_cbor(data: bytes) -> None:
    ours, reference = codec_accepts(data), reference_accepts(data)
    assert ours[0] == reference[0], (data.hex(), ours, reference)
    if ours[0]:
        assert is_same_value(ours[1], reference[1])


@pytest.mark.slow
@settings(max_examples=1_000, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(raw_cbor())
def test_codec_agrees_with_the_reference_decoder_on_arbitrary_cbor_slow(data: bytes) -> None:
    ours, reference = codec_accepts(data), reference_accepts(data)
    assert ours[0] == reference[0], (data.hex(), ours, reference)
    if ours[0]:
        assert is_same_value(ours[1], reference[1])


@given(st.binary(max_size=64))
def test_codec_agrees_with_the_reference_decoder_on_arbitrary_bytes(data: bytes) -> None:
    ours, reference = codec_accepts(data), reference_accepts(data)
    assert ours[0] == reference[0], data.hex()
    if ours[0]:
        assert is_same_value(ours[1], reference[1])


@pytest.mark.parametrize(("value", "expected_hex"), [
    (0, "00"), (23, "17"), (24, "1818"), (255, "18ff"), (256, "190100"),
    (65535, "19ffff"), (65536, "1a00010000"), (2**32 - 1, "1affffffff"),
    (2**32, "1b0000000100000000"), (INT_MAX, "1bffffffffffffffff"), (-1, "20"),
    (-24, "37"), (-25, "3818"), (INT_MIN, "3bffffffffffffffff"), (False, "f4"), (True, "f5"),
    (None, "f6"), (b"", "40"), ("", "60"), ("서울", "66ec849cec9ab8"), ([], "80"), ({}, "a0"),
    ({"b": 1, "aa": 2}, "a261620162616102"), ((1, 2), "820102"),
])
def test_codec_known_encodings(value: Any, expected_hex: str) -> None:
    assert encode(value).hex() == expected_hex


# --------------------------------------------------------------------------- rejections


REJECTED_ENCODINGS = {
    "empty input": "",
    "non-canonical int (1-byte argument for 23)": "1817",
    "non-canonical int (8-byte argument for 0)": "1b0000000000000000",
    "non-canonical negative int": "3800",
    "non-canonical byte string length": "580101",
    "non-canonical array length": "9800",
    "non-canonical map length": "b800",
    "unsorted map keys": "a2616200616100",
    "map keys in dictionary instead of encoded order": "a262616100616200",
    "duplicate map keys": "a2616100616101",
    "indefinite array": "9f01ff",
    "indefinite map": "bf616100ff",
    "indefinite byte string": "5f4101ff",
    "indefinite text string": "7f6161ff",
    "half float": "f93c00",
    "single float": "fa3f800000",
    "double float": "fb3ff0000000000000",
    "tag 0 date string": "c06131",
    "tag 1 epoch": "c101",
    "tag 2 small bignum": "c24101",
    "tag 2 bignum beyond 64 bits": "c249010000000000000000",
    "tag 2 bignum of 2048 bytes": "c2590800" + "01" * 2048,
    "map key that is a huge bignum": "a1c2590800" + "01" * 2048 + "00",
    "tag 3 bignum beyond 64 bits": "c349010000000000000000",
    "tag 55799 self-describe": "d9d9f701",
    "shared reference cycle": "d81c81d81d00",
    "shared reference (duplicated value)": "82d81c01d81d00",
    "tag 30 rational with zero denominator": "d81e820100",
    "tag 5 bigfloat with huge exponent": "c5821b7fffffffffffffff01",
    "undefined": "f7",
    "simple value": "f0",
    "simple value two-byte": "f820",
    "reserved additional info": "1c",
    "lone break": "ff",
    "trailing bytes": "0100",
    "truncated array": "8201",
    "truncated head": "19ff",
    "byte string claims 2^64-1 bytes": "5bffffffffffffffff00",
    "array claims 2^32-1 items": "9affffffff00",
    "map claims 2^64-1 pairs": "bbffffffffffffffff",
    "invalid UTF-8": "62c328",
    "UTF-8 encoded surrogate": "63eda080",
    "overlong UTF-8": "62c0af",
    "integer map key": "a10100",
    "byte string map key": "a1416100",
    "array map key": "a1800000",
    "nesting 33 deep": "81" * DEPTH_MAX + "8100",
}


@pytest.mark.parametrize("hex_text", REJECTED_ENCODINGS.values(), ids=REJECTED_ENCODINGS.keys())
def test_codec_rejects(hex_text: str) -> None:
    data = bytes.fromhex(hex_text)
    with pytest.raises(DecodeError):
        decode(data)
    assert not reference_accepts(data)[0]


def test_codec_nesting_limit_is_exact() -> None:
    deepest = [0]
    for _ in range(DEPTH_MAX - 1):
        deepest = [deepest]
    assert compute_depth(deepest) == DEPTH_MAX
    assert decode(encode(deepest)) == deepest
    with pytest.raises(LocalError):
        encode([deepest])
    with pytest.raises(DecodeError):
        decode(b"\x81" + encode(deepest))


def test_codec_rejects_cbor2_default_non_canonical_output() -> None:
    data = cbor2.dumps({"b": 1, "a": 2})  # insertion order, not canonical
    with pytest.raises(DecodeError):
        decode(data)


def test_codec_size_limit_is_checked_before_parsing() -> None:
    data = encode(bytes(100))
    assert decode(data, bytes_max=len(data)) == bytes(100)
    with pytest.raises(DecodeError):
        decode(data, bytes_max=len(data) - 1)


@pytest.mark.parametrize("data", ["00", None, 0, [0]])
def test_codec_rejects_non_bytes_input(data: Any) -> None:
    with pytest.raises(DecodeError):
        decode(data)


def test_codec_accepts_bytes_like_input() -> None:
    assert decode(bytearray(b"\x01")) == 1
    assert decode(memoryview(b"\x82\x01\x02")) == [1, 2]


@pytest.mark.parametrize("value", [
    1.0, float("nan"), INT_MAX + 1, INT_MIN - 1, 2**70, {1: "int key"}, {b"k": 1},
    {("t",): 1}, {1, 2}, bytearray(b"x"), object(), cbor2.CBORTag(1, 0), "\ud800",
    {"nested": [1.5]},
], ids=repr)
def test_codec_encode_refuses_values_outside_the_model(value: Any) -> None:
    with pytest.raises(LocalError):
        encode(value)


# --------------------------------------------------------------------------- truncations


def assert_every_truncation_rejected(data: bytes) -> None:
    """Feed `data` byte by byte: every proper prefix must raise DecodeError."""
    for end in range(len(data)):
        with pytest.raises(DecodeError):
            decode(data[:end])


@given(VALUES)
def test_codec_truncations_of_valid_encodings_are_rejected(value: Any) -> None:
    assert_every_truncation_rejected(encode(value))


@given(VALUES, st.binary(min_size=1, max_size=4))
def test_codec_extensions_of_valid_encodings_are_rejected(value: Any, suffix: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(encode(value) + suffix)
