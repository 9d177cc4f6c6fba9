"""Serve a WSGI app with waitress on the socket herd passes (fd 3).

    herd run --listen :8000 -- python3 waitress_fd.py wsgi:app [--graceful]

waitress takes sockets only from Python (serve(sockets=[...])), hence this
wrapper. waitress has no graceful stop of its own: on SIGTERM it dies with
the connections it holds. With --graceful, SIGTERM instead stops accepting,
answers for STOP_GRACE seconds with "Connection: close", then exits.
"""
import importlib
import os
import signal
import socket
import sys
import threading
import time

import waitress
from waitress.task import WSGITask

GRACE = float(os.environ.get("STOP_GRACE", "1"))
stopping = threading.Event()


def close_when_stopping():
    """Make waitress answer "Connection: close" once the worker stops. A
    WSGI app may not set Connection itself (waitress refuses hop-by-hop
    headers), so this treats each request as if it had asked to close."""
    build = WSGITask.build_response_header

    def build_closing(task):
        if stopping.is_set():
            task.request.headers["CONNECTION"] = "close"
        return build(task)
    WSGITask.build_response_header = build_closing


def main():
    sys.path.insert(0, os.getcwd())
    module, name = sys.argv[1].split(":")
    app = getattr(importlib.import_module(module), name)
    sock = socket.socket(fileno=3)  # the listening socket herd passes
    if "--graceful" not in sys.argv[2:]:
        waitress.serve(app, sockets=[sock])
        return
    close_when_stopping()
    server = waitress.create_server(app, sockets=[sock])

    def stop(signum, frame):
        stopping.set()
        server.accepting = False  # leave new connections in herd's queue
        threading.Timer(GRACE, lambda: os._exit(0)).start()

    signal.signal(signal.SIGTERM, stop)
    server.run()


if __name__ == "__main__":
    main()
