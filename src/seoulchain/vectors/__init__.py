"""Test-vector generators for docs/spec/vectors/: deterministic, never imported at run time.

`ledger.py` (ledger.json), `state_tree.py` (state-tree.json) and `proofs.py` (proofs.json)
each build their file from fixed seeds; scripts/make-vectors writes them and the test suite
regenerates each and fails on any difference. `proofs.build_story_chain` also feeds
`seoulchain bench proofs`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


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
