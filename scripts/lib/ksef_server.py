#!/usr/bin/python3
"""A stand-in of KSeF 2.0's token sign-in (SPEC INT-4b) for the tests, over HTTPS:

  ksef_server.py --folder DIR --cert C --key K --nip NIP --token TOKEN

Under /v2, as the Ministry's open-api.json describes them:
POST /auth/challenge                    200 {challenge, timestamp, timestampMs, clientIp}
GET  /security/public-key-certificates  a KsefTokenEncryption certificate valid now (its RSA
                                        key made here), an expired one and a
                                        SymmetricKeyEncryption one
POST /auth/ksef-token                   decrypts encryptedToken (RSA-OAEP, SHA-256, MGF1
                                        SHA-256) and checks "TOKEN|timestampMs" of a challenge
                                        it gave, and the NIP: 202 {referenceNumber,
                                        authenticationToken}; a wrong token or NIP is found
                                        out later, as KSeF does: status 450
GET  /auth/{ref}                        100 at the first look, then 200 (or 450 "Nieprawidłowy
                                        token")
POST /auth/token/redeem                 200 {accessToken, refreshToken} once; again: 400 with
                                        exceptionCode 21301
Faults, read from DIR/faults at each request, one per line "STEP SHAPE": STEP is challenge,
certificates, ksef-token, status or redeem; SHAPE is 400 (an exception list), 401
(problem+json), 429 (with Retry-After), 500, "stall" (status stays 100), or "sleep S".
Each request's "METHOD PATH" is appended to DIR/requests. Prints "READY <port>".
"""
import argparse, base64, datetime, json, os, secrets, threading, time, uuid
from http.server import BaseHTTPRequestHandler

from standin import serve_https

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

lock = threading.Lock()
challenges, sessions = {}, {}


def certificate(key, not_before, not_after):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "KSeF stand-in")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+00:00"


def main():
    p = argparse.ArgumentParser()
    for name in ("folder", "cert", "key", "nip", "token"):
        p.add_argument("--" + name, required=True)
    a = p.parse_args()
    now = datetime.datetime.now(datetime.timezone.utc)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    old = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    listed = [
        {"certificate": certificate(old, now - datetime.timedelta(days=400), now - datetime.timedelta(days=1)),
         "certificateId": "old", "publicKeyId": "old-key", "validFrom": iso(now - datetime.timedelta(days=400)),
         "validTo": iso(now - datetime.timedelta(days=1)), "usage": ["KsefTokenEncryption"]},
        {"certificate": certificate(old, now - datetime.timedelta(days=1), now + datetime.timedelta(days=365)),
         "certificateId": "sym", "publicKeyId": "sym-key", "validFrom": iso(now - datetime.timedelta(days=1)),
         "validTo": iso(now + datetime.timedelta(days=365)), "usage": ["SymmetricKeyEncryption"]},
        {"certificate": certificate(key, now - datetime.timedelta(days=1), now + datetime.timedelta(days=365)),
         "certificateId": "current", "publicKeyId": "current-key", "validFrom": iso(now - datetime.timedelta(days=1)),
         "validTo": iso(now + datetime.timedelta(days=365)), "usage": ["KsefTokenEncryption"]},
    ]

    def fault(step):
        try:
            with open(os.path.join(a.folder, "faults")) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 2 and parts[0] == step:
                        return parts[1:]
        except FileNotFoundError:
            pass
        return None

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, body, headers=(), content_type="application/json"):
            data = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def faulted(self, step):
            shape = fault(step)
            if not shape:
                return False
            if shape[0] == "sleep":
                time.sleep(float(shape[1]))
                return False
            if shape[0] == "400":
                self.reply(400, {"exception": {"exceptionDetailList": [
                    {"exceptionCode": 21405, "exceptionDescription": "Błąd walidacji danych wejściowych.",
                     "details": ["contextIdentifier.value: nieprawidłowy NIP"]}],
                    "referenceNumber": str(uuid.uuid4()), "serviceCode": "stand-in", "timestamp": iso(now)}})
            elif shape[0] == "401":
                self.reply(401, {"type": "about:blank", "title": "Unauthorized", "status": 401,
                                 "detail": "Brak lub nieprawidłowy token uwierzytelniający."},
                           content_type="application/problem+json")
            elif shape[0] == "429":
                self.reply(429, {"status": 429, "detail": "Przekroczono limit żądań."}, [("Retry-After", "30")])
            elif shape[0] == "500":
                self.reply(500, {})
            else:
                return False
            return True

        def bearer(self):
            auth = self.headers.get("Authorization", "")
            return auth[7:] if auth.startswith("Bearer ") else ""

        def body(self):
            return self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))

        def record(self):
            with open(os.path.join(a.folder, "requests"), "a") as f:
                f.write(f"{self.command} {self.path}\n")

        def do_GET(self):
            self.record()
            if self.path == "/v2/security/public-key-certificates":
                if self.faulted("certificates"):
                    return
                return self.reply(200, listed)
            if self.path.startswith("/v2/auth/"):
                if self.faulted("status"):
                    return
                ref = self.path[len("/v2/auth/"):]
                with lock:
                    s = sessions.get(ref)
                    if s is None or s["auth"] != self.bearer():
                        return self.reply(401, {"title": "Unauthorized", "status": 401, "detail": "bad token"},
                                          content_type="application/problem+json")
                    s["looks"] += 1
                    first = s["looks"] == 1
                if first or fault("status") == ["stall"]:
                    return self.reply(200, {"startDate": iso(now), "authenticationMethod": "Token",
                                            "status": {"code": 100, "description": "Uwierzytelnianie w toku"}})
                if not s["valid"]:
                    return self.reply(200, {"status": {"code": 450, "description":
                                      "Uwierzytelnianie zakończone niepowodzeniem z powodu błędnego tokenu",
                                      "details": ["Nieprawidłowy token"]}})
                return self.reply(200, {"status": {"code": 200, "description": "Uwierzytelnianie zakończone sukcesem"}})
            self.reply(404, {})

        def do_POST(self):
            self.record()
            data = self.body()
            if self.path == "/v2/auth/challenge":
                if self.faulted("challenge"):
                    return
                t = datetime.datetime.now(datetime.timezone.utc)
                ms = int(t.timestamp() * 1000)
                c = t.strftime("%Y%m%d") + "-CR-" + secrets.token_hex(8).upper()
                with lock:
                    challenges[c] = ms
                return self.reply(200, {"challenge": c, "timestamp": iso(t), "timestampMs": ms,
                                        "clientIp": self.client_address[0]})
            if self.path == "/v2/auth/ksef-token":
                if self.faulted("ksef-token"):
                    return
                try:
                    request = json.loads(data)
                    ms = challenges.pop(request["challenge"])
                    plain = key.decrypt(base64.b64decode(request["encryptedToken"]), padding.OAEP(
                        mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)).decode()
                    context = request["contextIdentifier"]
                except Exception as e:
                    return self.reply(400, {"exception": {"exceptionDetailList": [
                        {"exceptionCode": 21405, "exceptionDescription": "Błąd walidacji danych wejściowych.",
                         "details": [f"{type(e).__name__}: {e}"]}]}})
                valid = (plain == f"{a.token}|{ms}" and context == {"type": "Nip", "value": a.nip}
                         and request.get("publicKeyId") in (None, "current-key"))
                with open(os.path.join(a.folder, "checked"), "a") as f:
                    f.write(("valid" if valid else "invalid") + "\n")
                ref = t = time.strftime("%Y%m%d") + "-AU-" + secrets.token_hex(6).upper()
                auth = "auth-" + secrets.token_hex(12)
                with lock:
                    sessions[ref] = {"auth": auth, "valid": valid, "looks": 0, "redeemed": False}
                return self.reply(202, {"referenceNumber": ref, "authenticationToken": {
                    "token": auth, "validUntil": iso(now + datetime.timedelta(minutes=15))}})
            if self.path == "/v2/auth/token/redeem":
                if self.faulted("redeem"):
                    return
                with lock:
                    s = next((s for s in sessions.values() if s["auth"] == self.bearer()), None)
                    again = s is not None and s["redeemed"]
                    if s is not None:
                        s["redeemed"] = True
                if s is None:
                    return self.reply(401, {"title": "Unauthorized", "status": 401, "detail": "bad token"},
                                      content_type="application/problem+json")
                if again:
                    return self.reply(400, {"exception": {"exceptionDetailList": [
                        {"exceptionCode": 21301, "exceptionDescription": "Brak autoryzacji.",
                         "details": ["Tokeny zostały już pobrane."]}]}})
                t = datetime.datetime.now(datetime.timezone.utc)
                return self.reply(200, {
                    "accessToken": {"token": "access-" + secrets.token_hex(8), "validUntil": iso(t + datetime.timedelta(minutes=15))},
                    "refreshToken": {"token": "refresh-" + secrets.token_hex(8), "validUntil": iso(t + datetime.timedelta(days=7))}})
            self.reply(404, {})

    serve_https(Handler, a.cert, a.key)


if __name__ == "__main__":
    main()
