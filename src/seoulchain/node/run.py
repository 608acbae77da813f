"""Run a node: the block producer and the HTTP API in one asyncio loop, until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator

import uvicorn

from seoulchain.api.app import create_app
from seoulchain.node.home import Home
from seoulchain.node.node import Node

log = logging.getLogger("seoulchain.node")
# How long the API may take to start listening before start-up hooks give up.
API_START_TIMEOUT_S = 10.0


class ApiServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the node."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(home: Home, on_started: Callable[[Node], Awaitable[None]] | None = None) -> None:
    """Run the node at `home` until SIGINT or SIGTERM, then stop cleanly.

    `on_started`, if given, runs once the API accepts requests (the demo seeds data there).
    """
    node = Node(home)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    config = node.config
    server = ApiServer(uvicorn.Config(create_app(node), host=config.api.host,
                                      port=config.api.port, log_level="warning",
                                      lifespan="off", access_log=False))
    api_task = asyncio.create_task(server.serve())
    producer_task = asyncio.create_task(node.producer.run(stop))
    extra_tasks = []
    if on_started is not None:
        extra_tasks.append(asyncio.create_task(run_when_started(server, node, on_started)))
    log.info("node %s started: chain=%s height=%d api=http://%s:%d", config.moniker,
             node.engine.chain_id, node.engine.height, config.api.host, config.api.port)
    try:
        await wait_until_stopped(stop, [api_task, producer_task])
    finally:
        stop.set()
        server.should_exit = True
        for task in extra_tasks:
            task.cancel()
        await asyncio.gather(api_task, producer_task, *extra_tasks, return_exceptions=True)
        node.close()
        log.info("node %s stopped at height %d", config.moniker, node.engine.height)


async def wait_until_stopped(stop: asyncio.Event, essential: list[asyncio.Task[None]]) -> None:
    """Return when `stop` is set or an essential task ends; re-raise a task's failure."""
    stop_task = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({*essential, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    stop_task.cancel()
    for task in done:
        if task is not stop_task and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]



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
