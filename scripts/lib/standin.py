"""What the tests' HTTPS stand-ins share: serving a handler over TLS on a free loopback
port, printing "READY <port>", and stopping when standard input closes."""
import ssl, sys, threading
from http.server import ThreadingHTTPServer


def serve_https(handler, cert, key):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"READY {server.server_address[1]}", flush=True)
    sys.stdin.read()
    server.shutdown()
