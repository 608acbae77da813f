"""A node's /metrics exports its precheck pool: verdicts recorded, checks left to the engine,
and how long each batch took (the pool's executor is a thread here, so no process starts)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from seoulchain.execution.service import Precheck
from seoulchain.node.home import init_home
from seoulchain.node.node import Node


def test_node_metrics_count_recorded_and_failed_prechecks_and_time_batches(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = Node(init_home(tmp_path / "home", chain_id="precheck-metrics"))
    threads = ThreadPoolExecutor(1)
    try:
        before = node.metrics.render().decode()
        assert "seoulchain_prechecks_recorded_total 0.0" in before
        assert "seoulchain_prechecks_failed_total 0.0" in before
        monkeypatch.setattr(node.prechecks, "get_executor", lambda: threads)
        verdicts: list[Any] = []

        def record(verdict: Any, *args: Any) -> None:
            verdicts.append(verdict)

        # `len` passes; `int` of a word raises in the worker, so the engine runs that check.
        batch = [Precheck(len, record, ("ballot",)), Precheck(int, record, ("ballot",))]
        assert asyncio.run(node.prechecks.run(batch)) == 1
        assert verdicts == [6]
        after = node.metrics.render().decode()
        assert "seoulchain_prechecks_recorded_total 1.0" in after
        assert "seoulchain_prechecks_failed_total 1.0" in after
        assert "seoulchain_precheck_batch_seconds_count 1.0" in after
    finally:
        threads.shutdown()
        node.close()
