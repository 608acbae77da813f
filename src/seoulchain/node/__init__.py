"""Node: the asyncio shell that drives the pure cores from sockets, timers and disk."""
