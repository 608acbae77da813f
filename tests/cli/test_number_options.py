"""CLI: every float option refuses NaN, infinities and out-of-range numbers before running."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from seoulchain.cli.common import finite_float
from seoulchain.cli.main import app

runner = CliRunner()
NON_FINITE = ["nan", "inf", "-inf", "1e309"]


@pytest.mark.parametrize(("arguments", "option"), [
    # Each line also carries another bad option that is checked later, when the command runs,
    # so a bad number that slipped through would fail differently (and fast).
    (["tx", "notary", "anchor", "missing.pdf", "--home", "no-such-home", "--timeout"],
     "--timeout"),
    (["bench", "network", "--validators", "0", "--rate"], "--rate"),
    (["bench", "--validators", "99", "--duration"], "--duration"),
    (["sim", "scale", "--validators", "0", "--duration-s"], "--duration-s"),
])
@pytest.mark.parametrize("number", [*NON_FINITE, "-1"])
def test_float_options_refuse_numbers_that_are_not_finite_or_in_range(
        arguments: list[str], option: str, number: str, tmp_path: Path) -> None:
    result = runner.invoke(app, [*arguments, number])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output
    assert "finite number" in result.output


def test_finite_float_accepts_the_range_and_refuses_the_rest() -> None:
    parse = finite_float(0, 60)
    assert parse("0") == 0.0 and parse("59.5") == 59.5 and parse(60) == 60.0
    rate = finite_float(0, 100, low_open=True)
    assert rate("0.001") == 0.001
    for bad_parse, text in [(parse, "60.01"), (parse, "-0.1"), (parse, "ten"), (rate, "0"),
                            *[(parse, number) for number in NON_FINITE]]:
        with pytest.raises(typer.BadParameter):
            bad_parse(text)
