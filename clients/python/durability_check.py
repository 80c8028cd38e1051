"""Nothing acknowledged is lost: kill -9 the server during a stream of writes, restart
it, and find every acknowledged write.

    python3 durability_check.py SERVER_BINARY DATA_DIR PORT

Makes an administrator (dms-settingsd bootstrap-admin), starts the server
(multi-company mode) on DATA_DIR, signs in and creates companies one after
another from several pipelined connections, sends SIGKILL once enough writes are
acknowledged (while more are in flight), restarts the server on the same folder and
checks that each acknowledged company is there. Exits 1 on any loss.
"""

import os
import signal
import subprocess
import sys
import threading
import time

import dmsrpc

CREATE = "/dms.settings.v1.Companies/Create"
GET = "/dms.settings.v1.Companies/Get"


def company_request(code):
    """CreateCompanyRequest{company: Company{short_name, mode ERP_XL, name, connection}}."""
    connection = (dmsrpc.field_bytes(1, b"sql01") + dmsrpc.field_bytes(2, b"ERPXL")
                  + dmsrpc.field_varint(3, 1) + dmsrpc.field_bytes(4, b"dms"))
    company = (dmsrpc.field_bytes(1, code.encode()) + dmsrpc.field_varint(2, 1)
               + dmsrpc.field_bytes(3, ("Company " + code).encode()) + dmsrpc.field_bytes(4, connection))
    return dmsrpc.field_bytes(1, company)


LOGIN, PASSWORD = "durability", "a long enough password"
# Cheap password hashes: this check is about writes, not about sign-in.
HASH_COST = ["--security-password-hash-log-n", "10"]


def bootstrap(binary, data):
    subprocess.run([binary, "bootstrap-admin", "--login", LOGIN, "--data-directory", data, "--log-level", "warning"]
                   + HASH_COST, input=(PASSWORD + "\n").encode(), check=True, stdout=subprocess.DEVNULL)


def connect(port):
    conn = dmsrpc.Connection("127.0.0.1", port)
    conn.login(LOGIN, PASSWORD)
    return conn


def start(binary, data, port):
    process = subprocess.Popen(
        [binary, "--port", str(port), "--data-directory", data, "--settings-multi-company", "true",
         "--log-level", "error"] + HASH_COST,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            dmsrpc.Connection("127.0.0.1", port, timeout=2).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the server did not start")


def writer(port, prefix, acked, lock, stop):
    """Creates companies P0001, P0002, ... (pipelined 4 deep), recording each OK."""
    try:
        conn = connect(port)
        pending = {}
        n = 0
        while not stop.is_set() or pending:
            while len(pending) < 4 and not stop.is_set():
                n += 1
                code = "%s%03d" % (prefix, n)
                pending[conn.send_call(CREATE, company_request(code))] = code
            ftype, _, call_id, meta, _ = conn.read_frame()
            if ftype == dmsrpc.END and call_id in pending:
                code = pending.pop(call_id)
                if dmsrpc.decode_status(meta)["code"] == 0:
                    with lock:
                        acked.append(code)
    except (EOFError, OSError):
        pass  # the server was killed


def main():
    binary, data, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    bootstrap(binary, data)
    server = start(binary, data, port)
    acked, lock, stop = [], threading.Lock(), threading.Event()
    threads = [threading.Thread(target=writer, args=(port, p, acked, lock, stop)) for p in ("A", "B", "C")]
    for t in threads:
        t.start()
    while True:
        with lock:
            if len(acked) >= 150:
                break
        time.sleep(0.01)
    os.kill(server.pid, signal.SIGKILL)  # mid-stream: more writes are in flight
    server.wait()
    stop.set()
    for t in threads:
        t.join(timeout=10)
    with lock:
        acknowledged = list(acked)

    server = start(binary, data, port)
    try:
        conn = connect(port)
        missing = []
        for code in acknowledged:
            status, _ = conn.call(GET, dmsrpc.field_bytes(1, code.encode()))
            if status["code"] != 0:
                missing.append(code)
        conn.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
    if missing:
        print("LOST %d of %d acknowledged writes: %s" % (len(missing), len(acknowledged), missing[:10]))
        sys.exit(1)
    print("durability: all %d acknowledged writes survived kill -9" % len(acknowledged))


if __name__ == "__main__":
    main()
