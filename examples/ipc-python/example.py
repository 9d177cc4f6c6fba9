"""A herd worker in Python talking to its primary over HERD_IPC.

Run by herd (herd run -- python3 example.py) or by the Go test
internal/ipc TestPythonClient: it subscribes to "news", reports requests
and a gauge, tells the primary it is ready, waits for one publish, sends
it back through a delegate, checks that an unknown type has no handler,
and prints the delegate's reply as JSON.
"""

import json
import sys

import herd_ipc


def main():
    client = herd_ipc.Client.connect(timeout=10)
    news = client.subscribe("news")
    client.add_requests(3)
    client.set_gauge("queue_depth", 1.5)
    client.heartbeat()
    client.notify("ready", {"lang": "python"})

    published = news.get(timeout=10)
    reply = client.delegate("echo", {"got": published}, timeout=10)

    try:
        client.delegate("nobody", timeout=10)
        print("delegate to an unknown type succeeded", file=sys.stderr)
        return 1
    except herd_ipc.RemoteError as e:
        if e.code != "no_handler":
            print("unexpected error code %r" % e.code, file=sys.stderr)
            return 1

    print(json.dumps(reply, sort_keys=True))
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
