"""Shared helpers for the Chorus test clients: arguments, the JSON result line, raw sockets.

Every client prints exactly one JSON object on its last stdout line ({"ok": bool, ...}) and
exits 0 only when ok is true, so the Swift end-to-end tests can assert on both.
"""
import argparse
import base64
import json
import os
import socket
import struct
import sys
import time

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--timeout", type=float, default=20.0, help="seconds for the whole client")
    return p


def finish(result):
    """Print the result line and exit with 0 when result['ok'] is true, 1 otherwise."""
    print(json.dumps(result, sort_keys=True), flush=True)
    sys.exit(0 if result.get("ok") else 1)


def event(name, **fields):
    """A progress line for a test that waits on this client (e.g. "connected")."""
    print(json.dumps({"event": name, **fields}, sort_keys=True), flush=True)


# --- raw sockets, for bytes the websockets library would never send -------------------------

class Raw:
    def __init__(self, host, port, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def recv_some(self):
        """Next bytes from the socket; b"" at EOF (a reset counts as EOF)."""
        try:
            return self.sock.recv(65536)
        except ConnectionResetError:
            return b""

    def read_http_head(self):
        """(status, headers dict lower-cased, raw head) of the response; None if EOF first."""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.recv_some()
            if not chunk:
                return None
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        return status, headers, lines[0]

    def read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.recv_some()
            if not chunk:
                return None
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_frame(self):
        """(fin, opcode, payload) of the next server frame; None at EOF."""
        h = self.read_exact(2)
        if h is None:
            return None
        fin, opcode, masked, n = h[0] >> 7, h[0] & 0x0F, h[1] >> 7, h[1] & 0x7F
        if n == 126:
            ext = self.read_exact(2)
            if ext is None:
                return None
            n = struct.unpack("!H", ext)[0]
        elif n == 127:
            ext = self.read_exact(8)
            if ext is None:
                return None
            n = struct.unpack("!Q", ext)[0]
        key = self.read_exact(4) if masked else None
        payload = self.read_exact(n) if n else b""
        if payload is None:
            return None
        if key:
            payload = mask_bytes(payload, key)
        return bool(fin), opcode, payload

    def read_until_eof(self, limit=5.0):
        """Everything up to EOF (or the time limit); True if EOF was seen."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                return True
            except socket.timeout:
                continue
            if not chunk:
                return True
            self.buf += chunk
        return False

    def close(self):
        self.sock.close()

    def reset(self):
        """Close with RST instead of FIN (SO_LINGER 0): the peer vanishes mid-conversation."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def upgrade_request(host, port, path="/", version="13", key=None, extra=""):
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: {version}\r\n{extra}\r\n").encode()


def frame(opcode, payload, fin=True, mask=True, rsv=0, declared_length=None):
    """One frame as a client would send it (masked unless mask=False)."""
    n = len(payload) if declared_length is None else declared_length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + mask_bytes(payload, key)


def mask_bytes(payload, key):
    """XOR with the 4-byte key (RFC 6455 §5.3), on big integers so a few MiB stay fast."""
    if not payload:
        return b""
    n = len(payload)
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def close_code(payload):
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
