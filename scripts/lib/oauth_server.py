#!/usr/bin/python3
"""A stand-in OAuth2 identity provider for the tests (Microsoft's layout), over HTTPS:

  oauth_server.py --folder DIR --cert C --key K [--expires SECONDS]

GET  /oauth2/v2.0/authorize  signs the user in at once: a redirect to redirect_uri with a
                              code and the state (the PKCE challenge remembered).
POST /oauth2/v2.0/token      authorization_code (the code_verifier checked against the
                              challenge, S256) or refresh_token (rotated on each use; while
                              DIR/refuse-refresh exists, refused with invalid_grant).
Each access token issued is appended to DIR/bearers (the SMTP server accepts those); each
token request's grant type to DIR/grants. Prints "READY <port>".
"""
import argparse, base64, hashlib, json, os, secrets, threading, urllib.parse
from http.server import BaseHTTPRequestHandler

from standin import serve_https

codes, refreshes = {}, set()
lock = threading.Lock()
counter = [0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--folder", required=True); p.add_argument("--cert", required=True); p.add_argument("--key", required=True)
    p.add_argument("--expires", type=int, default=3600)
    a = p.parse_args()

    def issue():
        with lock:
            counter[0] += 1
            n = counter[0]
        access, refresh = f"access-{n}-{secrets.token_hex(4)}", f"refresh-{n}-{secrets.token_hex(4)}"
        refreshes.add(refresh)
        with open(os.path.join(a.folder, "bearers"), "a") as f:
            f.write(access + "\n")
        return {"token_type": "Bearer", "access_token": access, "refresh_token": refresh, "expires_in": a.expires}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, status, body, headers=()):
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urllib.parse.urlparse(self.path)
            if url.path != "/oauth2/v2.0/authorize":
                return self.reply(404, {"error": "not_found"})
            q = dict(urllib.parse.parse_qsl(url.query))
            if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
                return self.reply(400, {"error": "invalid_request", "error_description": "PKCE S256 required"})
            code = secrets.token_urlsafe(16)
            codes[code] = q
            target = q["redirect_uri"] + "?" + urllib.parse.urlencode({"code": code, "state": q.get("state", "")})
            self.reply(302, None, [("Location", target)])

        def do_POST(self):
            if self.path != "/oauth2/v2.0/token":
                return self.reply(404, {"error": "not_found"})
            form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()))
            grant = form.get("grant_type", "")
            with open(os.path.join(a.folder, "grants"), "a") as f:
                f.write(grant + "\n")
            if grant == "authorization_code":
                q = codes.pop(form.get("code", ""), None)
                if q is None:
                    return self.reply(400, {"error": "invalid_grant", "error_description": "AADSTS54005: code already redeemed or unknown"})
                verifier = form.get("code_verifier", "").encode()
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).decode().rstrip("=")
                if challenge != q["code_challenge"] or form.get("redirect_uri") != q["redirect_uri"] \
                        or form.get("client_id") != q["client_id"]:
                    return self.reply(400, {"error": "invalid_grant", "error_description": "PKCE or redirect mismatch"})
                return self.reply(200, issue())
            if grant == "refresh_token":
                token = form.get("refresh_token", "")
                if os.path.exists(os.path.join(a.folder, "refuse-refresh")) or token not in refreshes:
                    return self.reply(400, {"error": "invalid_grant", "error_description": "AADSTS70008: the refresh token has expired"})
                refreshes.discard(token)
                return self.reply(200, issue())
            self.reply(400, {"error": "unsupported_grant_type"})

    serve_https(Handler, a.cert, a.key)


if __name__ == "__main__":
    main()
