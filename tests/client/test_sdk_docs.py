"""docs/sdk.md: every Python block runs, in order, against a live local node."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from seoulchain.bench.network import LocalNetwork
from seoulchain.client import create_key
from seoulchain.node.config import NodeConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
# Commit quickly so that the examples' waits for commits are short.
COMMIT_PAUSE_MS = 100
NETWORK_TIMEOUT_S = 30.0


def configure_fast(index: int, config: NodeConfig) -> None:
    config.chain.commit_pause_ms = COMMIT_PAUSE_MS


@pytest.fixture(scope="module")
def node_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("sdk-docs")
    key_path = root / "app.key"
    key = create_key(key_path)
    roles = {"notary.issuer": (key.public_key,), "vehicle.registrar": (key.public_key,)}
    with LocalNetwork.create(root / "net", 1, roles=roles, configure=configure_fast) as made:
        made.start_all()
        made.wait_for_height(1, timeout_s=NETWORK_TIMEOUT_S)
        yield {"SEOULCHAIN_URL": made.urls[0], "SEOULCHAIN_KEY": str(key_path)}


def test_sdk_doc_has_examples() -> None:
    assert len(PYTHON_BLOCK.findall(DOC.read_text())) >= 6


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_every_python_block_of_the_sdk_doc_runs(node_env: dict[str, str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in node_env.items():
        monkeypatch.setenv(name, value)
    namespace: dict[str, object] = {"__name__": "sdk_doc"}
    output = io.StringIO()
    for number, block in enumerate(PYTHON_BLOCK.findall(DOC.read_text()), 1):
        with contextlib.redirect_stdout(output):
            try:
                exec(compile(block, f"docs/sdk.md block {number}", "exec"), namespace)
            except Exception as exc:
                raise AssertionError(f"docs/sdk.md python block {number} failed: {exc!r}\n"
                                     f"{block}") from exc
    printed = output.getvalue()
    assert "vehicle.registered" in printed and "has no argument 'colour'" in printed
    assert "valid" in printed and "-1 register KMHD341CBGU123456" in printed
