"""Server memory per idle connection: RSS idle, with 1,000 and with 10,000 idle
DMS RPC connections (each past its preface and SETTINGS).

    python3 idle_connections.py PID PORT  ->  one JSON record
"""

import json
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python"))
import dmsrpc  # noqa: E402


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS for %d" % pid)


def open_idle(port, count, into):
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(dmsrpc.PREFACE)
        into.append(sock)
    # Read every preface and SETTINGS so the server has finished each handshake.
    for sock in into[-count:]:
        sock.settimeout(10)
        need = 8 + 12
        data = b""
        while len(data) < need:
            chunk = sock.recv(4096)
            if not chunk:
                raise SystemExit("a connection closed")
            data += chunk
            if len(data) >= 12 and need == 20:
                need = 8 + 4 + int.from_bytes(data[8:12], "big")


def settle(pid):
    time.sleep(1.0)
    return rss_kib(pid)


def main():
    pid, port = int(sys.argv[1]), int(sys.argv[2])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    sockets = []
    idle = settle(pid)
    open_idle(port, 1000, sockets)
    at_1000 = settle(pid)
    open_idle(port, 9000, sockets)
    at_10000 = settle(pid)
    for sock in sockets:
        sock.close()
    print(json.dumps({
        "rss_idle_kib": idle,
        "rss_1000_kib": at_1000,
        "rss_10000_kib": at_10000,
        "bytes_per_connection": round((at_10000 - idle) * 1024 / 10000),
    }))


if __name__ == "__main__":
    main()
