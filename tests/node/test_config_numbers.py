"""Config: durations, bounds and ports in config.toml are finite and in range, or refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from seoulchain.errors import LocalError
from seoulchain.ledger.types import BLOCK_BYTES_MAX, BLOCK_TXS_MAX
from seoulchain.node.config import DURATION_MS_MAX, NodeConfig, check_number_range


def load(tmp_path: Path, text: str) -> NodeConfig:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return NodeConfig.load(path)


@pytest.mark.parametrize(("text", "reason"), [
    ("[consensus]\ntimeout_propose_ms = -1\n", "timeout_propose_ms must be 0 to"),
    (f"[consensus]\ntimeout_prevote_ms = {DURATION_MS_MAX + 1}\n", "timeout_prevote_ms"),
    ("[chain]\ncommit_pause_ms = 9223372036854775807\n", "commit_pause_ms"),
    ("[p2p]\nban_duration_ms = -600000\n", "ban_duration_ms"),
    ("[chain]\nblock_interval_ms = nan\n", "block_interval_ms must be int"),
    ("[p2p]\nidle_timeout_ms = inf\n", "idle_timeout_ms must be int"),
    ("[mempool]\ntxs_max = 0\n", "txs_max must be 1 to"),
    ("[chain]\nblock_txs_max = -5\n", "block_txs_max"),
    (f"[chain]\nblock_txs_max = {BLOCK_TXS_MAX + 1}\n", "block_txs_max must be at most"),
    (f"[chain]\nblock_tx_bytes_max = {BLOCK_BYTES_MAX + 1}\n", "block_tx_bytes_max must be at"),
    ("[mempool]\nbytes_max = 100000000000000000000000\n", "bytes_max"),
    ("[api]\nport = 70000\n", "port must be 0 to 65535"),
    ("[p2p]\nlisten_port = -1\n", "listen_port"),
])
def test_out_of_range_numbers_are_refused_with_the_option_named(tmp_path: Path, text: str,
                                                                reason: str) -> None:
    with pytest.raises(LocalError, match=reason):
        load(tmp_path, text)


def test_numbers_at_the_edges_of_their_ranges_load(tmp_path: Path) -> None:
    config = load(tmp_path, f"[consensus]\ntimeout_propose_ms = {DURATION_MS_MAX}\n"
                            "[chain]\ncommit_pause_ms = 0\n[api]\nport = 65535\n"
                            "[mempool]\ntxs_max = 1\n")
    assert config.consensus.timeout_propose_ms == DURATION_MS_MAX
    assert config.api.port == 65535 and config.mempool.txs_max == 1


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_float_option_must_be_finite(value: float) -> None:
    with pytest.raises(LocalError, match="finite"):
        check_number_range("rate_per_s", value, "config.toml [load]")
