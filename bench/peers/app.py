"""The Python app of the side-by-side benchmark, as ASGI: the same module
runs under herd (serve_asgi.py: uvicorn on fd 3, one process per slot) and under gunicorn
with uvicorn's worker class. With LEAK set it keeps 16 KiB per request."""
import os

LEAK = [] if os.environ.get("LEAK") else None
BODY = ("hello from %d\n" % os.getpid()).encode()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if LEAK is not None:
        LEAK.append(bytearray(b"\x01" * 16384))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": BODY})
