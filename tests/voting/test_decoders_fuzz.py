"""Decoders of outside data either parse or raise a typed `RemoteError`, whatever the input."""

from __future__ import annotations

import contextlib
import json
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seoulchain.errors import RemoteError
from seoulchain.voting import (
    BELENIOS_2048,
    create_ballot,
    parse_election,
    parse_partial_decryption,
    parse_public_credentials,
    parse_result,
    parse_trustees,
    verify_ballot,
)
from tests.voting.samples import CREDENTIALS, make_setup

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8)
    | st.sampled_from(["1", "0", "01", str(BELENIOS_2048.g), "BELENIOS-2048", "Single"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["version", "questions", "answers", "min", "max",
                                       "pok", "public_key", "challenge", "response",
                                       "result", "decryption_factors", "decryption_proofs",
                                       "group", "uuid"]), children, max_size=5),
    max_leaves=12)


@settings(max_examples=100, deadline=None)
@given(st.one_of(json_values.map(lambda value: json.dumps(value).encode()), st.binary(max_size=40)))
def test_parsers_raise_only_typed_errors(raw: bytes) -> None:
    election = make_setup().election
    for parse in (parse_election, lambda data: parse_trustees(BELENIOS_2048, data),
                  lambda data: parse_public_credentials(BELENIOS_2048, data),
                  lambda data: parse_result(election, data),
                  lambda data: parse_partial_decryption(election, data)):
        with contextlib.suppress(RemoteError):
            parse(raw)


@cache
def sample_ballot() -> bytes:
    """Return one valid ballot of the sample election (made once, so draws are stable)."""
    return create_ballot(make_setup().election, CREDENTIALS[2], [[0, 1], [1, 0, 0, 0]]).raw


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_ballot_with_any_byte_changed_is_refused_with_a_typed_error(data) -> None:
    setup = make_setup()
    raw = bytearray(sample_ballot())
    position = data.draw(st.integers(0, len(raw) - 1))
    raw[position] = data.draw(st.integers(0, 255).filter(lambda byte: byte != raw[position]))
    with pytest.raises(RemoteError):
        verify_ballot(setup.election, bytes(raw), setup.credentials)
