"""A listener on 127.0.0.1 that is not a DMS RPC server, for trying a client against it.

    python3 scripts/lib/fake_peer.py http PORT     # answers "HTTP/1.0 400 Bad Request" to whatever it gets
    python3 scripts/lib/fake_peer.py silent PORT   # accepts and never sends a byte

Runs until killed.
"""

import socket
import sys
import threading


def serve(mode, port):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(16)
    held = []
    while True:
        connection, _ = listener.accept()
        if mode == "silent":
            held.append(connection)
            continue

        def answer(conn):
            try:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            finally:
                conn.close()

        threading.Thread(target=answer, args=(connection,), daemon=True).start()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
