#!/usr/bin/env python3
"""Broadcast client: N connections each send K messages; every connection (the sender too)
must receive all N*K, each exactly once, with each sender's messages in the order sent and
with their type (text/binary) kept.
    broadcast.py --port PORT [--clients N] [--messages K] [--size BYTES] [--binary]
"""
import asyncio
import time

from websockets.asyncio.client import connect

from common import finish, parser


def payload(sender, seq, size, binary):
    tag = f"{sender}:{seq}:"
    body = (tag + "x" * max(0, size - len(tag))).encode()
    return body if binary and seq % 2 else body.decode()


async def run(args, result):
    n, k = args.clients, args.messages
    url = f"ws://{args.host}:{args.port}/"
    conns = []
    try:
        # Every connection is open (handshake done) before anyone sends, so each is a member
        # when the first broadcast goes out.
        for _ in range(n):
            conns.append(await connect(url, max_size=None, ping_interval=None, open_timeout=10,
                                       close_timeout=5))
        result["connected"] = len(conns)
        expected = n * k
        received = [0] * n
        problems = []

        async def reader(i, ws):
            last = [-1] * n
            seen = 0
            while seen < expected:
                msg = await ws.recv()
                seen += 1
                text = msg.decode() if isinstance(msg, bytes) else msg
                sender, seq, _ = text.split(":", 2)
                sender, seq = int(sender), int(seq)
                want_binary = args.binary and seq % 2 == 1
                if isinstance(msg, bytes) != want_binary:
                    problems.append(f"client {i}: message {sender}:{seq} arrived as the wrong type")
                if seq != last[sender] + 1:
                    problems.append(f"client {i}: from {sender} got {seq} after {last[sender]}")
                last[sender] = seq
                received[i] = seen

        async def writer(i, ws):
            for seq in range(k):
                await ws.send(payload(i, seq, args.size, args.binary))

        t0 = time.monotonic()
        readers = [asyncio.create_task(reader(i, ws)) for i, ws in enumerate(conns)]
        await asyncio.gather(*(writer(i, ws) for i, ws in enumerate(conns)))
        try:
            await asyncio.wait_for(asyncio.gather(*readers), args.timeout)
        except asyncio.TimeoutError:
            problems.append("timed out waiting for deliveries")
            for t in readers:
                t.cancel()
        seconds = time.monotonic() - t0
        result.update(
            expected_deliveries=expected * n,
            deliveries=sum(received),
            min_per_client=min(received),
            seconds=round(seconds, 3),
            deliveries_per_sec=round(sum(received) / seconds) if seconds else None,
            problems=problems[:20],
            problem_count=len(problems),
        )
        result["ok"] = not problems and sum(received) == expected * n
    finally:
        await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)


def main():
    p = parser(__doc__)
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--messages", type=int, default=20)
    p.add_argument("--size", type=int, default=64, help="payload bytes per message")
    p.add_argument("--binary", action="store_true", help="send every odd message as binary")
    args = p.parse_args()
    result = {"client": "broadcast", "ok": False, "clients": args.clients,
              "messages_per_client": args.messages}
    try:
        asyncio.run(asyncio.wait_for(run(args, result), args.timeout + 10))
    except Exception as e:  # noqa: BLE001
        result["ok"] = False
        result["error"] = f"{type(e).__name__}: {e}"
    finish(result)


if __name__ == "__main__":
    main()
