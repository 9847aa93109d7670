#!/usr/bin/env python3
"""What each node receives and drops in the two --redis-subscription modes (issue 12).

Run by scripts/bench-cluster-rooms.sh, which starts redis-server and the nodes. ROOMS Socket.IO
clients (plain Engine.IO v4 over WebSocket, `websockets`) connect round-robin over the nodes and each
joins its own conversation room, so every room has members on exactly one node. Then MESSAGES
broadcasts are published straight into Redis as socket.io-redis-emitter 5.x does (uid "emitter",
each on its room's channel `<key>#/#conversation:<id>#`), round-robin over the rooms at RATE per
second. Printed per node, from the adapter's counters (GET /api/v1/stats) over the publishing:
broadcasts received, of those dropped for a room without a local member, delivered; its Redis
subscriptions; its CPU seconds; and Redis's CPU per published message (from /proc).
"""
import argparse
import asyncio
import json
import os
import time
import urllib.request

import msgpack
import redis
import websockets.asyncio.client as wsclient

TICKS = os.sysconf("SC_CLK_TCK")


def cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def stats(http, token):
    req = urllib.request.Request(http + "/api/v1/stats", headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)["cluster"]


class Client:
    def __init__(self, index, url):
        self.index = index
        self.url = url
        self.received = 0
        self.joined = asyncio.Event()

    async def run(self, room):
        uri = self.url + f"/socket.io/?EIO=4&transport=websocket&userId=u{self.index}"
        async with wsclient.connect(uri, max_queue=None, ping_interval=None) as ws:
            await ws.recv()  # Engine.IO open
            await ws.send("40")
            await ws.recv()  # 40{"sid":...}
            await ws.send("420" + json.dumps(["join:conversation", {"conversationId": room}]))
            async for message in ws:
                if message == "2":
                    await ws.send("3")
                elif message.startswith("430"):
                    self.joined.set()
                elif message.startswith("42"):
                    self.received += 1


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", action="append", required=True, help="ws://127.0.0.1:PORT of a node (repeat)")
    p.add_argument("--pid", action="append", type=int, required=True, help="PID of each node, same order")
    p.add_argument("--redis", required=True)
    p.add_argument("--redis-pid", type=int, required=True)
    p.add_argument("--key", default="socket.io")
    p.add_argument("--api-token", required=True)
    p.add_argument("--rooms", type=int, default=1000)
    p.add_argument("--messages", type=int, default=20000)
    p.add_argument("--rate", type=float, default=2000)
    p.add_argument("--label", default="")
    a = p.parse_args()

    clients = [Client(i, a.url[i % len(a.url)]) for i in range(a.rooms)]
    tasks = []
    for i, c in enumerate(clients):
        tasks.append(asyncio.create_task(c.run(f"r{i}")))
        if i % 50 == 49:
            await asyncio.sleep(0.05)
    await asyncio.wait_for(asyncio.gather(*(c.joined.wait() for c in clients)), 120)
    await asyncio.sleep(1.5)  # the last rooms' SUBSCRIBEs confirmed (rooms mode)

    https = [u.replace("ws://", "http://") for u in a.url]
    before = [stats(h, a.api_token) for h in https]
    cpu0 = [cpu(pid) for pid in a.pid]
    rcpu0 = cpu(a.redis_pid)
    r = redis.Redis.from_url(a.redis)
    batch = max(1, int(a.rate / 100))
    start = time.monotonic()
    sent = 0
    while sent < a.messages:
        pipe = r.pipeline(transaction=False)
        for _ in range(min(batch, a.messages - sent)):
            room = f"conversation:r{sent % a.rooms}"
            packet = {"type": 2, "data": ["message:new", {"n": sent}], "nsp": "/"}
            opts = {"rooms": [room], "flags": {}, "except": []}
            pipe.publish(f"{a.key}#/#{room}#", msgpack.packb(["emitter", packet, opts]))
            sent += 1
        pipe.execute()
        ahead = start + sent / a.rate - time.monotonic()
        if ahead > 0:
            await asyncio.sleep(ahead)
    expected = sum(a.messages // a.rooms + (1 if i < a.messages % a.rooms else 0) for i in range(a.rooms))
    deadline = time.monotonic() + 30
    while sum(c.received for c in clients) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    elapsed = time.monotonic() - start
    cpu1 = [cpu(pid) for pid in a.pid]
    rcpu1 = cpu(a.redis_pid)
    after = [stats(h, a.api_token) for h in https]
    got = sum(c.received for c in clients)

    print(f"== {a.label}: {a.rooms} rooms over {len(a.url)} nodes, {a.messages} emitter broadcasts at {a.rate:.0f}/s, "
          f"{elapsed:.1f} s; deliveries {got} of {expected}")
    for i, (b, e) in enumerate(zip(before, after)):
        received = e["broadcastsReceived"] - b["broadcastsReceived"]
        dropped = e["broadcastsNotHeld"] - b["broadcastsNotHeld"]
        delivered = e["broadcastsDelivered"] - b["broadcastsDelivered"]
        print(f"  node {i + 1}: received {received}, dropped (room not held) {dropped}, delivered {delivered}, "
              f"subscriptions {e['subscriptions']}, CPU {cpu1[i] - cpu0[i]:.2f} s")
    print(f"  redis CPU {rcpu1 - rcpu0:.2f} s = {(rcpu1 - rcpu0) / a.messages * 1e6:.1f} µs per published message")
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if got < expected:
        raise SystemExit(f"missed {expected - got} deliveries")


if __name__ == "__main__":
    asyncio.run(main())
