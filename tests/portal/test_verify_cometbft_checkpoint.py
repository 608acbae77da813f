"""The page's verifier on CometBFT bundles from a checkpoint (docs/spec/proofs.md §13): the
user types the checkpoint `seoulchain prove` prints (height:header hash); the JS verifier
(src/seoulchain/api/portal/verify/) and the Python one reach the same statement, or fail at
the same step, on the same bytes."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from seoulchain.ledger.types import BlockHeader
from seoulchain.light.bundle import (
    BundleError,
    Checkpoint,
    assemble_bundle,
    build_cometbft_sections,
    render_bundle,
    verify_bundle,
)
from seoulchain.light.cometbft import CometLightBlock, light_block_to_json
from tests.light.test_cometbft import (
    REAL_BUNDLE,
    REAL_GENESIS,
    SyntheticChain,
    make_header,
    make_keys,
    sign_block,
)
from tests.light.test_cometbft_checkpoint import REAL_BLOCK, REAL_HEADER, make_checkpoint_bundle

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "tests" / "portal" / "verify_bundles.mjs"
NODE = shutil.which("node")
RUN_TIMEOUT_S = 60
# The synthetic chain: the first set signs up to SWITCH, a disjoint set after it; the
# verifier trusts CHECKPOINT (a header of the first set) and the bundle proves REAL_HEADER
# (seoulchain height 152) by CometBFT header 153.
CHECKPOINT = 20
SWITCH = 100

pytestmark = [pytest.mark.skipif(NODE is None, reason="node (Node.js 20) is not installed"),
              pytest.mark.slow]


class CheckpointChain:
    """A CometBFT chain of REAL_GENESIS's chain id whose set changes after SWITCH, and whose
    header 153 names the real seoulchain header 152 as its app hash."""

    def __init__(self) -> None:
        self.chain = SyntheticChain(make_keys(4, 1), make_keys(4, 20), SWITCH, REAL_BLOCK.height)

    def get_comet_light_block(self, height: int) -> CometLightBlock:
        sets = self.chain.sets
        header = replace(make_header(height, sets[height], sets[height + 1]),
                         chain_id=REAL_GENESIS.chain_id)
        if height == REAL_BLOCK.height:
            header = replace(header, app_hash=REAL_HEADER.block_id())
        return sign_block(header, sets[height], self.chain.keys)

    def get_header(self, height: int) -> BlockHeader:
        assert height == REAL_HEADER.height, height
        return REAL_HEADER


def make_bundle(source: CheckpointChain) -> dict[str, Any]:
    sections = build_cometbft_sections(source, REAL_GENESIS, REAL_HEADER.height,  # type: ignore[arg-type]
                                       checkpoint_height=CHECKPOINT)
    return assemble_bundle(REAL_GENESIS, sections, REAL_BUNDLE["proof"])


def typed(bundle: dict[str, Any]) -> str:
    """The checkpoint as `seoulchain prove` prints it and the user types it in."""
    return f"{bundle['trust']['height']}:{bundle['trust']['block_id']}"


def changed(bundle: dict[str, Any], change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    copied = copy.deepcopy(bundle)
    change(copied)
    return copied


def flip_hex(text: str) -> str:
    return ("0" if text[0] != "0" else "1") + text[1:]


def verify_in_python(bundle: dict[str, Any], checkpoint: str | None) -> dict[str, Any]:
    stated = None
    if checkpoint is not None:
        height, block_id = checkpoint.split(":")
        stated = Checkpoint(int(height), bytes.fromhex(block_id))
    try:
        statement = verify_bundle(render_bundle(bundle), REAL_GENESIS, stated)
    except BundleError as exc:
        return {"ok": False, "step": exc.step, "error": str(exc)}
    return {"ok": True, "text": statement.text}


def build_cases() -> dict[str, tuple[dict[str, Any], str | None]]:
    """Return each case's bundle and the checkpoint typed in (None: the field left empty)."""
    source = CheckpointChain()
    bundle = make_bundle(source)
    right = typed(bundle)
    other_hash = source.get_comet_light_block(CHECKPOINT + 1).header.hash().hex()
    second_set = light_block_to_json(source.get_comet_light_block(SWITCH + 1))["validators"]
    real = make_checkpoint_bundle()

    def sign_entry(position: int, index: int) -> Callable[[dict[str, Any]], Any]:
        def change(copied: dict[str, Any]) -> None:
            sig = copied["cometbft"]["light_blocks"][position]["commit"]["signatures"][index]
            sig["signature"] = flip_hex(sig["signature"])
        return change

    def shift_time(position: int) -> Callable[[dict[str, Any]], Any]:
        def change(copied: dict[str, Any]) -> None:
            copied["cometbft"]["light_blocks"][position]["header"]["time_ns"] += 1
        return change

    def drop_two_signatures(copied: dict[str, Any]) -> None:
        for sig in copied["cometbft"]["light_blocks"][0]["commit"]["signatures"][:2]:
            sig.update(flag=1, validator_address="", time_ns=0, signature="")

    return {
        "valid across a set change": (bundle, right),
        "valid at the proving header": (real, typed(real)),
        "valid from genesis": (REAL_BUNDLE, None),
        "no checkpoint": (bundle, None),
        "wrong checkpoint hash": (bundle, f"{CHECKPOINT}:{other_hash}"),
        "wrong checkpoint height": (bundle, f"{CHECKPOINT + 1}:{bundle['trust']['block_id']}"),
        "tampered checkpoint header": (changed(bundle, shift_time(0)), right),
        "tampered later header": (changed(bundle, shift_time(1)), right),
        "tampered checkpoint signature": (changed(bundle, sign_entry(0, 0)), right),
        "tampered last signature": (changed(bundle, sign_entry(-1, 1)), right),
        "validator set not the checkpoint's": (changed(bundle, lambda copied: copied["cometbft"][
            "light_blocks"][0].update(validators=second_set)), right),
        "checkpoint commit short of 2/3": (changed(bundle, drop_two_signatures), right),
    }


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each case verified by Python and by the page's JS (one Node process for all)."""
    cases = build_cases()
    path = tmp_path_factory.mktemp("cometbft-checkpoint") / "cases.json"
    path.write_text(json.dumps({
        "genesis": (ROOT / "tests" / "light" / "data" / "cometbft_genesis.json").read_text(),
        "cases": [{"name": name, "bundle": render_bundle(bundle).decode(), "checkpoint": point}
                  for name, (bundle, point) in cases.items()]}))
    done = subprocess.run([str(NODE), str(RUNNER), str(path)], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S, check=False)
    assert done.returncode == 0 and done.stdout, done.stderr
    js = json.loads(done.stdout)
    return {name: {"python": verify_in_python(bundle, point), "js": js[name],
                   "bundle": bundle} for name, (bundle, point) in cases.items()}


@pytest.mark.parametrize("name", ["valid across a set change", "valid at the proving header",
                                  "valid from genesis"])
def test_page_verifies_a_cometbft_bundle_with_python_s_statement(
        outcomes: dict[str, dict[str, Any]], name: str) -> None:
    """With the checkpoint typed in (or from genesis), both say the same words."""
    python, js = outcomes[name]["python"], outcomes[name]["js"]
    assert python["ok"] and js["ok"], (python, js)
    assert js["text"] == python["text"]
    assert "at height 150" in js["text"]
    bundle = outcomes[name]["bundle"]
    assert js["trust"] == bundle["trust"]["from"]
    assert js["lightBlocks"] == len(bundle["cometbft"]["light_blocks"])


def test_the_checkpoint_bundle_bisects_across_the_set_change(
        outcomes: dict[str, dict[str, Any]]) -> None:
    """From a header of the first set, the bundle reaches header 153 through the change."""
    bundle = outcomes["valid across a set change"]["bundle"]
    heights = [block["header"]["height"] for block in bundle["cometbft"]["light_blocks"]]
    assert heights[0] == CHECKPOINT and heights[-1] == REAL_BLOCK.height
    assert SWITCH in heights and SWITCH + 1 in heights


@pytest.mark.parametrize(("name", "step", "reason"), [
    ("no checkpoint", "trust", "not from genesis; verify it only if you trust that checkpoint"),
    ("wrong checkpoint hash", "trust", "is not the trusted one"),
    ("wrong checkpoint height", "trust", "is not the trusted one"),
    ("tampered checkpoint header", "cometbft light block 1",
     "the first signed header is not the trusted checkpoint"),
    ("tampered later header", "cometbft light block 2 (height", "the commit of height"),
    ("tampered checkpoint signature", "cometbft light block 1",
     "the signature of commit entry 0"),
    ("tampered last signature", "cometbft light block", "the signature of commit entry"),
    ("validator set not the checkpoint's", "cometbft light block 1",
     f"the validator set does not hash to header {CHECKPOINT}'s validators_hash"),
    ("checkpoint commit short of 2/3", "cometbft light block 1", "not more than 2/3"),
])
def test_page_refuses_what_python_refuses_at_the_same_step(
        outcomes: dict[str, dict[str, Any]], name: str, step: str, reason: str) -> None:
    """Both verifiers fail, at the same named step, for the same reason."""
    python, js = outcomes[name]["python"], outcomes[name]["js"]
    assert not python["ok"] and not js["ok"], (python, js)
    assert js["step"] == python["step"] and js["step"].startswith(step), (python, js)
    assert reason in js["error"] and reason in python["error"], (python, js)
