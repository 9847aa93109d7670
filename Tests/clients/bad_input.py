#!/usr/bin/env python3
"""Hostile clients over raw sockets: each MODE sends what a browser never would and checks
the server's answer. Prints one JSON result line; exit 0 when the server answered as the
RFCs require.
    bad_input.py MODE --port PORT [--size BYTES]

Modes:
  oversized_header   request head over --max-header-size      -> HTTP 431, then close
  malformed          unparseable request / missing key         -> HTTP 400
  wrong_version      Sec-WebSocket-Version: 8                  -> HTTP 426 + Sec-WebSocket-Version: 13
  unmasked           unmasked client frame (RFC 6455 §5.1)     -> close 1002
  invalid_utf8       text message that is not UTF-8 (§8.1)     -> close 1007
  oversized_message  message over --max-message-size, whole and in fragments -> close 1009
  abrupt             disconnects mid-handshake and mid-frame (FIN and RST); nothing to answer
  bad_body_framing   invalid / repeated Content-Length, Transfer-Encoding with Content-Length
                     (RFC 9112 §6.3)  -> HTTP 400 (501 for unknown codings), whatever the route
"""
import os
import socket
import time

from common import (OP_BINARY, OP_CLOSE, OP_CONT, OP_TEXT, Raw, close_code, finish, frame,
                    parser, upgrade_request)


class Check:
    def __init__(self, args):
        self.args = args
        self.failures = []
        self.observed = {}

    def expect(self, name, ok, detail):
        self.observed[name] = detail
        if not ok:
            self.failures.append(f"{name}: {detail}")

    def connect(self):
        return Raw(self.args.host, self.args.port, timeout=self.args.io_timeout)

    def open_websocket(self):
        raw = self.connect()
        raw.send(upgrade_request(self.args.host, self.args.port))
        head = raw.read_http_head()
        if head is None or head[0] != 101:
            raise RuntimeError(f"handshake failed: {head[2] if head else 'EOF'}")
        return raw

    def http_status(self, name, request, want, header=None):
        """Send request bytes; expect status `want` (and `header` = (name, substring))."""
        raw = self.connect()
        try:
            try:
                raw.send(request)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may answer and close before reading everything we send
            head = raw.read_http_head()
            if head is None:
                self.expect(name, False, "connection closed without an HTTP response")
                return
            status, headers, line = head
            detail = line
            ok = status == want
            if header:
                values = headers.get(header[0].lower(), [])
                detail += f" | {header[0]}: {', '.join(values) or '(absent)'}"
                ok = ok and any(header[1] in v for v in values)
            self.expect(name, ok, detail)
            self.expect(name + " then close", raw.read_until_eof(self.args.io_timeout),
                        "closed by the server")
        finally:
            raw.close()

    def close_frame(self, name, raw, want):
        """Read frames until a close frame; expect its code to be `want`, then EOF."""
        got = None
        while True:
            f = raw.read_frame()
            if f is None:
                break
            if f[1] == OP_CLOSE:
                got = close_code(f[2])
                try:
                    raw.send(frame(OP_CLOSE, f[2][:2]))
                except OSError:
                    pass
                break
        if got is None:
            self.expect(name, False, "connection ended without a close frame")
        else:
            self.expect(name, got == want, f"close code {got}")
            eof = raw.read_until_eof(self.args.io_timeout)
            self.expect(name + " then close", eof, "TCP closed" if eof else "TCP still open")
        raw.close()


def oversized_header(c):
    filler = "a" * c.args.size
    req = upgrade_request(c.args.host, c.args.port, extra=f"X-Filler: {filler}\r\n")
    c.http_status("oversized header -> 431", req, 431)


def malformed(c):
    h, p = c.args.host, c.args.port
    c.http_status("garbage request line -> 400", b"\x00\x01\x02 nonsense\r\n\r\n", 400)
    c.http_status("header line without colon -> 400",
                  f"GET / HTTP/1.1\r\nHost {h}:{p}\r\nUpgrade: websocket\r\n\r\n".encode(), 400)
    c.http_status("upgrade without Sec-WebSocket-Key -> 400",
                  upgrade_request(h, p).replace(b"Sec-WebSocket-Key", b"X-Not-The-Key"), 400)


def wrong_version(c):
    c.http_status("Sec-WebSocket-Version: 8 -> 426", upgrade_request(c.args.host, c.args.port,
                  version="8"), 426, header=("Sec-WebSocket-Version", "13"))


def unmasked(c):
    raw = c.open_websocket()
    raw.send(frame(OP_TEXT, b"hello, unmasked", mask=False))
    c.close_frame("unmasked frame -> 1002", raw, 1002)


def invalid_utf8(c):
    raw = c.open_websocket()
    # Autobahn 6.3.1: valid UTF-8 up to a lone surrogate (ED A0 80), then more text.
    raw.send(frame(OP_TEXT, bytes.fromhex("cebae1bdb9cf83cebcceb5eda080656469746564")))
    c.close_frame("invalid UTF-8 text -> 1007", raw, 1007)
    raw = c.open_websocket()
    raw.send(frame(OP_TEXT, b"split ", fin=False) + frame(OP_CONT, b"\xff\xfe", fin=True))
    c.close_frame("invalid UTF-8 in a fragment -> 1007", raw, 1007)


def oversized_message(c):
    n = c.args.size
    raw = c.open_websocket()
    try:
        raw.send(frame(OP_BINARY, os.urandom(n)))
    except (BrokenPipeError, ConnectionResetError):
        pass
    c.close_frame(f"single frame of {n} bytes -> 1009", raw, 1009)
    # Fragments each well under the limit whose sum is over it.
    raw = c.open_websocket()
    piece = max(1, n // 4)
    try:
        raw.send(frame(OP_BINARY, os.urandom(piece), fin=False))
        for _ in range(5):
            raw.send(frame(OP_CONT, os.urandom(piece), fin=False))
        raw.send(frame(OP_CONT, b"", fin=True))
    except (BrokenPipeError, ConnectionResetError):
        pass
    c.close_frame(f"fragments totalling {6 * piece} bytes -> 1009", raw, 1009)


def abrupt(c):
    h, p = c.args.host, c.args.port
    raw = c.connect()
    raw.send(upgrade_request(h, p)[:30])
    raw.close()
    c.expect("closed mid-handshake", True, "done")
    raw = c.connect()
    raw.send(upgrade_request(h, p)[:30])
    raw.reset()
    c.expect("reset mid-handshake", True, "done")
    raw = c.open_websocket()
    raw.send(frame(OP_BINARY, b"0123456789", declared_length=100000)[:-3])
    raw.close()
    c.expect("closed mid-frame (FIN)", True, "done")
    raw = c.open_websocket()
    raw.send(frame(OP_TEXT, b"partial", fin=False) + frame(OP_BINARY, b"x" * 50, declared_length=300))
    raw.reset()
    c.expect("reset mid-frame (RST)", True, "done")
    raw = c.open_websocket()
    raw.send(bytes([0x81]))  # one byte of a header
    time.sleep(0.05)
    raw.close()
    c.expect("closed after one header byte", True, "done")


def bad_body_framing(c):
    h, p = c.args.host, c.args.port

    def post(headers, body=b""):
        return (f"POST /api/v1/emit HTTP/1.1\r\nHost: {h}:{p}\r\n{headers}\r\n").encode() + body

    for value in ("abc", "+17", "-1", "", "0x10", "1.5", "99999999999999999999999"):
        c.http_status(f"Content-Length: {value!r} -> 400", post(f"Content-Length: {value}\r\n", b"{}"), 400)
    c.http_status("Content-Length twice, same value -> 400",
                  post("Content-Length: 2\r\nContent-Length: 2\r\n", b"{}"), 400)
    c.http_status("Content-Length twice, different values -> 400",
                  post("Content-Length: 2\r\nContent-Length: 3\r\n", b"{}x"), 400)
    c.http_status("Content-Length list -> 400", post("Content-Length: 2, 2\r\n", b"{}"), 400)
    c.http_status("Transfer-Encoding and Content-Length -> 400",
                  post("Transfer-Encoding: chunked\r\nContent-Length: 7\r\n", b"2\r\n{}\r\n0\r\n\r\n"), 400)
    c.http_status("Transfer-Encoding in HTTP/1.0 -> 400",
                  post("Transfer-Encoding: chunked\r\n").replace(b"HTTP/1.1", b"HTTP/1.0"), 400)
    c.http_status("Transfer-Encoding: gzip -> 400", post("Transfer-Encoding: gzip\r\n"), 400)
    c.http_status("Transfer-Encoding: gzip, chunked -> 501", post("Transfer-Encoding: gzip, chunked\r\n"), 501)


MODES = {f.__name__: f for f in (oversized_header, malformed, wrong_version, unmasked,
                                 invalid_utf8, oversized_message, abrupt, bad_body_framing)}


def main():
    p = parser(__doc__)
    p.add_argument("mode", choices=sorted(MODES))
    p.add_argument("--size", type=int, default=None,
                   help="oversized_header: header bytes (default 16384); "
                        "oversized_message: message bytes (default 4096)")
    p.add_argument("--io-timeout", type=float, default=5.0, help="seconds per socket read")
    args = p.parse_args()
    if args.size is None:
        args.size = 16384 if args.mode == "oversized_header" else 4096
    c = Check(args)
    result = {"client": "bad_input", "mode": args.mode, "ok": False}
    t0 = time.monotonic()
    try:
        MODES[args.mode](c)
    except (OSError, RuntimeError, socket.timeout) as e:
        c.failures.append(f"exception: {type(e).__name__}: {e}")
    result.update(ok=not c.failures, failures=c.failures, observed=c.observed,
                  seconds=round(time.monotonic() - t0, 3))
    finish(result)


if __name__ == "__main__":
    main()
