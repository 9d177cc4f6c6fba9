"""Runs app.py's ASGI app with uvicorn on the socket herd passes as fd 3.

socket.socket(fileno=3) reads the socket's family from the descriptor.
uvicorn's own --fd option takes every descriptor for a unix socket, so it
leaves Nagle's algorithm on for TCP connections: responses then wait for
delayed acknowledgements, about five times slower on keep-alive load."""
import socket

import uvicorn

sock = socket.socket(fileno=3)
server = uvicorn.Server(uvicorn.Config("app:app", log_level="warning", access_log=False))
server.run(sockets=[sock])
