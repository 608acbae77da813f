"""Run a node: the block producer and the HTTP API in one asyncio loop, until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator

import uvicorn

from seoulchain.api.app import create_app
from seoulchain.node.home import Home
from seoulchain.node.node import Node

log = logging.getLogger("seoulchain.node")


class ApiServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the node."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(home: Home) -> None:
    """Run the node at `home` until SIGINT or SIGTERM, then stop cleanly."""
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
    log.info("node %s started: chain=%s height=%d api=http://%s:%d", config.moniker,
             node.engine.chain_id, node.engine.height, config.api.host, config.api.port)
    try:
        done, _ = await asyncio.wait({api_task, producer_task, asyncio.create_task(stop.wait())},
                                     return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        stop.set()
        server.should_exit = True
        await asyncio.gather(api_task, producer_task, return_exceptions=True)
        node.close()
        log.info("node %s stopped at height %d", config.moniker, node.engine.height)
