"""`seoulchain bench portal` refuses what it cannot measure before starting anything."""

from __future__ import annotations

import pytest

from seoulchain.bench import portal
from seoulchain.errors import LocalError


@pytest.mark.parametrize("runs", [0, -1, portal.RUNS_MAX + 1])
def test_a_run_count_out_of_range_is_refused(runs: int) -> None:
    with pytest.raises(LocalError, match="runs is 1"):
        portal.run_portal_bench(runs)


def test_a_missing_browser_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(portal, "CHROMIUM", portal.Path("/nonexistent/chromium"))
    with pytest.raises(LocalError, match="install-chromium"):
        portal.measure_portal_first_render("http://127.0.0.1:1/portal/", 1)
