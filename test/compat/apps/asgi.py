"""The ASGI app of the suite: uvicorn and hypercorn serve it."""


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"3")]})
    await send({"type": "http.response.body", "body": b"ok\n"})


async def app_close(scope, receive, send):
    """app, with "Connection: close" on every answer: for servers that close
    each connection after one answer without saying so."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"3"),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": b"ok\n"})
