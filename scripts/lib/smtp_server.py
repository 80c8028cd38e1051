#!/usr/bin/python3
"""A real SMTP server for the tests (Debian's python3-aiosmtpd; run with /usr/bin/python3).

  smtp_server.py --folder DIR [--mode plain|starttls|tls] [--cert C --key K]
                 [--user LOGIN --password P] [--bearer TOKEN] [--bearer-file F]

Prints "READY <port>" once it listens on 127.0.0.1. Each message it takes is written
to DIR/<n>.eml (the bytes as received) and DIR/<n>.json (envelope sender and
recipients, the login it signed in with and how, whether TLS was on, the client's port:
one port per connection). Faults: each line of DIR/faults, taken in order, one per
message, answers its DATA instead: a reply ("451 4.3.0 try later", "550 5.1.1 no such
user"), "drop" (the connection is closed without a reply) or "stall S" (the message is
taken, and answered after S seconds).
"""
import argparse, asyncio, base64, json, os, ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword, SMTP


class Handler:
    def __init__(self, folder, bearer, user, password, bearer_file=None):
        self.folder, self.bearer, self.user, self.password = folder, bearer, user, password
        self.bearer_file = bearer_file
        self.count = 0

    async def auth_XOAUTH2(self, server, args):
        # AUTH XOAUTH2 <base64 "user=L\x01auth=Bearer T\x01\x01">
        if len(args) < 2:
            answer = await server.challenge_auth("")
            if answer is None:
                return AuthResult(success=False, handled=True)
            raw = answer
        else:
            raw = base64.b64decode(args[1])
        text = raw.decode() if isinstance(raw, bytes) else raw
        fields = dict(p.split("=", 1) for p in text.split("\x01") if "=" in p)
        login, token = fields.get("user", ""), fields.get("auth", "").removeprefix("Bearer ")
        accepted = {self.bearer} if self.bearer is not None else set()
        if self.bearer_file:
            try:
                accepted |= set(open(self.bearer_file).read().split())
            except FileNotFoundError:
                pass
        if token and token in accepted:
            return AuthResult(success=True, auth_data={"login": login, "method": "XOAUTH2"})
        return AuthResult(success=False, handled=False, message="535 5.7.3 Authentication unsuccessful")

    def take_fault(self):
        path = os.path.join(self.folder, "faults")
        try:
            with open(path) as f:
                lines = [l.rstrip("\n") for l in f if l.strip()]
        except FileNotFoundError:
            return None
        if not lines:
            return None
        with open(path + ".tmp", "w") as f:
            f.write("".join(l + "\n" for l in lines[1:]))
        os.replace(path + ".tmp", path)
        return lines[0]

    async def handle_DATA(self, server, session, envelope):
        fault = self.take_fault()
        if fault and fault.startswith("stall "):
            # Take the message, but answer only after the given seconds.
            await asyncio.sleep(float(fault.split()[1]))
            fault = None
        if fault == "drop":
            server.transport.close()
            return "421 4.3.2 closing"  # not seen: the connection is gone
        if fault:
            return fault
        self.count += 1
        base = os.path.join(self.folder, f"{time.time_ns()}-{self.count}")
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content)
        data = session.auth_data
        if isinstance(data, LoginPassword):
            login, method = data.login.decode(), "password"
        elif isinstance(data, dict):
            login, method = data["login"], data["method"]
        else:
            login, method = None, None
        with open(base + ".json", "w") as f:
            json.dump({
                "mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos, "login": login,
                "auth": method, "tls": server.transport.get_extra_info("ssl_object") is not None or session.ssl is not None, "peer_port": session.peer[1],
            }, f)
        os.replace(base + ".eml.tmp", base + ".eml")
        return "250 2.0.0 OK queued as %d" % self.count


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--folder", required=True)
    p.add_argument("--mode", default="plain", choices=["plain", "starttls", "tls"])
    p.add_argument("--cert"); p.add_argument("--key")
    p.add_argument("--user"); p.add_argument("--password"); p.add_argument("--bearer")
    p.add_argument("--bearer-file")
    a = p.parse_args()
    handler = Handler(a.folder, a.bearer, a.user, a.password, a.bearer_file)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and a.user is not None \
            and auth_data.login.decode() == a.user and auth_data.password.decode() == a.password
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    context = None
    if a.mode != "plain":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(a.cert, a.key)
    kwargs = dict(hostname="127.0.0.1", port=0, authenticator=authenticator, auth_require_tls=False,
                  auth_exclude_mechanism=[] if (a.bearer or a.bearer_file) else ["XOAUTH2"])
    if a.mode == "starttls":
        kwargs.update(tls_context=context, require_starttls=True, auth_require_tls=True)
    elif a.mode == "tls":
        kwargs.update(ssl_context=context)
    # Port 0: aiosmtpd's readiness check connects to the port it was given, so bind one first.
    import socket
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    kwargs["port"] = port
    if a.mode == "tls":
        # The readiness check speaks plain SMTP: skip it on the TLS port.
        kwargs["ready_timeout"] = 5
    controller = Controller(handler, **kwargs)
    try:
        controller.start()
    except Exception:
        if a.mode != "tls":
            raise
    print(f"READY {port}", flush=True)
    try:
        sys.stdin.read()  # until the test closes our stdin (or kills us)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
