"""A client that sends Health/Check calls as fast as it can and never reads the answers,
while the server's resident memory is sampled; another client meanwhile makes calls
the ordinary way, which must keep being answered.

    python3 scripts/lib/noread_flood.py PORT SERVER_PID [SECONDS] [--limit-mib N] [--json]

Prints what it saw; exits 1 when the server's RSS grew by more than --limit-mib
(default 64) or an ordinary call failed. The server must stop reading a connection
whose answers are not read (docs/PROTOCOL.md, Errors and limits): before it did, a
release build grew from 34 MB to 2.4 GB in 20 s under this client.
"""

import json
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python"))
import dmsrpc  # noqa: E402

PREFACE = b"DMSRPC\x00\x01"
METHOD = b"/dms.rpc.v1.Health/Check"


def call_frame(call_id):
    meta = b"\x0a" + bytes([len(METHOD)]) + METHOD  # CallMeta { method }
    return struct.pack(">IBBHI", 8 + len(meta), 1, 1, len(meta), call_id) + meta


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    argv = sys.argv[1:]
    limit_mib = 64
    if "--limit-mib" in argv:
        at = argv.index("--limit-mib")
        limit_mib = int(argv[at + 1])
        del argv[at : at + 2]
    args = [a for a in argv if not a.startswith("--")]
    port, pid = int(args[0]), int(args[1])
    seconds = float(args[2]) if len(args) > 2 else 10.0

    flooder = socket.create_connection(("127.0.0.1", port))
    flooder.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    flooder.sendall(PREFACE)
    flooder.setblocking(False)

    rss_before = rss_kib(pid)
    rss_max = rss_before
    sent = 0
    last_progress = time.monotonic()
    stalled_for = 0.0
    ordinary = {"calls": 0, "failures": 0, "slowest_ms": 0.0}
    stop = threading.Event()

    def ordinary_client():
        try:
            client = dmsrpc.Connection("127.0.0.1", port, timeout=5)
        except Exception:  # noqa: BLE001
            ordinary["failures"] += 1
            return
        while not stop.is_set():
            started = time.monotonic()
            try:
                status, _ = client.call("/dms.rpc.v1.Health/Check", b"")
                if status.get("code", 0) == 0:
                    ordinary["calls"] += 1
                else:
                    ordinary["failures"] += 1
            except Exception:  # noqa: BLE001
                ordinary["failures"] += 1
            ordinary["slowest_ms"] = max(ordinary["slowest_ms"], (time.monotonic() - started) * 1000)
            time.sleep(0.05)
        client.close()

    other = threading.Thread(target=ordinary_client)
    other.start()
    call_id = 1
    pending = b""
    start = time.monotonic()
    next_sample = start
    while time.monotonic() - start < seconds:
        if not pending:
            # Ids count up: 1000 calls a batch, each its own id.
            pending = b"".join(call_frame(call_id + i) for i in range(1000))
            call_id += 1000
        try:
            count = flooder.send(pending)
            pending = pending[count:]
            sent += count
            last_progress = time.monotonic()
        except BlockingIOError:
            time.sleep(0.005)
        now = time.monotonic()
        if now >= next_sample:
            rss_max = max(rss_max, rss_kib(pid))
            next_sample = now + 0.1
    stalled_for = time.monotonic() - last_progress
    rss_max = max(rss_max, rss_kib(pid))
    stop.set()
    other.join()
    flooder.close()

    growth_mib = (rss_max - rss_before) / 1024
    result = {
        "seconds": seconds,
        "bytes_sent": sent,
        "calls_sent": sent // len(call_frame(1)),
        "stalled_for_s": round(stalled_for, 2),
        "server_rss_before_kib": rss_before,
        "server_rss_max_kib": rss_max,
        "server_rss_growth_mib": round(growth_mib, 1),
        "limit_mib": limit_mib,
        "ordinary_calls": ordinary["calls"],
        "ordinary_failures": ordinary["failures"],
        "ordinary_slowest_ms": round(ordinary["slowest_ms"], 1),
    }
    ok = growth_mib <= limit_mib and ordinary["failures"] == 0 and ordinary["calls"] > 0
    if "--json" in sys.argv:
        print(json.dumps(result))
    else:
        print(
            f"no-read client: {result['calls_sent']} calls sent in {seconds:g} s (the server stopped reading; "
            f"stalled for the last {result['stalled_for_s']} s); server RSS {rss_before // 1024} -> "
            f"{rss_max // 1024} MiB (+{growth_mib:.1f}, limit {limit_mib}); ordinary client: "
            f"{ordinary['calls']} calls, {ordinary['failures']} failed, slowest {result['ordinary_slowest_ms']} ms"
        )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
