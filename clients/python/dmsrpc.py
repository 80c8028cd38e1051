"""A DMS RPC version 1 client in plain Python, written from docs/PROTOCOL.md alone.

No dependency but the standard library: the few protobuf messages the protocol needs
are encoded and decoded by hand. Payloads (requests and responses) are bytes; build
them with any protobuf library, or by hand for small messages.

    with Connection("127.0.0.1", 7411) as conn:
        print(conn.settings)
        status, payload = conn.call("/dms.rpc.v1.Health/Check", b"")
        conn.login("admin", "the password")   # later calls carry the session
"""

import os
import socket
import struct

CALL, MESSAGE, END, CANCEL, PING, GOAWAY, SETTINGS = 1, 2, 3, 4, 5, 6, 7
END_STREAM, ACK = 0x01, 0x02
PREFACE = b"DMSRPC" + struct.pack(">H", 1)

STATUS_NAMES = [
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED",
]


# --- protobuf wire format, just enough ------------------------------------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(number, value):
    return varint(number << 3) + varint(value) if value else b""


def field_bytes(number, data):
    return varint((number << 3) | 2) + varint(len(data)) + data if data else b""


def parse(data):
    """Yields (field number, wire type, value) for each field of a message."""
    i = 0
    while i < len(data):
        key, i = read_varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_varint(data, i)
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 2:
            size, i = read_varint(data, i)
            value, i = data[i:i + size], i + size
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        yield number, wire, value


def read_varint(data, i):
    shift = result = 0
    while True:
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def map_entry(key, value):
    return field_bytes(1, key.encode()) + field_bytes(2, value.encode())


def parse_map_entry(data):
    key = value = ""
    for number, _, v in parse(data):
        if number == 1:
            key = v.decode()
        elif number == 2:
            value = v.decode()
    return key, value


def int32(value):
    return value - (1 << 64) if value >= 1 << 63 else value


# --- meta messages (Protos/dms/rpc/v1/frame.proto) --------------------------------

def encode_call_meta(method, timeout_ms=0, metadata=None):
    out = field_bytes(1, method.encode()) + field_varint(2, timeout_ms)
    for k, v in (metadata or {}).items():
        out += field_bytes(3, map_entry(k, v))
    return out


def decode_status(data):
    status = {"code": 0, "message": "", "violations": [], "trailers": {}}
    for number, _, v in parse(data):
        if number == 1:
            status["code"] = int32(v)
        elif number == 2:
            status["message"] = v.decode()
        elif number == 3:
            violation = {"field": "", "rule": "", "description": ""}
            for n, _, x in parse(v):
                violation[{1: "field", 2: "rule", 3: "description"}.get(n, "_")] = x.decode()
            status["violations"].append(violation)
        elif number == 4:
            k, val = parse_map_entry(v)
            status["trailers"][k] = val
    status["code_name"] = STATUS_NAMES[status["code"]] if 0 <= status["code"] < 17 else str(status["code"])
    return status


def decode_settings(data):
    settings = {"max_frame_size": 0, "max_concurrent_calls": 0, "idle_timeout_ms": 0,
                "server": "", "features": []}
    for number, _, v in parse(data):
        if number == 1:
            settings["max_frame_size"] = v
        elif number == 2:
            settings["max_concurrent_calls"] = v
        elif number == 3:
            settings["idle_timeout_ms"] = v
        elif number == 4:
            settings["server"] = v.decode()
        elif number == 5:
            settings["features"].append(v.decode())
    return settings


def decode_goaway(data):
    goaway = {"last_call_id": 0, "code": 0, "reason": ""}
    for number, _, v in parse(data):
        if number == 1:
            goaway["last_call_id"] = v
        elif number == 2:
            goaway["code"] = int32(v)
        elif number == 3:
            goaway["reason"] = v.decode()
    return goaway


# --- frames ---------------------------------------------------------------------

def totp(secret_base32, at=None, step_offset=0):
    """The 6-digit TOTP code (RFC 6238: HMAC-SHA-1, 30 s) of a base32 secret, as an
    authenticator app shows it: for two-step login (EnrolTwoStep's secret)."""
    import base64, hashlib, hmac, time
    key = base64.b32decode(secret_base32 + "=" * (-len(secret_base32) % 8))
    counter = int(time.time() if at is None else at) // 30 + step_offset
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1000000)


def frame(ftype, flags, call_id, meta=b"", payload=b""):
    """One frame: 12-byte header, meta, payload (PROTOCOL.md, Frames)."""
    return struct.pack(">IBBHI", 8 + len(meta) + len(payload), ftype, flags, len(meta), call_id) + meta + payload


class GoAway(Exception):
    def __init__(self, goaway):
        super().__init__("GOAWAY %s" % goaway)
        self.goaway = goaway


class Connection:
    """One connection; calls may be pipelined with send_call / read_frame."""

    def __init__(self, host="127.0.0.1", port=7411, timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.next_id = 1
        self.sock.sendall(PREFACE)
        if self._read_exactly(8) != PREFACE:
            raise IOError("the server did not answer with a DMS RPC version 1 preface")
        ftype, _, _, meta, _ = self.read_frame()
        if ftype == GOAWAY:
            raise GoAway(decode_goaway(meta))
        if ftype != SETTINGS:
            raise IOError("expected SETTINGS, got frame type %d" % ftype)
        self.settings = decode_settings(meta)
        # Metadata every call carries (the session, once signed in).
        self.metadata = {}

    def login(self, login, password, one_time_code=""):
        """Auth/Login: signs in; every later call carries `authorization: Bearer <token>`.
        one_time_code: the authenticator's code, for an operator with two-step login.
        Returns the token; raises IOError with the status when refused."""
        request = field_bytes(1, login.encode()) + field_bytes(2, password.encode())
        if one_time_code:
            request += field_bytes(3, one_time_code.encode())
        return self._sign_in("/dms.auth.v1.Auth/Login", request)

    def login_system(self, identifier, secret):
        """Auth/LoginSystem: signs in as an API system (its identifier and secret)."""
        request = field_bytes(1, identifier.encode()) + field_bytes(2, secret.encode())
        return self._sign_in("/dms.auth.v1.Auth/LoginSystem", request)

    def _sign_in(self, method, request):
        status, payload = self.call(method, request)
        if status["code"] != 0:
            raise IOError("sign-in refused: %s %s" % (STATUS_NAMES[status["code"]], status["message"]))
        token = next(value for number, _, value in parse(payload) if number == 1).decode()
        self.metadata["authorization"] = "Bearer " + token
        return token

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def _read_exactly(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the server closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def read_frame(self):
        """Returns (type, flags, call_id, meta, payload) of the next frame."""
        length, = struct.unpack(">I", self._read_exactly(4))
        ftype, flags, meta_len, call_id = struct.unpack(">BBHI", self._read_exactly(8))
        body = self._read_exactly(length - 8)
        return ftype, flags, call_id, body[:meta_len], body[meta_len:]

    def send_call(self, method, request=b"", timeout_ms=0, metadata=None):
        """Sends a CALL and returns its id, without waiting."""
        call_id = self.next_id
        self.next_id += 1
        meta = encode_call_meta(method, timeout_ms, dict(self.metadata, **(metadata or {})))
        self.sock.sendall(frame(CALL, END_STREAM, call_id, meta, request))
        return call_id

    def call(self, method, request=b"", timeout_ms=0, metadata=None):
        """A unary call: returns (status dict, response payload bytes)."""
        call_id = self.send_call(method, request, timeout_ms, metadata)
        while True:
            ftype, flags, fid, meta, payload = self.read_frame()
            if ftype == GOAWAY:
                raise GoAway(decode_goaway(meta))
            if ftype == PING and not flags & ACK:
                self.sock.sendall(frame(PING, ACK, 0, b"", payload))
            if ftype == END and fid == call_id:
                return decode_status(meta), payload

    def stream(self, method, request=b"", metadata=None):
        """A server-streaming call: yields payloads; returns at END (status in .last_status)."""
        call_id = self.send_call(method, request, 0, metadata)
        while True:
            ftype, _, fid, meta, payload = self.read_frame()
            if fid != call_id:
                continue
            if ftype == MESSAGE:
                yield payload
            elif ftype == END:
                self.last_status = decode_status(meta)
                return

    def cancel(self, call_id):
        self.sock.sendall(frame(CANCEL, 0, call_id))

    def ping(self):
        """Sends a PING and waits for its ACK; returns the 8 bytes echoed."""
        opaque = os.urandom(8)
        self.sock.sendall(frame(PING, 0, 0, b"", opaque))
        while True:
            ftype, flags, _, _, payload = self.read_frame()
            if ftype == PING and flags & ACK and payload == opaque:
                return payload
