"""A fault-injecting TCP proxy: partitions, stalls and latency between validators on demand.

Theory of operation: a `Route` listens on one address and forwards every connection it
accepts to one target, bytes unchanged in both directions (TLS stays end to end, so the
validators still authenticate each other). Its mode says what happens to the traffic:

    PASS   forward everything, each chunk held back `delay_ms` first (0: no delay)
    CUT    close every open connection at once and close new ones as soon as accepted,
           as a partition that resets connections does
    STALL  keep the connections but forward nothing until the mode changes; what was sent
           meanwhile is delivered afterwards, in order, as TCP does across a short outage

Routing a validator's peer connections through routes (rewrite the `peers` of its config
and of the configs that name it) lets a test or an operator isolate it and heal it again.
`FaultProxy` runs its routes on a private event loop in a background thread, so every
method is synchronous and thread-safe. From the shell:

    python -m seoulchain.bench.proxy --route 127.0.0.1:27100=127.0.0.1:26800

then type `cut`, `stall`, `pass`, `delay 200`, `stats` or `quit` on its standard input.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import sys
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from seoulchain.errors import LocalError

# Bytes read from one side at a time; one chunk is the unit a delay holds back.
CHUNK_BYTES = 64 * 1024
# Open connections per route; beyond this new ones are closed on accept (a test harness
# needs a handful per validator pair, redials included).
CONNECTIONS_PER_ROUTE_MAX = 256
# A delay beyond a minute is no longer latency but an outage: use STALL.
DELAY_MS_MAX = 60_000
# Bytes held back per direction while delayed; reading pauses beyond (TCP back-pressure).
DELAYED_BYTES_MAX = 4 * 1024 * 1024
# How long `FaultProxy` waits for its loop thread to start, stop or answer.
CONTROL_TIMEOUT_S = 10.0


class Mode(enum.StrEnum):
    """What a route does with traffic."""

    PASS = "pass"
    CUT = "cut"
    STALL = "stall"


@dataclass
class RouteStats:
    """Counters of one route since it started."""

    listen: str
    target: str
    mode: str
    delay_ms: int
    connections_open: int = 0
    connections_accepted: int = 0
    connections_refused: int = 0
    connections_cut: int = 0
    bytes_forwarded: int = 0


@dataclass(eq=False)
class Link:
    """One proxied connection (internal): the accepted side and the target side."""

    client: asyncio.StreamWriter
    target: asyncio.StreamWriter

    def abort(self) -> None:
        """Close both sockets at once, without waiting for anything to flush."""
        self.client.transport.abort()
        self.target.transport.abort()


class Route:
    """Forwards connections from a listen address to a target; lives on one event loop."""

    def __init__(self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1",
                 listen_port: int = 0) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.mode = Mode.PASS
        self.delay_ms = 0
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.links: set[Link] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None
        self.stats = RouteStats("", f"{target_host}:{target_port}", self.mode.value, 0)

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.on_accept, self.listen_host,
                                                 self.listen_port)
        self.listen_port = self.server.sockets[0].getsockname()[1]
        self.stats.listen = f"{self.listen_host}:{self.listen_port}"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for link in list(self.links):
            link.abort()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()

    def set_mode(self, mode: Mode) -> None:
        """Switch the mode; CUT closes every open connection now."""
        self.mode = mode
        self.stats.mode = mode.value
        if mode is Mode.STALL:
            self.flowing.clear()
        else:
            self.flowing.set()
        if mode is Mode.CUT:
            self.stats.connections_cut += len(self.links)
            for link in list(self.links):
                link.abort()

    def set_delay_ms(self, delay_ms: int) -> None:
        if not 0 <= delay_ms <= DELAY_MS_MAX:
            raise LocalError(f"a delay is 0..{DELAY_MS_MAX} ms, got {delay_ms}")
        self.delay_ms = delay_ms
        self.stats.delay_ms = delay_ms

    def get_stats(self) -> RouteStats:
        self.stats.connections_open = len(self.links)
        return RouteStats(**asdict(self.stats))

    async def on_accept(self, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        """Serve an accepted connection in a task `stop` can cancel; never raise."""
        # asyncio's server logs a cancelled handler task as an error, so the handler only
        # waits for a tracked task and returns normally, whatever happens to that task.
        task = asyncio.create_task(self.serve(reader, writer))
        self.tasks.add(task)
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            self.tasks.discard(task)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Connect to the target and copy both ways until either side closes or a cut."""
        if self.mode is Mode.CUT or len(self.links) >= CONNECTIONS_PER_ROUTE_MAX:
            self.stats.connections_refused += 1
            writer.transport.abort()
            return
        try:
            target_reader, target_writer = await asyncio.open_connection(
                self.target_host, self.target_port)
        except OSError:
            self.stats.connections_refused += 1
            writer.transport.abort()
            return
        link = Link(writer, target_writer)
        if self.mode is Mode.CUT:  # cut while we were connecting
            self.stats.connections_refused += 1
            link.abort()
            return
        self.stats.connections_accepted += 1
        self.links.add(link)
        pumps = [asyncio.create_task(self.pump(reader, target_writer)),
                 asyncio.create_task(self.pump(target_reader, writer))]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self.links.discard(link)
            link.abort()

    async def pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction until either side closes, honouring the mode and the delay."""
        held: deque[tuple[float, bytes]] = deque()
        held_bytes = 0
        more = asyncio.Event()
        loop = asyncio.get_running_loop()

        async def deliver() -> None:
            nonlocal held_bytes
            while True:
                while not held:
                    more.clear()
                    await more.wait()
                due, data = held[0]
                await asyncio.sleep(max(0.0, due - loop.time()))
                await self.flowing.wait()
                held.popleft()
                held_bytes -= len(data)
                writer.write(data)
                await writer.drain()
                self.stats.bytes_forwarded += len(data)

        deliverer = asyncio.create_task(deliver())
        try:
            while not deliverer.done():
                data = await reader.read(CHUNK_BYTES)
                if not data:
                    break
                held.append((loop.time() + self.delay_ms / 1000, data))
                held_bytes += len(data)
                more.set()
                while held_bytes > DELAYED_BYTES_MAX and not deliverer.done():
                    await asyncio.sleep(0.01)
            while held and not deliverer.done():  # flush what the closing side sent last
                await asyncio.sleep(0.01)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            deliverer.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await deliverer


class FaultProxy:
    """Routes served by a background thread's event loop; use as a context manager."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self.thread is not None:
            raise LocalError("the proxy is already running")
        ready = threading.Event()

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            self.loop.call_soon(ready.set)
            self.loop.run_forever()
            self.loop.close()

        self.thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
        self.thread.start()
        if not ready.wait(CONTROL_TIMEOUT_S):
            raise LocalError("the proxy thread did not start")

    def stop(self) -> None:
        """Close every route and connection and end the thread (idempotent)."""
        if self.loop is None or self.thread is None:
            return
        with contextlib.suppress(Exception):
            self._call(self._stop_routes())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(CONTROL_TIMEOUT_S)
        self.loop = self.thread = None

    async def _stop_routes(self) -> None:
        for route in self.routes:
            await route.stop()

    def _call(self, coroutine: Any) -> Any:
        if self.loop is None:
            coroutine.close()
            raise LocalError("start the proxy first")
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(CONTROL_TIMEOUT_S)

    def add_route(self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1",
                  listen_port: int = 0) -> int:
        """Start forwarding `listen_host:listen_port` (0: any free port) to the target;
        return the port it listens on."""
        async def add() -> int:
            route = Route(target_host, target_port, listen_host=listen_host,
                          listen_port=listen_port)
            await route.start()
            self.routes.append(route)
            return route.listen_port
        return self._call(add())

    def set_mode(self, mode: Mode, ports: list[int] | None = None) -> None:
        """Switch the routes listening on `ports` (default: every route) to `mode`."""
        for route in self._select(ports):
            self._run(route.set_mode, mode)

    def set_delay_ms(self, delay_ms: int, ports: list[int] | None = None) -> None:
        for route in self._select(ports):
            self._run(route.set_delay_ms, delay_ms)

    def cut(self, ports: list[int] | None = None) -> None:
        self.set_mode(Mode.CUT, ports)

    def stall(self, ports: list[int] | None = None) -> None:
        self.set_mode(Mode.STALL, ports)

    def restore(self, ports: list[int] | None = None) -> None:
        """Forward everything again, without delay."""
        self.set_mode(Mode.PASS, ports)
        self.set_delay_ms(0, ports)

    def get_stats(self) -> list[RouteStats]:
        return [self._run(route.get_stats) for route in self.routes]

    def _select(self, ports: list[int] | None) -> list[Route]:
        if ports is None:
            return list(self.routes)
        chosen = [route for route in self.routes if route.listen_port in ports]
        if len(chosen) != len(set(ports)):
            raise LocalError(f"no route listens on some of {ports}")
        return chosen

    def _run(self, function: Any, *args: Any) -> Any:
        async def call() -> Any:
            return function(*args)
        return self._call(call())


# ------------------------------------------------------------------------------ command line


def parse_route(text: str) -> tuple[str, int, str, int]:
    """Parse "listen_host:port=target_host:port" into its four parts."""
    try:
        listen, target = text.split("=")
        listen_host, listen_port = listen.rsplit(":", 1)
        target_host, target_port = target.rsplit(":", 1)
        return listen_host, int(listen_port), target_host, int(target_port)
    except ValueError as exc:
        raise LocalError(f"route {text!r} is not LISTEN_HOST:PORT=TARGET_HOST:PORT") from exc


def read_commands(proxy: FaultProxy, lines: Iterator[str]) -> None:
    """Apply `pass`, `cut`, `stall`, `delay MS`, `stats` commands until `quit` or EOF."""
    for line in lines:
        words = line.split()
        if not words:
            continue
        try:
            match words:
                case ["quit" | "exit"]:
                    return
                case ["pass" | "restore"]:
                    proxy.restore()
                case ["cut"]:
                    proxy.cut()
                case ["stall"]:
                    proxy.stall()
                case ["delay", delay]:
                    proxy.set_delay_ms(int(delay))
                case ["stats"]:
                    pass
                case _:
                    print("commands: pass | cut | stall | delay MS | stats | quit", flush=True)
                    continue
        except (LocalError, ValueError) as exc:
            print(f"error: {exc}", flush=True)
            continue
        for stats in proxy.get_stats():
            print(f"{stats.listen} -> {stats.target}: {stats.mode}, delay {stats.delay_ms} ms, "
                  f"{stats.connections_open} open, {stats.connections_accepted} accepted, "
                  f"{stats.connections_refused} refused, {stats.connections_cut} cut, "
                  f"{stats.bytes_forwarded} bytes forwarded", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m seoulchain.bench.proxy",
        description="Forward TCP ports and inject faults; commands on stdin: "
                    "pass | cut | stall | delay MS | stats | quit.")
    parser.add_argument("--route", action="append", required=True,
                        metavar="LISTEN_HOST:PORT=TARGET_HOST:PORT")
    args = parser.parse_args(argv)
    try:
        routes = [parse_route(text) for text in args.route]
    except LocalError as exc:
        parser.error(str(exc))
    with FaultProxy() as proxy:
        for listen_host, listen_port, target_host, target_port in routes:
            port = proxy.add_route(target_host, target_port, listen_host=listen_host,
                                   listen_port=listen_port)
            print(f"forwarding {listen_host}:{port} -> {target_host}:{target_port}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            read_commands(proxy, iter(sys.stdin.readline, ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
