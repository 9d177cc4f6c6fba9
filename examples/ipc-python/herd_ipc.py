"""A client of herd's worker <-> primary IPC protocol, in standard Python.

herd starts each worker with an inherited AF_UNIX stream socket whose fd
number is in HERD_IPC. Frames are a 4-byte big-endian length followed by
one JSON object whose "t" field names the message. docs/PROTOCOL.md in the
herd repository is the reference; this module implements the worker side:
hello, heartbeats, delegate, notify, subscribe, stats/status/ecv, recycle
and the membership messages.

    import herd_ipc

    client = herd_ipc.Client.connect()        # from HERD_IPC
    config = client.delegate("config", {"key": "db"}, timeout=5)
    client.notify("log", {"line": "started"})
    news = client.subscribe("news")           # a queue.Queue of payloads
    client.add_requests(1)
    client.close()

Only the standard library is used; Python 3.8 or later.
"""

import itertools
import json
import math
import os
import queue
import socket
import struct
import threading

VERSION = 1
MAX_FRAME = 1 << 20
ENV_FD = "HERD_IPC"
_HEADER = struct.Struct(">I")


class IPCError(Exception):
    """Base class of this module's errors."""


class ClosedError(IPCError):
    """The connection to the primary has ended."""


class RemoteError(IPCError):
    """An error reported by the primary: code is no_handler, timeout,
    handler_error, shutting_down, unsupported_version or protocol_error."""

    def __init__(self, code, message):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message


def encode_frame(msg):
    """Returns msg (a dict with a "t" key) as one frame."""
    body = json.dumps(msg, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")
    if len(body) > MAX_FRAME:
        raise IPCError("frame of %d bytes exceeds %d" % (len(body), MAX_FRAME))
    return _HEADER.pack(len(body)) + body


def read_frame(sock):
    """Reads one frame from sock; returns the message dict, or None at a
    clean end of stream."""
    header = _recv_exactly(sock, 4, eof_ok=True)
    if header is None:
        return None
    (length,) = _HEADER.unpack(header)
    if length == 0 or length > MAX_FRAME:
        raise IPCError("bad frame length %d" % length)
    msg = json.loads(_recv_exactly(sock, length).decode("utf-8", "replace"))
    if not isinstance(msg, dict) or not isinstance(msg.get("t"), str) or not msg["t"]:
        raise IPCError("malformed frame")
    return msg


def _recv_exactly(sock, n, eof_ok=False):
    chunks = []
    while n > 0:
        chunk = sock.recv(min(n, 1 << 16))
        if not chunk:
            if eof_ok and not chunks:
                return None
            raise ClosedError("primary closed the connection")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


class _Call:
    __slots__ = ("event", "reply")

    def __init__(self):
        self.event = threading.Event()
        self.reply = None


class Client:
    """The worker's side of the channel. Methods are thread-safe."""

    def __init__(self, sock, slot=0, gen=0, timeout=10.0):
        """Says hello on sock (a connected stream socket) and waits up to
        timeout seconds for the primary's welcome."""
        self._sock = sock
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending = {}
        self._topics = {}
        self._requests = 0
        self._gauges = {}
        self._on_rebalance = None
        self._on_prepare = None
        self._events = queue.Queue()
        self._closed = threading.Event()
        self.error = None

        sock.settimeout(timeout)
        self._send({"t": "hello", "v": VERSION, "pid": os.getpid(),
                    "slot": slot, "gen": gen, "lang": "python"})
        answer = read_frame(sock)
        sock.settimeout(None)
        if answer is None:
            raise ClosedError("primary closed the connection during hello")
        if answer["t"] == "error":
            raise RemoteError(answer.get("code", ""), answer.get("error", ""))
        if answer["t"] != "welcome" or answer.get("v") != VERSION:
            raise IPCError("unexpected answer to hello: %r" % answer)
        self.heartbeat_interval = answer.get("heartbeat_ms", 0) / 1000.0

        for target in (self._read_loop, self._event_loop, self._heartbeat_loop):
            threading.Thread(target=target, daemon=True).start()

    @classmethod
    def connect(cls, timeout=10.0):
        """Connects through the fd named by HERD_IPC (and removes it from
        the environment), announcing HERD_WORKER_ID and HERD_GENERATION."""
        fd = os.environ.pop(ENV_FD, "")
        if not fd:
            raise IPCError(ENV_FD + " is not set: not started by herd")
        os.set_inheritable(int(fd), False)  # not for our own children
        sock = socket.socket(fileno=int(fd))
        slot = int(os.environ.get("HERD_WORKER_ID", "0") or 0)
        gen = int(os.environ.get("HERD_GENERATION", "0") or 0)
        return cls(sock, slot, gen, timeout)

    # Requests.

    def delegate(self, type, payload=None, timeout=None):
        """Asks the primary's handler for type to do work; returns the
        reply's payload (None if it had none). Raises RemoteError, or
        TimeoutError after timeout seconds."""
        msg = {"t": "delegate", "type": type}
        if payload is not None:
            msg["payload"] = payload
        return self._call(msg, timeout)

    def stats(self, timeout=None):
        """Returns the cluster stats document."""
        return self._call({"t": "stats"}, timeout)

    def status(self, timeout=None):
        """Returns this worker's status document."""
        return self._call({"t": "status"}, timeout)

    def ecv(self, timeout=None):
        """Returns {"enabled": bool, "healthy": bool, "reason": str}."""
        return self._call({"t": "ecv"}, timeout)

    def _call(self, msg, timeout):
        call = _Call()
        msg["id"] = next(self._ids)
        if timeout is not None:
            msg["timeout_ms"] = max(1, int(math.ceil(timeout * 1000)))
        with self._lock:
            self._check_open()
            self._pending[msg["id"]] = call
        try:
            self._send(msg)
            if not call.event.wait(timeout):
                raise TimeoutError("no reply to %s within %ss" % (msg["t"], timeout))
        finally:
            with self._lock:
                self._pending.pop(msg["id"], None)
        reply = call.reply
        if reply is None:
            raise ClosedError("connection ended: %s" % self.error)
        if reply.get("code") or reply.get("error"):
            raise RemoteError(reply.get("code") or "handler_error", reply.get("error", ""))
        return reply.get("payload")

    # Fire-and-forget messages.

    def notify(self, type, payload=None):
        """Sends work of type to the primary without waiting for it."""
        msg = {"t": "notify", "type": type}
        if payload is not None:
            msg["payload"] = payload
        self._send(msg)

    def recycle(self, reason=""):
        """Asks the primary to replace this worker gracefully."""
        self._send({"t": "recycle", "reason": reason})

    def add_requests(self, n=1):
        """Adds n to the cumulative request count sent with heartbeats."""
        with self._lock:
            self._requests += n

    def set_gauge(self, name, value):
        """Sets a named number sent with every heartbeat."""
        with self._lock:
            self._gauges[name] = float(value)

    def heartbeat(self):
        """Sends a heartbeat now (they are also sent every
        heartbeat_interval seconds)."""
        with self._lock:
            msg = {"t": "heartbeat", "requests": self._requests,
                   "gauges": {k: v for k, v in self._gauges.items() if math.isfinite(v)}}
        self._send(msg)

    # Publish and subscribe.

    def subscribe(self, topic):
        """Returns a queue.Queue receiving the payloads published on topic.
        Topic "" receives the primary's broadcasts."""
        q = queue.Queue()
        with self._lock:
            self._check_open()
            first = topic not in self._topics
            self._topics.setdefault(topic, []).append(q)
        if first and topic:
            self._send({"t": "subscribe", "topic": topic})
        return q

    def unsubscribe(self, topic):
        """Stops the publishes on topic for every queue subscribed to it."""
        with self._lock:
            had = self._topics.pop(topic, None)
        if had and topic:
            self._send({"t": "unsubscribe", "topic": topic})

    # Membership.

    def on_rebalance(self, fn):
        """fn(index, total, epoch) is called on a callback thread whenever
        the primary announces this worker's cluster view."""
        self._on_rebalance = fn

    def on_prepare(self, fn):
        """fn(index, total, epoch) is called before a view change; it
        quiesces and returns, or raises to refuse. The primary is told."""
        self._on_prepare = fn

    def close(self):
        """Closes the connection."""
        self._end(None)
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()

    # Internals.

    def _check_open(self):
        if self._closed.is_set():
            raise ClosedError("connection ended: %s" % self.error)

    def _send(self, msg):
        frame = encode_frame(msg)
        with self._send_lock:
            try:
                self._sock.sendall(frame)
            except OSError as e:
                self._end(e)
                raise ClosedError("send failed: %s" % e) from e

    def _end(self, error):
        with self._lock:
            if self._closed.is_set():
                return
            self.error = error
            self._closed.set()
            calls = list(self._pending.values())
        for call in calls:
            call.event.set()
        self._events.put(None)

    def _read_loop(self):
        try:
            while True:
                msg = read_frame(self._sock)
                if msg is None:
                    raise ClosedError("primary closed the connection")
                self._dispatch(msg)
        except (OSError, ValueError, IPCError) as e:
            self._end(e)

    def _dispatch(self, msg):
        t = msg["t"]
        if t == "reply":
            with self._lock:
                call = self._pending.get(msg.get("id"))
            if call is not None:
                call.reply = msg
                call.event.set()
        elif t == "publish":
            with self._lock:
                queues = list(self._topics.get(msg.get("topic", ""), ()))
            for q in queues:
                q.put(msg.get("payload"))
        elif t in ("rebalance", "prepare"):
            self._events.put(msg)
        elif t == "error":
            raise RemoteError(msg.get("code", ""), msg.get("error", ""))
        # Unknown kinds are ignored, as the protocol requires.

    def _event_loop(self):
        while True:
            msg = self._events.get()
            if msg is None:
                return
            args = (msg.get("index", 0), msg.get("total", 0), msg.get("epoch", 0))
            if msg["t"] == "rebalance":
                if self._on_rebalance:
                    self._on_rebalance(*args)
                continue
            ack = {"t": "prepared", "epoch": args[2]}
            try:
                if self._on_prepare:
                    self._on_prepare(*args)
            except Exception as e:  # the worker refuses the view
                ack["error"] = str(e) or "prepare failed"
            try:
                self._send(ack)
            except IPCError:
                return

    def _heartbeat_loop(self):
        if self.heartbeat_interval <= 0:
            return
        while not self._closed.wait(self.heartbeat_interval):
            try:
                self.heartbeat()
            except IPCError:
                return
