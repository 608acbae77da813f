"""JSON views of ledger values for people and HTTP clients: bytes become lowercase hex."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def to_jsonable(value: Any) -> Any:
    """Return `value` with every byte string replaced by its hex text, recursively."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    return value


def render_vectors_file(vectors: Any) -> str:
    """Return a test-vectors file's exact text: indented JSON, UTF-8 as is, final newline."""
    return json.dumps(vectors, indent=2, ensure_ascii=False) + "\n"


def write_vectors_file(text: str, argv: list[str], default_path: Path) -> int:
    """Write a vectors file to argv[1] (or `default_path`) for a generator's `main`."""
    path = Path(argv[1]) if len(argv) > 1 else default_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0
