"""Docs: every `seoulchain ...` command that README.md and docs/ tell a user to type parses.

Commands are taken from fenced shell blocks (lines starting `seoulchain`, `.venv/bin/seoulchain`
or `$ seoulchain`, with `\\` continuations and `$(seoulchain ...)` substitutions) and from
inline code spans that start with `seoulchain `. Each is parsed by the CLI's own parser
(typer's click) — subcommands resolved, options known and given their values, no extra
arguments, no hidden alias — and each concrete value (not a placeholder such as `DIR` or
`N`) is converted by its parameter's type. A renamed or removed command or flag fails here.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from seoulchain.cli.main import app

ROOT = Path(__file__).resolve().parent.parent
DOC_PATHS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
COMMAND_START = re.compile(r"^\s*(?:\$ )?(?:\.venv/bin/)?seoulchain\s")
SUBSTITUTION = re.compile(r"\$\(([^()]*)\)")
INLINE_CODE = re.compile(r"`((?:\.venv/bin/)?seoulchain [^`]+)`")
# Synopsis notation, not words a user types: optional parts, alternatives, "and so on".
SYNOPSIS_TOKENS = {"...", "|", "…"}
# A placeholder the reader replaces: DIR, FILE, N, H:BLOCK_ID, <tx hash>, 90|120.
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_:]*$|[<>|…]|\.\.\.")


def iter_fenced_commands(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (line number, command line) for each command in the file's shell blocks."""
    in_block, shell, pending, start = False, False, "", 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_block = not in_block
            shell = line.strip()[3:] in {"", "sh", "bash", "console", "shell"}
            continue
        if not (in_block and shell):
            continue
        if not pending:
            start = number
        pending += " " + line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        if COMMAND_START.match(pending):
            yield from expand_substitutions(start, pending.strip())
        pending = ""


def expand_substitutions(number: int, text: str) -> Iterator[tuple[int, str]]:
    """Yield the command with each `$(...)` replaced by a value, then each inner command."""
    for inner in SUBSTITUTION.findall(text):
        if COMMAND_START.match(inner):
            yield number, inner
    yield number, SUBSTITUTION.sub("VALUE", text)


def iter_inline_commands(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (line number, command) for inline code spans that start with `seoulchain `."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        for span in INLINE_CODE.findall(line):
            yield number, span


def collect_commands() -> list[tuple[str, str, bool]]:
    """Return (where, command, whole) for every documented command; prose may name a part
    of one (`seoulchain tx notary`), a shell block gives it whole."""
    found = []
    for path in DOC_PATHS:
        name = path.relative_to(ROOT)
        found += [(f"{name}:{number}", text, True) for number, text in iter_fenced_commands(path)]
        found += [(f"{name}:{number}", text, False) for number, text in iter_inline_commands(path)]
    return found


def split_command(text: str) -> list[str]:
    """Return the words after `seoulchain`, without comments and synopsis notation."""
    words = shlex.split(text.replace("[", " ").replace("]", " "), comments=True)
    words = [word for word in words if word not in SYNOPSIS_TOKENS]
    if words[0] == "$":
        words = words[1:]
    assert words[0].endswith("seoulchain"), text
    return words[1:]


def check_parses(words: list[str], whole: bool = True) -> None:
    """Parse `seoulchain WORDS` as the CLI would; raise typer.TyperException where it fails.

    Unless `whole`, a missing subcommand or argument is allowed (a command named in prose).
    """
    command = typer.main.get_command(app)
    parent, name, args = None, "seoulchain", words
    while True:
        context = typer.Context(command, info_name=name, parent=parent)
        values, rest, _ = command.make_parser(context).parse_args(list(args))
        check_values(command, context, values)
        if not hasattr(command, "resolve_command"):
            check_arguments(command, rest, values, whole)
            return
        if not rest:
            assert command.invoke_without_command or not whole, "missing a subcommand"
            return
        name, command, args = command.resolve_command(context, rest)
        assert not command.hidden, f"{name} is a hidden alias; document its own name"
        parent = context


def check_arguments(command: Any, rest: list[str], values: dict[str, Any],
                    whole: bool) -> None:
    """Assert that a command got every required argument (if `whole`) and nothing more."""
    assert not rest, f"unexpected extra arguments {rest}"
    if not whole:
        return
    missing = [param.name for param in command.params
               if param.param_type_name == "argument" and param.required
               and values.get(param.name) in (None, (), [])]
    assert not missing, f"missing arguments {missing}"


def check_values(command: Any, context: typer.Context, values: dict[str, Any]) -> None:
    """Convert each concrete option value by its type (placeholders and paths are skipped)."""
    for param in command.params:
        value = values.get(param.name)
        items = value if isinstance(value, (list, tuple)) else [value]
        if (value is None or "Path" in str(param.type_descriptor.annotation)
                or any(isinstance(item, str) and PLACEHOLDER.search(item) for item in items)):
            continue
        param.process_value(context, value)


COMMANDS = collect_commands()


def test_docs_commands_found() -> None:
    """The extraction finds the commands of the pages that teach the CLI."""
    where = {spot.split(":")[0] for spot, _, _ in COMMANDS}
    assert {"README.md", "docs/operations.md", "docs/services.md", "docs/performance.md",
            "docs/simulation.md", "docs/spec/proofs.md"} <= where
    assert len(COMMANDS) > 60


@pytest.mark.parametrize(("where", "text", "whole"), COMMANDS,
                         ids=[spot for spot, _, _ in COMMANDS])
def test_documented_command_parses(where: str, text: str, whole: bool) -> None:
    """Each documented command names existing commands and options, with valid values."""
    try:
        check_parses(split_command(text), whole)
    except (typer.TyperException, AssertionError) as exc:
        pytest.fail(f"{where}: `{text}` does not parse: {exc}")
