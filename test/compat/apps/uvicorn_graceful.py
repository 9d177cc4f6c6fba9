"""Run an ASGI app with uvicorn on the socket herd passes (fd 3), and stop
without failing a request.

    herd run --listen :8000 -- python3 uvicorn_graceful.py asgi:app

uvicorn alone, on SIGTERM, closes every connection that has no request in
progress, including those it accepted a moment before whose request it has
not read yet, and idle keep-alive connections a client is about to reuse.
Here the stop instead:
  1. stops accepting at once (the connections waiting in the socket's queue
     stay there for the other workers: herd keeps the socket);
  2. for GRACE seconds keeps serving the connections it has, every answer
     with "Connection: close", so each client closes after its answer;
  3. then lets uvicorn finish as usual.
"""
import asyncio
import os
import sys

import uvicorn

GRACE = float(os.environ.get("STOP_GRACE", "1"))
stopping = False


def close_when_stopping(app):
    """Add "Connection: close" to every answer once the worker stops."""
    async def wrapped(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)

        async def send_closing(message):
            if stopping and message["type"] == "http.response.start":
                headers = list(message.get("headers", [])) + [(b"connection", b"close")]
                message = dict(message, headers=headers)
            await send(message)
        await app(scope, receive, send_closing)
    return wrapped


class Server(uvicorn.Server):
    def handle_exit(self, sig, frame):
        global stopping
        if stopping:
            return super().handle_exit(sig, frame)  # a second signal: now
        stopping = True
        loop = asyncio.get_event_loop()
        # Stop accepting, and leave the servers open: asyncio drops the
        # connections it accepted in the same batch as the close of their
        # server (their transport cannot attach to a closed server).
        for server in self.servers:
            for sock in server.sockets:
                loop.remove_reader(sock.fileno())
        loop.call_later(GRACE, super().handle_exit, sig, frame)


if __name__ == "__main__":
    sys.path.insert(0, os.getcwd())
    app = uvicorn.importer.import_from_string(sys.argv[1])
    config = uvicorn.Config(close_when_stopping(app), fd=3, lifespan="off")
    Server(config).run()
