#!/usr/bin/env python3
"""A replay storm: N Socket.IO clients in one room lose their transport at once, the room gets
M events meanwhile, and every client comes back within a few seconds asking to be recovered.

    scripts/recovery-storm.py [--clients 10000] [--missed 10] [--spread 5] [--size 64]
                              [--bin .build/release/chorus] [--threads 2] [--processes 2]
                              [--across-nodes]

Starts `chorus serve --app realtime --auth none` (release build) on a free loopback port, drives
it with raw Engine.IO/Socket.IO clients on asyncio (no client library: a recovering client only
needs `40{"pid","offset"}`), stops it by PID, and prints one JSON line: clients recovered (same
sid, every missed event once and in order, before the CONNECT reply), the time from the first
reconnect to the last recovery, each client's recovery time (p50/p99/max), and the server's CPU
seconds and RSS during the storm. Loopback only; bounded in time; stops by itself.

`--across-nodes`: a redis-server and two nodes with `--adapter redis-streams`; the clients connect
to the first and come back to the second (as through a load balancer), which restores every
session from Redis. CPU is reported for both nodes and Redis.
"""
import argparse
import asyncio
import base64
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request

API_TOKEN = "storm-token"
ROOM = "storm"


def frame(text):
    """A masked client text frame (mask 0: the server unmasks either way)."""
    data = text.encode()
    n = len(data)
    head = bytes([0x81])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + b"\0\0\0\0" + data


class Client:
    def __init__(self, index, port, source):
        self.index, self.port, self.source = index, port, source
        self.sid = self.pid = self.offset = None
        self.reader = self.writer = None
        self.recovered = False
        self.duration = None
        self.error = None

    async def open(self, path_extra=""):
        self.reader, self.writer = await asyncio.open_connection(
            "127.0.0.1", self.port, local_addr=(self.source, 0))
        key = base64.b64encode(os.urandom(16)).decode()
        self.writer.write((f"GET /socket.io/?EIO=4&transport=websocket&userId=s{self.index} HTTP/1.1\r\n"
                           f"Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"upgrade refused: {head[:40]!r}")
        opened = await self.text()
        if not opened.startswith("0{"):
            raise RuntimeError(f"no Engine.IO open: {opened[:40]}")

    async def text(self):
        """The next text message; answers pings on the way."""
        while True:
            b0, b1 = await self.reader.readexactly(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            data = (await self.reader.readexactly(n)).decode()
            if b0 & 0x0F == 0x8:
                raise RuntimeError("closed by the server")
            if data == "2":
                self.writer.write(frame("3"))
                continue
            return data

    def send(self, text):
        self.writer.write(frame(text))

    async def connect(self):
        await self.open()
        self.send("40")
        reply = json.loads((await self.text())[2:])
        self.sid, self.pid = reply["sid"], reply.get("pid")
        if not self.pid:
            raise RuntimeError("no pid: is recovery on?")
        self.send(f'420["join:conversation",{{"conversationId":"{ROOM}"}}]')
        ack = await self.text()
        if not ack.startswith("430"):
            raise RuntimeError(f"join: {ack[:80]}")

    async def warm(self):
        text = await self.text()
        if not text.startswith("42"):
            raise RuntimeError(f"expected the first event, got {text[:120]!r}")
        event = json.loads(text[2:])
        self.offset = event[-1]

    def drop(self):
        # Abrupt, as a lost network: the socket goes without a close frame.
        self.writer.transport.abort()

    async def recover(self, missed, delay, port):
        await asyncio.sleep(delay)
        self.port = port
        started = time.monotonic()
        try:
            await self.open()
            self.send("40" + json.dumps({"pid": self.pid, "offset": self.offset}))
            seen = []
            while True:
                t = await self.text()
                if t.startswith("40"):
                    reply = json.loads(t[2:])
                    break
                seen.append(json.loads(t[2:]))
            n = [e[1]["n"] for e in seen]
            self.recovered = reply["sid"] == self.sid and n == list(range(1, missed + 1))
            if not self.recovered:
                self.error = f"sid {reply['sid'] == self.sid}, events {n[:5]}…({len(n)})"
            self.duration = time.monotonic() - started
        except Exception as e:  # noqa: BLE001 - reported per client
            self.error = repr(e)
        finally:
            if self.writer:
                self.writer.transport.abort()


def api(port, method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json",
                                          "Connection": "close"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def gather_bounded(coros, limit=500):
    sem = asyncio.Semaphore(limit)

    async def one(c):
        async with sem:
            return await c
    return await asyncio.gather(*(one(c) for c in coros), return_exceptions=True)


def worker(args, port, back_port, indices, barrier, results):
    """One client process: its share of the clients, in step with the others through `barrier`."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    async def all_of(coros, timeout):
        return await asyncio.wait_for(asyncio.gather(*coros), timeout)
    clients = [Client(i, port, f"127.0.0.{2 + i // 8000}") for i in indices]
    done = loop.run_until_complete(gather_bounded([c.connect() for c in clients]))
    failed = [r for r in done if isinstance(r, Exception)]
    warm = [loop.create_task(c.warm()) for c in clients]
    barrier.wait()  # 1: all joined; the driver emits the first event
    loop.run_until_complete(all_of(warm, 60))
    barrier.wait()  # 2: all have an offset
    for c in clients:
        c.drop()
    barrier.wait()  # 3: dropped; the driver waits for the sessions, emits the missed events
    barrier.wait()  # 4: go
    spread = [args.spread * i / args.clients for i in indices]
    loop.run_until_complete(all_of([c.recover(args.missed, d, back_port) for c, d in zip(clients, spread)], 120))
    results.put([(c.recovered, c.duration, c.error or (repr(failed[0]) if failed else None)) for c in clients])


def storm(args, port, server_pid, back_port=None, back_pid=None, redis_pid=None):
    import multiprocessing as mp
    back_port, back_pid = back_port or port, back_pid or server_pid
    barrier = mp.Barrier(args.processes + 1)
    results = mp.Queue()
    shares = [list(range(k, args.clients, args.processes)) for k in range(args.processes)]
    procs = [mp.Process(target=worker, args=(args, port, back_port, share, barrier, results), daemon=True) for share in shares]
    for proc in procs:
        proc.start()
    emit = lambda n: api(port, "POST", "/api/v1/emit", {"rooms": [f"conversation:{ROOM}"], "event": "tick",  # noqa: E731
                                                      "data": {"n": n, "pad": "x" * args.size}})
    barrier.wait(120)  # 1
    persisted0 = api(port, "GET", "/api/v1/stats")["recovery"]["persisted"]
    emit(0)
    barrier.wait(120)  # 2
    barrier.wait(120)  # 3
    deadline = time.monotonic() + 60
    while api(port, "GET", "/api/v1/stats")["recovery"]["persisted"] < persisted0 + args.clients:
        if time.monotonic() > deadline:
            raise SystemExit("the server did not keep every session within 60 s")
        time.sleep(0.05)
    for n in range(1, args.missed + 1):
        emit(n)
    others = [p for p in (server_pid, redis_pid) if p and p != back_pid]
    cpu0, t0, rss0 = cpu_seconds(back_pid), time.monotonic(), rss_mib(back_pid)
    others0 = [cpu_seconds(p) for p in others]
    barrier.wait(120)  # 4
    outcome = [row for _ in procs for row in results.get(timeout=300)]
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(back_pid) - cpu0
    others_cpu = [round(cpu_seconds(p) - c, 2) for p, c in zip(others, others0)]
    for proc in procs:
        proc.join(10)
    durations = sorted(d for _, d, _ in outcome if d is not None)
    errors = [e for _, _, e in outcome if e]
    stats = api(back_port, "GET", "/api/v1/stats")["recovery"]

    def pct(p):
        return round(durations[min(len(durations) - 1, int(p * len(durations)))] * 1000, 1) if durations else None
    return {
        "clients": args.clients, "missed": args.missed, "spread_s": args.spread, "size": args.size,
        "client_processes": args.processes,
        "recovered": sum(1 for r, _, _ in outcome if r), "errors": len(errors), "first_error": errors[0] if errors else None,
        "storm_s": round(elapsed, 2), "recovery_ms_p50": pct(0.5), "recovery_ms_p99": pct(0.99), "recovery_ms_max": pct(1.0),
        "server_cpu_s": round(cpu, 2), "server_rss_mib_before": round(rss0, 1), "server_rss_mib_after": round(rss_mib(back_pid), 1),
        # --across-nodes: the node the clients left, then redis-server.
        "other_cpu_s": others_cpu,
        "server_counters": stats, "load_average": os.getloadavg()[0],
        **({"durations_ms": [round(d * 1000, 1) for d in durations]} if os.environ.get("STORM_DURATIONS") else {}),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=10000)
    p.add_argument("--missed", type=int, default=10)
    p.add_argument("--spread", type=float, default=5.0, help="seconds over which the clients reconnect")
    p.add_argument("--size", type=int, default=64, help="bytes of padding per event")
    p.add_argument("--bin", default=".build/release/chorus")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--processes", type=int, default=2, help="client processes (asyncio each)")
    p.add_argument("--across-nodes", action="store_true", help="two --adapter redis-streams nodes: drop on one, recover on the other")
    args = p.parse_args()
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    children, extra, redis_server = [], [], None
    try:
        if args.across_nodes:
            rs = socket.socket()
            rs.bind(("127.0.0.1", 0))
            redis_port = rs.getsockname()[1]
            rs.close()
            redis_server = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            children.append(redis_server)
            time.sleep(0.5)
            extra = ["--adapter", "redis-streams", "--redis-url", f"redis://127.0.0.1:{redis_port}"]
        nodes = []
        for _ in range(2 if args.across_nodes else 1):
            server = subprocess.Popen([args.bin, "serve", "--app", "realtime", "--auth", "none", "--host", "127.0.0.1",
                                       "--port", "0", "--threads", str(args.threads), "--api-token", API_TOKEN,
                                       "--max-connections-per-user", "0", "--log-level", "warning"] + extra,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            children.append(server)
            port = None
            deadline = time.time() + 30
            while port is None and time.time() < deadline:
                line = server.stdout.readline()
                m = re.match(r"^chorus: listening on .*:(\d+)$", line.strip())
                port = int(m.group(1)) if m else None
            if port is None:
                raise SystemExit("chorus did not start")
            nodes.append((port, server.pid))
        time.sleep(1 if args.across_nodes else 0)
        (port, pid), (back_port, back_pid) = nodes[0], nodes[-1]
        result = storm(args, port, pid, back_port, back_pid, redis_server.pid if redis_server else None)
        result["across_nodes"] = args.across_nodes
        print(json.dumps(result))
    finally:
        for child in reversed(children):
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    sys.exit(main())
