"""An HTTP server of the Python standard library on the socket herd passes
(fd 3): keep-alive, READY=1 when serving, and a stop that fails no request."""
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sd_notify import sd_notify

stopping = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    timeout = 5  # close a connection idle this long

    def do_GET(self):
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        if stopping.is_set() or self.close_connection:
            # The last answer on this connection says so: the client asked
            # to close, or this worker is stopping.
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("", 0), Handler, bind_and_activate=False)
server.socket.close()
server.socket = socket.socket(fileno=3)  # the listening socket herd passes
# Every worker may wake for one connection: a blocking accept would leave
# the losers stuck in accept, deaf to the stop. Non-blocking, they return.
server.socket.setblocking(False)
server.daemon_threads = False  # server_close waits for the connections


def stop(signum, frame):
    stopping.set()
    # shutdown() waits for serve_forever to return: not from its own thread.
    threading.Thread(target=server.shutdown).start()


signal.signal(signal.SIGTERM, stop)
sd_notify("READY=1")
server.serve_forever()
server.server_close()  # closes this worker's copy of fd 3, joins the threads
