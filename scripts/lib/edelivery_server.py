#!/usr/bin/python3
"""A stand-in of e-Delivery's token endpoint (SPEC INT-7a) for the tests, over HTTPS:

  edelivery_server.py --folder DIR --cert C --key K --public-key PEM --address ADDRESS --system NAME

POST /auth/realms/EDOR/protocol/openid-connect/token takes client_credentials with a
client assertion (RFC 7523) and checks, with Python's own JWT library (python3-jwt), the
signature with PEM (RS256 or ES256/384/512, as the header says), iss = sub =
"ADDRESS.SYSTEM.NAME", aud = the realm URL, a jti not seen before, iat/nbf not in the
future, exp within 10 minutes, and login_hint = "ADE.ADDRESS". It answers standard OAuth
JSON, or {"error": "invalid_client", "error_description": why} with 401 (400 for a bad
request). DIR/refuse (when it exists) holds an OAuth error code to answer with instead.
Each request's outcome is appended to DIR/checked. Prints "READY <port>".
"""
import argparse, json, os, secrets, threading, time, urllib.parse
from http.server import BaseHTTPRequestHandler

from standin import serve_https

import jwt

seen = set()
lock = threading.Lock()


def main():
    p = argparse.ArgumentParser()
    for name in ("folder", "cert", "key", "public-key", "address", "system"):
        p.add_argument("--" + name, required=True)
    a = p.parse_args()
    public_key = open(a.public_key).read()
    client = f"{a.address}.SYSTEM.{a.system}"
    path = "/auth/realms/EDOR/protocol/openid-connect/token"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def outcome(self, text):
            with open(os.path.join(a.folder, "checked"), "a") as f:
                f.write(text + "\n")

        def refuse(self, status, error, why):
            self.outcome(f"{error}: {why}")
            self.reply(status, {"error": error, "error_description": why})

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0) or 0)
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            if self.path != path:
                return self.reply(404, {"error": "not_found"})
            if form.get("grant_type") != "client_credentials":
                return self.refuse(400, "unsupported_grant_type", form.get("grant_type", ""))
            if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
                return self.refuse(400, "invalid_request", "client_assertion_type")
            if form.get("login_hint") != "ADE." + a.address:
                return self.refuse(400, "invalid_request", "login_hint " + form.get("login_hint", ""))
            token = form.get("client_assertion", "")
            realm = f"https://{self.headers.get('Host')}/auth/realms/EDOR"
            try:
                header = jwt.get_unverified_header(token)
                if header.get("typ") != "JWT":
                    raise jwt.InvalidTokenError("typ is not JWT")
                claims = jwt.decode(token, public_key, algorithms=[header.get("alg", "none")], audience=realm,
                                    options={"require": ["iss", "sub", "aud", "jti", "iat", "nbf", "exp"]})
            except Exception as e:
                return self.refuse(401, "invalid_client", f"{type(e).__name__}: {e}")
            now = time.time()
            if header["alg"] not in ("RS256", "ES256", "ES384", "ES512"):
                return self.refuse(401, "invalid_client", "alg " + header["alg"])
            if claims["iss"] != client or claims["sub"] != client:
                return self.refuse(401, "invalid_client", f"iss/sub {claims['iss']}/{claims['sub']} is not {client}")
            if not (claims["exp"] > now and claims["exp"] - claims["iat"] <= 600 and claims["iat"] <= now + 5):
                return self.refuse(401, "invalid_client", "exp or iat out of bounds")
            with lock:
                if claims["jti"] in seen:
                    return self.refuse(401, "invalid_client", "jti replayed")
                seen.add(claims["jti"])
            refuse = os.path.join(a.folder, "refuse")
            if os.path.exists(refuse):
                error = open(refuse).read().strip() or "unauthorized_client"
                return self.refuse(401, error, "the system is not registered for this mailbox")
            self.outcome("ok " + header["alg"])
            self.reply(200, {"access_token": "edo-" + secrets.token_hex(16), "expires_in": 300,
                             "token_type": "Bearer", "scope": "profile"})

    serve_https(Handler, a.cert, a.key)


if __name__ == "__main__":
    main()
