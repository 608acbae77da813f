"""Run a node: the block producer and the HTTP API in one asyncio loop, until a signal.

This is where `seoulchain start` and `demo` put the node (node/) and its HTTP API (api/)
together, so neither layer imports the other upward. `serve` returns after a clean stop
(SIGINT, SIGTERM, or the death of the parent process it was told to follow) and raises the
error that stopped the node otherwise, so the command that runs it can exit with a status
saying what happened (cli/exit_codes.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Iterator

import uvicorn
from fastapi import FastAPI, Request
from starlette.responses import Response

from seoulchain.api.app import create_app
from seoulchain.api.cometbft import register_cometbft_routes
from seoulchain.api.errors import error_response
from seoulchain.errors import LocalError
from seoulchain.node.abci import AbciApplication, get_rpc_url
from seoulchain.node.abci_api import CometNode, NotServedUnderCometbft
from seoulchain.node.home import Home
from seoulchain.node.node import Node
from seoulchain.node.parent import set_parent_death_signal

log = logging.getLogger("seoulchain.node")
# How long the API may take to start listening before start-up hooks give up.
API_START_TIMEOUT_S = 10.0
# How often a node started by a supervisor checks that its parent is still alive.
PARENT_CHECK_INTERVAL_S = 1.0


class ApiServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the node."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(home: Home, on_started: Callable[[Node], Awaitable[None]] | None = None,
                parent_pid: int | None = None) -> None:
    """Run the node at `home` until SIGINT or SIGTERM, then stop cleanly.

    `on_started`, if given, runs once the API accepts requests (the demo seeds data there).
    With `parent_pid`, the node also stops when that process (its supervisor) is gone.
    Raises the error that stopped the node, if one did.
    """
    stop = asyncio.Event()
    if parent_pid is not None:
        stop_with_parent(parent_pid)
    node = Node(home)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    config = node.config
    server = make_api_server(node, create_app(node))
    api_task = asyncio.create_task(server.serve())
    producer_task = asyncio.create_task(node.producer.run(stop))
    extra_tasks = []
    if on_started is not None:
        extra_tasks.append(asyncio.create_task(run_when_started(server, node, on_started)))
    if parent_pid is not None:
        extra_tasks.append(asyncio.create_task(watch_parent(parent_pid, stop)))
    log.info("node %s started: chain=%s height=%d api=http://%s:%d", config.moniker,
             node.engine.chain_id, node.engine.height, config.api.host, config.api.port)
    try:
        await wait_until_stopped(stop, [api_task, producer_task])
    finally:
        stop.set()
        server.should_exit = True
        for task in extra_tasks:
            task.cancel()
        outcomes = await asyncio.gather(api_task, producer_task, *extra_tasks,
                                        return_exceptions=True)
        node.close()
        log.info("node %s stopped at height %d", config.moniker, node.engine.height)
    raise_failure(outcomes[:2])


def make_api_server(node: Node, app: FastAPI) -> ApiServer:
    """Return the uvicorn server of `app` on the node's [api] host and port."""
    return ApiServer(uvicorn.Config(app, host=node.config.api.host, port=node.config.api.port,
                                    log_level="warning", lifespan="off", access_log=False))


def create_cometbft_app(node: CometNode) -> FastAPI:
    """Return the HTTP API over `node`: light blocks, validators and bundles from CometBFT's
    signed headers (api/cometbft.py), 501 for what only the built-in engine can answer."""
    api = create_app(node)
    register_cometbft_routes(api, node)

    @api.exception_handler(NotServedUnderCometbft)
    async def on_not_served(request: Request, exc: NotServedUnderCometbft) -> Response:
        return error_response(501, "not_served_under_cometbft", str(exc))

    return api


async def serve_cometbft_api(app: AbciApplication, stop: asyncio.Event) -> None:
    """Serve the HTTP API over an ABCI application CometBFT runs, until `stop` is set."""
    # The adapter polls CometBFT's RPC twice a second: keep httpx's per-request lines out.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    rpc_url = get_rpc_url(app.home)
    assert rpc_url is not None, "the CometBFT home is written before the API starts"
    node = CometNode(app, rpc_url)
    server = make_api_server(node, create_cometbft_app(node))
    tasks = [asyncio.create_task(server.serve()),
             asyncio.create_task(node.watch_cometbft(stop))]
    log.info("API for CometBFT's chain at http://%s:%d (CometBFT's RPC at %s)",
             node.config.api.host, node.config.api.port, rpc_url)
    try:
        await wait_until_stopped(stop, tasks[:1])
    finally:
        server.should_exit = True
        stop.set()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        await node.aclose()
    raise_failure(outcomes[:1])


def raise_failure(outcomes: list[object]) -> None:
    """Re-raise the first error an essential task ended with (a fatal error sets `stop`)."""
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome


async def wait_until_stopped(stop: asyncio.Event, essential: list[asyncio.Task[None]]) -> None:
    """Return when `stop` is set or an essential task ends; re-raise a task's failure."""
    stop_task = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({*essential, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    stop_task.cancel()
    for task in done:
        if task is not stop_task and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


def stop_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGTERM this process when its parent dies; refuse if it already has.

    The kernel sends the signal when the parent *thread* that started this process exits,
    so supervisors start nodes from their main thread; `watch_parent` covers other systems.
    """
    set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before the request above took effect
        raise LocalError(f"parent process {parent_pid} is gone; not starting")


async def watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    """Set `stop` once `parent_pid` is no longer this process's parent (it died)."""
    while not stop.is_set():
        if os.getppid() != parent_pid:
            log.warning("parent process %d is gone; stopping", parent_pid)
            stop.set()
            return
        await asyncio.sleep(PARENT_CHECK_INTERVAL_S)


async def run_when_started(server: uvicorn.Server, node: Node,
                           on_started: Callable[[Node], Awaitable[None]]) -> None:
    deadline = loop_time() + API_START_TIMEOUT_S
    while not server.started:
        if loop_time() > deadline:
            log.error("API did not start within %.0f s", API_START_TIMEOUT_S)
            return
        await asyncio.sleep(0.05)
    try:
        await on_started(node)
    except Exception:
        log.exception("start-up hook failed; the node keeps running")


def loop_time() -> float:
    return asyncio.get_running_loop().time()
