#!/usr/bin/env python3
"""Shutdown watcher: opens --clients connections, prints {"event": "connected"} and waits for
the server to close them. Reports each close code received; ok when all equal --expect
(1001 Going Away: the server is shutting down, RFC 6455 §7.4.1).
    shutdown_watch.py --port PORT [--clients N] [--expect 1001] [--timeout SECONDS]
"""
import asyncio
import time

from websockets.asyncio.client import connect

from common import event, finish, parser


async def run(args, result):
    url = f"ws://{args.host}:{args.port}/"
    conns = [await connect(url, ping_interval=None, open_timeout=10, close_timeout=5)
             for _ in range(args.clients)]
    # Proves each connection is live before the shutdown starts.
    for ws in conns:
        await ws.ping()
    event("connected", clients=len(conns))
    t0 = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(ws.wait_closed() for ws in conns)), args.timeout)
    result["seconds_to_close"] = round(time.monotonic() - t0, 3)
    codes = [ws.protocol.close_rcvd.code if ws.protocol.close_rcvd else None for ws in conns]
    result["codes"] = codes
    result["ok"] = all(code == args.expect for code in codes)


def main():
    p = parser(__doc__)
    p.add_argument("--clients", type=int, default=3)
    p.add_argument("--expect", type=int, default=1001)
    args = p.parse_args()
    args.timeout = max(args.timeout, 1.0)
    result = {"client": "shutdown_watch", "ok": False, "expect": args.expect}
    try:
        asyncio.run(run(args, result))
    except Exception as e:  # noqa: BLE001
        result["error"] = f"{type(e).__name__}: {e}"
    finish(result)


if __name__ == "__main__":
    main()
