"""A local network: several validators as separate processes on loopback, one command.

    DEVNET/devnet.json        what this directory is: validators, ports
    DEVNET/genesis.json       the shared genesis
    DEVNET/keys/operator.key  the city hall's client key: notary.issuer, gov member
    DEVNET/keys/<agency>.key  each other agency's client key (mapo-gu, ...): notary.issuer,
                              gov member (the four agencies govern with k = 3)
    DEVNET/node-<i>/          one validator's home (config, genesis copy, keys, data, log)

`create_devnet` writes it; `DevnetSupervisor` starts, watches and stops the processes.
Every command that takes `--home` also accepts a devnet directory: it talks to whichever of
its nodes answers (`find_live_node_url`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError
from seoulchain.execution.platform import get_installed_versions
from seoulchain.execution.service import load_services
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.types import Validator, ValidatorSet
from seoulchain.node.agencies import (
    DEMO_AGENCIES,
    compute_agency_genesis,
    compute_default_threshold,
    create_agency_keys,
)
from seoulchain.node.config import NodeConfig
from seoulchain.node.home import OPERATOR_KEY_NAME, Home

DEVNET_FILE = "devnet.json"
VALIDATORS_MAX_LOCAL = 16
# Agencies of the city; validator i is named after agency i.
AGENCY_NAMES = ["city-hall", "mapo-gu", "jongno-gu", "gangnam-gu", "seocho-gu",
                "songpa-gu", "nowon-gu", "eunpyeong-gu", "seongbuk-gu", "gwanak-gu",
                "yongsan-gu", "dongjak-gu", "guro-gu", "jung-gu", "seodaemun-gu", "gangseo-gu"]
DEVNET_ROLES = ("notary.issuer",)
# Ports: API at base + i, peer-to-peer at base + 100 + i.
P2P_PORT_OFFSET = 100
# A node that does not answer its API within this time after start is reported as failed.
NODE_START_TIMEOUT_S = 30.0
# Time given to nodes to stop on SIGTERM before they are killed.
NODE_STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Devnet:
    """A devnet directory and what it holds."""

    root: Path

    @property
    def node_homes(self) -> list[Home]:
        info = self.load_info()
        return [Home(self.root / name) for name in info["nodes"]]

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    def load_info(self) -> dict[str, object]:
        try:
            return json.loads((self.root / DEVNET_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise LocalError(f"{self.root} is not a devnet directory: {exc}") from exc

    def api_urls(self) -> list[str]:
        urls = []
        for home in self.node_homes:
            config = home.load_config()
            urls.append(f"http://{config.api.host}:{config.api.port}")
        return urls


def is_devnet(root: Path) -> bool:
    return (root / DEVNET_FILE).exists()


def create_devnet(root: Path, validators: int, chain_id: str = "seoul-devnet-1",
                  base_port: int = 26700) -> Devnet:
    """Write keys, a shared genesis and one home per validator under `root`."""
    if not 1 <= validators <= VALIDATORS_MAX_LOCAL:
        raise LocalError(f"a local devnet has 1 to {VALIDATORS_MAX_LOCAL} validators")
    if is_devnet(root) or Home(root).is_initialised():
        raise LocalError(f"{root} already holds a network or node; choose another --home")
    root.mkdir(parents=True, exist_ok=True)
    # The city hall's key is keys/operator.key; the genesis names every agency's key.
    roles, agencies = compute_agency_genesis(create_agency_keys(root / "keys", DEMO_AGENCIES),
                                             DEVNET_ROLES)
    keys = [SigningKey.generate() for _ in range(validators)]
    genesis = Genesis(
        chain_id=chain_id, genesis_time_ms=int(time.time() * 1000),
        validators=ValidatorSet.of([Validator(key.public_key, 10, AGENCY_NAMES[index])
                                    for index, key in enumerate(keys)]),
        roles=roles, agencies=agencies, threshold=compute_default_threshold(len(agencies)),
        services=get_installed_versions(load_services()))
    genesis.save(root / "genesis.json")
    names = []
    for index, key in enumerate(keys):
        home = Home(root / f"node-{index}")
        home.data_dir.mkdir(parents=True)
        key.save(home.validator_key_path)
        shutil.copy(root / "keys" / f"{OPERATOR_KEY_NAME}.key", home.key_path(OPERATOR_KEY_NAME))
        os.chmod(home.key_path(OPERATOR_KEY_NAME), 0o600)
        home.ensure_admin_token()
        shutil.copy(root / "genesis.json", home.genesis_path)
        config = NodeConfig(moniker=AGENCY_NAMES[index])
        config.api.port = base_port + index
        config.p2p.listen_host = "127.0.0.1"
        config.p2p.listen_port = base_port + P2P_PORT_OFFSET + index
        config.p2p.peers = [f"{other.public_key.hex()}@127.0.0.1:"
                            f"{base_port + P2P_PORT_OFFSET + other_index}"
                            for other_index, other in enumerate(keys) if other_index != index]
        config.save(home.config_path)
        names.append(home.root.name)
    (root / DEVNET_FILE).write_text(json.dumps(
        {"chain_id": chain_id, "validators": validators, "base_port": base_port,
         "nodes": names}, indent=2) + "\n")
    return Devnet(root)


@dataclass
class NodeProcess:
    home: Home
    process: subprocess.Popen[bytes]


class DevnetSupervisor:
    """Starts each validator as its own `seoulchain start` process and stops them cleanly.

    Each node runs in a session of its own (a Ctrl-C in the terminal reaches only the
    supervisor, which stops the nodes in order) and follows the supervisor's pid
    (`--parent-pid`): if the supervisor dies, its nodes stop too. Call `start` from the
    main thread.
    """

    def __init__(self, devnet: Devnet, engine: str = "builtin"):
        self.devnet = devnet
        # The consensus engine each node runs: "builtin" or "cometbft" (`start --engine`).
        self.engine = engine
        self.nodes: list[NodeProcess] = []

    def start(self) -> None:
        for home in self.devnet.node_homes:
            log = (home.root / "node.log").open("ab")
            process = subprocess.Popen(
                [sys.executable, "-m", "seoulchain", "start", "--home", str(home.root),
                 "--parent-pid", str(os.getpid()), "--engine", self.engine],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            self.nodes.append(NodeProcess(home, process))

    def get_failed(self) -> list[NodeProcess]:
        """Return the nodes whose process has exited."""
        return [node for node in self.nodes if node.process.poll() is not None]

    def stop(self) -> None:
        """SIGTERM every node, wait for a clean stop, kill the ones that do not stop."""
        for node in self.nodes:
            if node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + NODE_STOP_TIMEOUT_S
        for node in self.nodes:
            try:
                node.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait()
        self.nodes.clear()


def read_log_tail(home: Home, lines: int = 15) -> str:
    path = home.root / "node.log"
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
