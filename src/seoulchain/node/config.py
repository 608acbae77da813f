"""Node configuration: a TOML file with documented defaults (docs/operations.md).

Every option has a default, so a missing file section means "use the defaults". Unknown
sections or keys are refused with the list of known ones, so a typo is never silently
ignored.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import tomli_w

from seoulchain.errors import LocalError


@dataclass
class ApiConfig:
    host: str = "127.0.0.1"
    port: int = 26657


@dataclass
class ChainConfig:
    # How often the block producer cuts a block; lower means lower latency, more blocks.
    block_interval_ms: int = 200
    # Produce blocks even when no transaction is waiting (keeps block time advancing).
    create_empty_blocks: bool = False
    # The most transactions and bytes of transactions put into one block.
    block_txs_max: int = 5000
    block_tx_bytes_max: int = 4 * 1024 * 1024


@dataclass
class MempoolConfig:
    txs_max: int = 50_000
    bytes_max: int = 128 * 1024 * 1024


@dataclass
class NodeConfig:
    moniker: str = "node"
    api: ApiConfig = field(default_factory=ApiConfig)
    chain: ChainConfig = field(default_factory=ChainConfig)
    mempool: MempoolConfig = field(default_factory=MempoolConfig)

    def save(self, path: Path) -> None:
        path.write_text(tomli_w.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> NodeConfig:
        try:
            data = tomllib.loads(path.read_text())
        except OSError as exc:
            raise LocalError(f"cannot read config {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise LocalError(f"config {path} is not valid TOML: {exc}") from exc
        return from_dict(cls, data, str(path))


def from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    """Build dataclass `cls` from a TOML table, refusing unknown keys and wrong types."""
    known = {item.name: item for item in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise LocalError(f"{where}: unknown option(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    defaults = cls()
    for name, value in data.items():
        default = getattr(defaults, name)
        if hasattr(default, "__dataclass_fields__"):
            if not isinstance(value, dict):
                raise LocalError(f"{where}: [{name}] must be a table")
            values[name] = from_dict(type(default), value, f"{where} [{name}]")
        elif type(value) is not type(default):
            raise LocalError(f"{where}: {name} must be {type(default).__name__}, got {value!r}")
        else:
            values[name] = value
    return cls(**values)
