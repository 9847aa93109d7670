#!/usr/bin/env python3
"""Echo client: every message must come back unchanged, with the same type (text/binary).

Covers the payload-length encodings (0, 125, 126, 65535, 65536, 1 MiB: 7-bit, 16-bit and
64-bit lengths), multi-byte UTF-8, fragmented sends, ping/pong and the closing handshake.
    echo.py --port PORT [--max-size BYTES] [--compression deflate|none]
"""
import asyncio
import os
import time

from websockets.asyncio.client import connect

from common import finish, parser

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 1 << 20]


def text_of(n):
    return ("chorus-" * (n // 7 + 1))[:n]


async def run(args, result):
    checks = result["checks"]
    failures = result["failures"]

    def check(name, ok, detail=""):
        checks.append(name)
        if not ok:
            failures.append(f"{name}: {detail}" if detail else name)

    url = f"ws://{args.host}:{args.port}/"
    compression = "deflate" if args.compression == "deflate" else None
    async with connect(url, max_size=None, compression=compression, ping_interval=None,
                       open_timeout=5, close_timeout=5) as ws:
        result["extensions"] = ws.response.headers.get("Sec-WebSocket-Extensions")
        sizes = [s for s in SIZES if s <= args.max_size]
        for n in sizes:
            sent = text_of(n)
            await ws.send(sent)
            got = await ws.recv()
            check(f"text {n}", got == sent, f"got {type(got).__name__} of {len(got)}")
            sent = os.urandom(n)
            await ws.send(sent)
            got = await ws.recv()
            check(f"binary {n}", got == sent, f"got {type(got).__name__} of {len(got)}")

        # Multi-byte UTF-8 (2, 3 and 4 byte sequences) must round-trip intact.
        sent = "κόσμε ✓ 𝄞 Grüße " * 100
        await ws.send(sent)
        check("text utf-8", await ws.recv() == sent)

        # Fragmented messages: the server reassembles and echoes one message.
        parts = ["frag-one ", "", "frag-two ", "κόσμε " * 50, "end"]
        await ws.send(parts)
        check("text fragmented", await ws.recv() == "".join(parts))
        parts = [os.urandom(1000), os.urandom(70000), b"", os.urandom(3)]
        await ws.send(parts)
        check("binary fragmented", await ws.recv() == b"".join(parts))

        # Many small messages in flight at once, answered in order.
        burst = [f"burst-{i}" for i in range(200)]
        for m in burst:
            await ws.send(m)
        got = [await ws.recv() for _ in burst]
        check("burst of 200 in order", got == burst)

        # Ping: the pong must carry the same application data.
        t0 = time.monotonic()
        pong = await ws.ping(b"chorus-ping")
        await asyncio.wait_for(pong, 5)
        result["ping_ms"] = round((time.monotonic() - t0) * 1000, 3)
        check("ping/pong", True)

        # A message after the ping still echoes (the ping did not disturb the stream).
        await ws.send("after ping")
        check("echo after ping", await ws.recv() == "after ping")

    # Closing handshake: the server answers our 1000 with 1000.
    rcvd = ws.protocol.close_rcvd
    check("close 1000 answered", rcvd is not None and rcvd.code == 1000,
          f"received {rcvd.code if rcvd else None}")


def main():
    p = parser(__doc__)
    p.add_argument("--max-size", type=int, default=1 << 20, help="largest payload to try")
    p.add_argument("--compression", choices=["none", "deflate"], default="none")
    args = p.parse_args()
    result = {"client": "echo", "ok": False, "checks": [], "failures": []}
    t0 = time.monotonic()
    try:
        asyncio.run(asyncio.wait_for(run(args, result), args.timeout))
    except Exception as e:  # noqa: BLE001 - any failure is reported in the result line
        result["failures"].append(f"exception: {type(e).__name__}: {e}")
    result["seconds"] = round(time.monotonic() - t0, 3)
    result["ok"] = not result["failures"] and bool(result["checks"])
    result["checks"] = len(result["checks"])
    finish(result)


if __name__ == "__main__":
    main()
