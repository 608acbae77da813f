"""Decoders of outside input either decode or raise their typed error, whatever the input."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seoulchain.credentials import integrity
from seoulchain.credentials.errors import CredentialError, StatusListError
from seoulchain.credentials.statuslist import StatusList

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.sampled_from(["@context", "@id", "@type", "id", "type", "name",
                                       "credentialSubject", "proof", "@graph", "ageBand"]),
                      children, max_size=5),
    max_leaves=30)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_parse_document_parses_or_refuses(raw: bytes) -> None:
    with contextlib.suppress(CredentialError):
        assert isinstance(integrity.parse_document(raw), dict)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_canonicalize_gives_nquads_or_refuses(document: object) -> None:
    if not isinstance(document, dict):
        document = {"value": document}
    with contextlib.suppress(CredentialError):
        assert isinstance(integrity.canonicalize(json.loads(json.dumps(document))), str)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60) | st.text(max_size=60).map(lambda text: "u" + text))
def test_status_list_decodes_or_refuses(encoded: str) -> None:
    with contextlib.suppress(StatusListError):
        assert StatusList.decode(encoded).length >= 131_072
