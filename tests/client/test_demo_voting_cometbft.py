"""The demo poll seeds under CometBFT, whose mempool may split a batch over blocks and
whose chain makes empty blocks while the seeder waits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from seoulchain.client import demo_voting
from seoulchain.client.demo_voting import POLL_ID, seed_poll
from seoulchain.client.voting import fetch_poll_data, make_engine_reader, verify_poll
from seoulchain.crypto.hashing import sha256
from seoulchain.errors import RemoteError
from tests.client.test_demo import ChainClient, make_demo_chain
from tests.conftest import LocalChain


class CometLikeClient(ChainClient):
    """Commits each tx of a batch in its own block, and an empty block whenever the status
    is read (a chain that moves on about once a second, as devnet's CometBFT does)."""

    def __init__(self, chain: LocalChain, empty_blocks: bool = True):
        super().__init__(chain)
        self.empty_blocks = empty_blocks
        self.heights: dict[bytes, int] = {}

    def get_status(self) -> dict[str, Any]:
        if self.empty_blocks:
            self.chain.commit()
        return {**super().get_status(), "engine": "cometbft"}

    def submit_batch(self, raws: list[bytes]) -> list[dict[str, Any]]:
        for raw in raws:
            super().submit_batch([raw])
            self.heights[sha256(raw)] = self.chain.engine.height
        return [{"code": 0, "log": ""} for _ in raws]


@pytest.mark.slow  # a whole poll: ballots with proofs, a tally and two decryptions
def test_demo_poll_seeds_when_each_setup_tx_lands_in_its_own_block(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo_voting, "OPEN_POLL_S", 0.0)
    chain, keys = make_demo_chain(tmp_path)
    try:
        client = CometLikeClient(chain)
        sent = seed_poll(client, keys, tmp_path / "keys", 3, tmp_path / "docs",  # type: ignore[arg-type]
                         lambda line: None, voters=4)
        assert sent == 3 + 2 + 5 + 2 + 2 + 1
        poll = fetch_poll_data(make_engine_reader(chain.engine), POLL_ID)
        report = verify_poll(poll)
        assert dict(report.steps)["ballots"].startswith("5 ballots with valid proofs")
        # The create and credentials txs went into two blocks, both before the poll opened.
        setup = sorted(client.heights.values())[3:5]
        assert setup[0] < setup[1] < poll.poll["open_height"]
    finally:
        chain.store.close()


def test_the_seeder_says_so_when_the_chain_never_reaches_the_open_height(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo_voting, "OPEN_WAIT_S", 0.0)
    chain, keys = make_demo_chain(tmp_path)
    try:
        client = CometLikeClient(chain, empty_blocks=False)
        with pytest.raises(RemoteError, match="does the node make empty blocks"):
            seed_poll(client, keys, tmp_path / "keys", 3, tmp_path / "docs",  # type: ignore[arg-type]
                      lambda line: None, voters=4)
    finally:
        chain.store.close()
