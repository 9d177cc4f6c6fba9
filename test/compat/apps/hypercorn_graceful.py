"""Run an ASGI app with hypercorn on the socket herd passes (fd 3), and stop
without failing a request.

    herd run --listen :8000 -- python3 hypercorn_graceful.py asgi:app

hypercorn alone, on SIGTERM, ends the connections it accepted a moment
before whose request it has not read yet. Here the stop instead:
  1. stops accepting at once (the connections waiting in the socket's queue
     stay there for the other workers: herd keeps the socket);
  2. for STOP_GRACE seconds keeps serving the connections it has, every
     answer with "Connection: close", so each client closes after its answer;
  3. then lets hypercorn finish as usual.
"""
import asyncio
import importlib
import os
import signal
import sys

from hypercorn.asyncio import serve
from hypercorn.config import Config

GRACE = float(os.environ.get("STOP_GRACE", "1"))
stopping = False
servers = []

# hypercorn keeps its listening servers to itself: note them as it starts
# them, so that the stop can close them first.
_start_server = asyncio.start_server


async def start_server(*args, **kwargs):
    server = await _start_server(*args, **kwargs)
    servers.append(server)
    return server

asyncio.start_server = start_server


def close_when_stopping(app):
    """Add "Connection: close" to every answer once the worker stops."""
    async def wrapped(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)

        async def send_closing(message):
            if stopping and message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"connection"]
                message = dict(message, headers=headers + [(b"connection", b"close")])
            await send(message)
        await app(scope, receive, send_closing)
    return wrapped


def stop_accepting(loop):
    """Stop accepting, and leave the servers open: asyncio drops the
    connections it accepted in the same batch as the close of their server
    (their transport cannot attach to a closed server)."""
    for server in servers:
        for sock in server.sockets:
            loop.remove_reader(sock.fileno())


async def stop_requested():
    global stopping
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    stopping = True
    stop_accepting(asyncio.get_running_loop())
    await asyncio.sleep(GRACE)


if __name__ == "__main__":
    sys.path.insert(0, os.getcwd())
    module, name = sys.argv[1].split(":")
    app = getattr(importlib.import_module(module), name)
    config = Config()
    config.bind = ["fd://3"]
    asyncio.run(serve(close_when_stopping(app), config, shutdown_trigger=stop_requested))
