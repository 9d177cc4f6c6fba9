"""READY=1 and friends for a Python worker under herd (or systemd), with the
standard library only. NOTIFY_SOCKET is a filesystem path under herd; a name
starting with @ is an abstract socket, which Python spells with a NUL."""
import os
import socket


def sd_notify(state: str) -> bool:
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False  # not asked to notify: --ready delay, or not under herd
    if addr[0] == "@":
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        s.connect(addr)
        s.sendall(state.encode())
    return True
