"""Tests of the Python client against a running server (DMS_SERVER=host:port).

Run by scripts/test: python3 -m unittest discover -s clients/python -v
"""

import os
import socket
import struct
import unittest

import dmsrpc

HOST, PORT = os.environ.get("DMS_SERVER", "127.0.0.1:7411").rsplit(":", 1)
PORT = int(PORT)
CHECK = "/dms.rpc.v1.Health/Check"


def connect():
    return dmsrpc.Connection(HOST, PORT)


class Sessions(unittest.TestCase):
    """Signing in from Python (PROTOCOL.md, "Signing in"). With DMS_LOGIN and
    DMS_PASSWORD (scripts/smoke sets them) a real sign-in is tested too."""

    def test_a_settings_call_without_a_session_is_unauthenticated(self):
        with connect() as conn:
            status, _ = conn.call("/dms.settings.v1.SharedSettings/Get")
            self.assertEqual(status["code_name"], "UNAUTHENTICATED")
            status, _ = conn.call("/dms.settings.v1.SharedSettings/Get",
                                  metadata={"authorization": "Bearer " + "A" * 43})
            self.assertEqual(status["code_name"], "UNAUTHENTICATED")

    def test_a_wrong_password_is_refused(self):
        with connect() as conn:
            with self.assertRaises(IOError) as refused:
                conn.login("nobody-at-all", "not a password of anyone")
            self.assertIn("UNAUTHENTICATED", str(refused.exception))

    @unittest.skipUnless(os.environ.get("DMS_LOGIN"), "needs DMS_LOGIN and DMS_PASSWORD")
    def test_login_then_a_settings_call(self):
        with connect() as conn:
            token = conn.login(os.environ["DMS_LOGIN"], os.environ["DMS_PASSWORD"])
            self.assertEqual(len(token), 43)
            status, _ = conn.call("/dms.settings.v1.SharedSettings/Get")
            self.assertEqual(status["code_name"], "OK")
            status, _ = conn.call("/dms.auth.v1.Auth/Logout")
            self.assertEqual(status["code_name"], "OK")
            status, _ = conn.call("/dms.settings.v1.SharedSettings/Get")
            self.assertEqual(status["code_name"], "UNAUTHENTICATED")


    @unittest.skipUnless(os.environ.get("DMS_LOGIN"), "needs DMS_LOGIN and DMS_PASSWORD")
    def test_api_system_and_two_step_login(self):
        """An API system added and signed in, and an operator's two-step login with codes
        made here (Python's hmac), not by the server's own TOTP code."""
        def fields(payload):
            return {number: value for number, _, value in dmsrpc.parse(payload)}

        with connect() as admin:
            admin.login(os.environ["DMS_LOGIN"], os.environ["DMS_PASSWORD"])
            name = "py-%d" % os.getpid()
            status, payload = admin.call("/dms.settings.v1.ApiSystems/Add", dmsrpc.field_bytes(1, name.encode()))
            self.assertEqual(status["code_name"], "OK", status)
            added = fields(payload)
            identifier = fields(added[1])[1].decode()
            secret = added[2].decode()
            request = dmsrpc.field_bytes(1, b"2fa-" + name.encode()) + dmsrpc.field_bytes(2, b"Py Two-Step")
            status, _ = admin.call("/dms.settings.v1.Operators/Create",
                                   dmsrpc.field_bytes(1, request) + dmsrpc.field_bytes(2, b"a python passphrase"))
            self.assertEqual(status["code_name"], "OK", status)
        with connect() as system:
            system.login_system(identifier, secret)
            status, payload = system.call("/dms.auth.v1.Auth/WhoAmI")
            self.assertEqual(status["code_name"], "OK")
            self.assertEqual(fields(payload)[1].decode(), name)
            self.assertEqual(fields(payload).get(9), 1, "WhoAmIResponse.system")
        with connect() as conn:
            conn.login("2fa-" + name, "a python passphrase")
            status, payload = conn.call("/dms.auth.v1.Auth/EnrolTwoStep")
            self.assertEqual(status["code_name"], "OK")
            enrolment = fields(payload)
            key = enrolment[1].decode()
            self.assertTrue(enrolment[2].decode().startswith("otpauth://totp/"))
            status, _ = conn.call("/dms.auth.v1.Auth/ConfirmTwoStep",
                                  dmsrpc.field_bytes(1, dmsrpc.totp(key).encode()))
            self.assertEqual(status["code_name"], "OK", status)
        with connect() as conn:
            status, _ = conn.call("/dms.auth.v1.Auth/Login", dmsrpc.field_bytes(1, b"2fa-" + name.encode())
                                  + dmsrpc.field_bytes(2, b"a python passphrase"))
            self.assertEqual(status["code_name"], "UNAUTHENTICATED")
            self.assertEqual(status["trailers"].get("two-step"), "required", status)
            conn.login("2fa-" + name, "a python passphrase", dmsrpc.totp(key, step_offset=1))
            status, _ = conn.call("/dms.settings.v1.SharedSettings/Get")
            self.assertEqual(status["code_name"], "OK")


class ProtocolFromTheDocs(unittest.TestCase):
    def test_worked_example_call_bytes(self):
        # The CALL of PROTOCOL.md's worked example, byte for byte.
        expected = bytes.fromhex(
            "00000022 01 01 001a 00000001"
            "0a18 2f646d732e7270632e76312e4865616c74682f436865636b".replace(" ", ""))
        self.assertEqual(dmsrpc.frame(dmsrpc.CALL, dmsrpc.END_STREAM, 1,
                                      dmsrpc.encode_call_meta(CHECK)), expected)

    def test_settings(self):
        with connect() as conn:
            self.assertGreater(conn.settings["max_frame_size"], 0)
            self.assertGreater(conn.settings["max_concurrent_calls"], 0)
            self.assertTrue(conn.settings["server"].startswith("dms-settingsd"))
            self.assertIn("deadline", conn.settings["features"])

    def test_health_check(self):
        with connect() as conn:
            status, payload = conn.call(CHECK, b"", metadata={"request-id": "py-1"})
            self.assertEqual(status["code"], 0)
            self.assertEqual(status["trailers"]["request-id"], "py-1")
            self.assertEqual(payload, b"\x08\x01")  # HealthCheckResponse{status: SERVING}

    def test_unknown_method(self):
        with connect() as conn:
            status, _ = conn.call("/dms.nope.v1.Nope/Nothing")
            self.assertEqual(status["code_name"], "UNIMPLEMENTED")
            self.assertTrue(status["trailers"]["request-id"])

    def test_unknown_service_not_found(self):
        with connect() as conn:
            status, _ = conn.call(CHECK, dmsrpc.field_bytes(1, b"no.such.Service"))
            self.assertEqual(status["code_name"], "NOT_FOUND")

    def test_pipelined_calls_match_by_id(self):
        with connect() as conn:
            ids = {conn.send_call(CHECK) for _ in range(200)}
            seen = set()
            while len(seen) < len(ids):
                ftype, _, call_id, meta, payload = conn.read_frame()
                self.assertEqual(ftype, dmsrpc.END)
                self.assertEqual(dmsrpc.decode_status(meta)["code"], 0)
                seen.add(call_id)
            self.assertEqual(seen, ids)

    def test_ping(self):
        with connect() as conn:
            self.assertEqual(len(conn.ping()), 8)

    def test_stream_then_cancel(self):
        with connect() as conn:
            call_id = conn.send_call("/dms.rpc.v1.Health/Watch")
            ftype, _, fid, _, payload = conn.read_frame()
            self.assertEqual((ftype, fid, payload), (dmsrpc.MESSAGE, call_id, b"\x08\x01"))
            conn.cancel(call_id)
            ftype, _, fid, meta, _ = conn.read_frame()
            self.assertEqual((ftype, fid), (dmsrpc.END, call_id))
            self.assertEqual(dmsrpc.decode_status(meta)["code_name"], "CANCELLED")

    def test_reflection_lists_methods(self):
        with connect() as conn:
            status, payload = conn.call("/dms.rpc.v1.Reflection/ListMethods")
            self.assertEqual(status["code"], 0)
            names = [dict((n, v) for n, _, v in dmsrpc.parse(info))[1].decode()
                     for n, _, info in dmsrpc.parse(payload) if n == 1]
            self.assertIn(CHECK, names)
            self.assertIn("/dms.rpc.v1.Reflection/GetFileDescriptorSet", names)

    def test_malformed_frame_gets_goaway(self):
        with connect() as conn:
            conn.sock.sendall(struct.pack(">IBBHI", 8, 42, 0, 0, 1))
            ftype, _, _, meta, _ = conn.read_frame()
            self.assertEqual(ftype, dmsrpc.GOAWAY)
            self.assertEqual(dmsrpc.decode_goaway(meta)["code"], 3)

    def test_http_on_the_port(self):
        sock = socket.create_connection((HOST, PORT), timeout=10)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        sock.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 400 "))
        self.assertIn(b"dmsctl", data)


if __name__ == "__main__":
    unittest.main()
