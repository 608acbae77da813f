"""The offline document loader: shipped contexts only, checked against their manifest."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest

from seoulchain.credentials import integrity
from seoulchain.credentials.errors import ContextFileAltered, UnknownContext
from seoulchain.credentials.loader import (
    BITSTRING_STATUS_LIST_V1_URL,
    CREDENTIALS_V2_URL,
    DATA_INTEGRITY_V2_URL,
    DID_V1_URL,
    MULTIKEY_V1_URL,
    SEOULCHAIN_CREDENTIALS_V1_URL,
    get_default_loader,
    read_contexts,
)
from tests.credentials.samples import make_credential, make_did_document

CONTEXTS_DIR = Path(__file__).resolve().parents[2] / "src" / "seoulchain" / "credentials" \
    / "contexts"
SHIPPED = {CREDENTIALS_V2_URL, DATA_INTEGRITY_V2_URL, MULTIKEY_V1_URL, DID_V1_URL,
           BITSTRING_STATUS_LIST_V1_URL, SEOULCHAIN_CREDENTIALS_V1_URL}


def test_serves_exactly_the_shipped_contexts() -> None:
    loader = get_default_loader()
    assert loader.urls == SHIPPED
    for url in SHIPPED:
        remote = loader(url)
        assert remote["documentUrl"] == url and "@context" in remote["document"]


@pytest.mark.parametrize("url", ["https://www.w3.org/2018/credentials/v1",
                                 "https://www.w3.org/ns/credentials/examples/v2",
                                 "http://www.w3.org/ns/credentials/v2",
                                 "file:///etc/passwd", "did:seoul:2bN4UwFJc5Vqg8aH1kEr7s"])
def test_refused_unknown_url(url: str) -> None:
    with pytest.raises(UnknownContext) as caught:
        get_default_loader()(url)
    assert caught.value.url == url


def test_never_opens_a_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the loader opened a socket")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    integrity.canonicalize(make_credential("ResidencyCredential"))
    integrity.canonicalize(make_did_document())
    with pytest.raises(UnknownContext):
        integrity.canonicalize({"@context": "https://example.org/ctx", "name": "x"})


def test_manifest_lists_every_file_with_its_hash() -> None:
    manifest = json.loads((CONTEXTS_DIR / "manifest.json").read_bytes())
    files = {entry["file"] for entry in manifest["contexts"]}
    assert files == {path.name for path in CONTEXTS_DIR.glob("*.jsonld")}
    assert read_contexts(CONTEXTS_DIR).keys() == SHIPPED


def test_refused_altered_context_file(tmp_path: Path) -> None:
    shutil.copytree(CONTEXTS_DIR, tmp_path / "contexts")
    path = tmp_path / "contexts" / "credentials-v2.jsonld"
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b"https://www.w3.org/2018/credentials#issuer",
                                 b"https://www.w3.org/2018/credentials#issues", 1))
    with pytest.raises(ContextFileAltered, match=r"credentials-v2\.jsonld"):
        read_contexts(tmp_path / "contexts")


def test_refused_missing_context_file(tmp_path: Path) -> None:
    shutil.copytree(CONTEXTS_DIR, tmp_path / "contexts")
    (tmp_path / "contexts" / "multikey-v1.jsonld").unlink()
    with pytest.raises(ContextFileAltered, match="unreadable"):
        read_contexts(tmp_path / "contexts")


def test_seoulchain_context_is_protected_and_defines_every_claim() -> None:
    context = get_default_loader()(SEOULCHAIN_CREDENTIALS_V1_URL)["document"]["@context"]
    assert context["@protected"] is True
    for kind in ("ResidencyCredential", "AgeBandCredential",
                 "YouthAllowanceEligibilityCredential", "BusinessLicenceCredential",
                 "TrainingCertificateCredential"):
        assert context[kind].startswith("https://w3id.org/seoulchain/credentials#")
