#!/usr/bin/env python3
"""Soak: churn, floods, slow consumers and API emits against running servers; descriptor and memory drift.

Starts `chorus serve --app realtime --auth none --api-token T` and `chorus serve --app broadcast` on
free loopback ports, warms up, then for DURATION seconds runs, each bounded in rate:
  - churn: Socket.IO clients (raw Engine.IO over WebSocket) that connect, join a project room, send
    a message, leave and close, a third of them abruptly (RST); plain WebSocket clients doing the same
    against the broadcast server;
  - floods: Socket.IO clients sending many small events, WebSocket clients sending many small frames;
  - slow consumers: clients with a tiny receive buffer that join the busy rooms and never read, each
    replaced after a while (the server's backpressure policy closes them or drops for them);
  - API emits to the rooms (POST /api/v1/projects/ID/updates).
Every SAMPLE seconds it reads the servers' open descriptors (/proc/PID/fd), RSS and, for the realtime
server, sockets (GET /api/v1/stats). After the load stops and SETTLE seconds, it prints one JSON
line: fds and RSS at start (after warm-up), peak and end for each server, and exits 1 if a server
died or its descriptors leaked: with every client gone, end > idle + TOLERANCE, idle being the
sample taken before the load (both have no client, so any difference is a descriptor kept).

    scripts/soak.py --bin .build/release/chorus --duration 1800 [--sample 10] [--settle 10]
"""
import argparse
import asyncio
import base64
import json
import os
import random
import re
import socket
import struct
import subprocess
import sys
import time
import urllib.request

API_TOKEN = "soak-token"


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def api(port, method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json",
                                          "Connection": "close"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def frame(opcode, payload):
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        header = bytes([0x80 | opcode, 0x80 | 126]) + struct.pack(">H", n)
    else:
        header = bytes([0x80 | opcode, 0x80 | 127]) + struct.pack(">Q", n)
    key = (mask * (n // 4 + 1))[:n]
    return header + mask + bytes(a ^ b for a, b in zip(payload, key))


class Client:
    """One WebSocket connection over asyncio streams; `rcvbuf` shrinks its receive buffer before connecting."""

    def __init__(self, port, path, rcvbuf=None):
        self.port, self.path, self.rcvbuf = port, path, rcvbuf
        self.reader = self.writer = None

    async def open(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self.port))
            self.reader, self.writer = await asyncio.open_connection(sock=sock, limit=1 << 22)
        except BaseException:
            sock.close()
            raise
        key = base64.b64encode(os.urandom(16)).decode()
        self.writer.write((f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head[:40])

    async def read(self):
        h = await self.reader.readexactly(2)
        n = h[1] & 0x7F
        if n == 126:
            n = struct.unpack(">H", await self.reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", await self.reader.readexactly(8))[0]
        return h[0] & 0x0F, await self.reader.readexactly(n)

    async def text(self):
        """The next text frame; answers Engine.IO pings on the way."""
        while True:
            op, data = await self.read()
            if op == 8:
                raise EOFError("closed")
            if op == 1:
                s = data.decode()
                if s == "2":
                    self.send("3")
                    continue
                return s

    def send(self, text, opcode=1):
        self.writer.write(frame(opcode, text.encode() if isinstance(text, str) else text))

    async def close(self, abrupt):
        if self.writer is None:
            return
        if abrupt:
            # RST instead of FIN: the server sees ECONNRESET mid-stream.
            sock = self.writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.writer.transport.abort()
        else:
            try:
                self.send(struct.pack(">H", 1000), opcode=8)
                await asyncio.wait_for(self.writer.drain(), 2)
            except (OSError, asyncio.TimeoutError):
                pass
            self.writer.close()


class Load:
    def __init__(self, args, rt_port, bc_port):
        self.args, self.rt, self.bc = args, rt_port, bc_port
        self.stop = False
        self.counts = {k: 0 for k in ("sioConnects", "wsConnects", "abruptCloses", "floodEvents", "floodFrames",
                                      "slowConsumers", "emits", "errors")}
        self.seq = 0

    def sio(self, rcvbuf=None):
        self.seq += 1
        return Client(self.rt, f"/socket.io/?EIO=4&transport=websocket&userId=u{self.seq % 500}", rcvbuf)

    async def sio_open(self, client):
        await client.open()
        await asyncio.wait_for(client.text(), 10)              # 0{...} Engine.IO open
        client.send("40")
        await asyncio.wait_for(client.text(), 10)              # 40{"sid":...}

    async def guarded(self, coro, client):
        try:
            await coro
        except (OSError, EOFError, ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            self.counts["errors"] += 1
        finally:
            if client.writer is not None:
                client.writer.transport.abort()

    async def sio_churn_one(self):
        c = self.sio()

        async def run():
            await self.sio_open(c)
            self.counts["sioConnects"] += 1
            p = f"p{random.randrange(5)}"
            c.send(f'421["join:project",{{"projectId":"{p}"}}]')
            while not (await asyncio.wait_for(c.text(), 10)).startswith("431"):
                pass
            c.send(f'42["join:conversation",{{"conversationId":"c{random.randrange(5)}"}}]')
            await asyncio.sleep(random.uniform(0, 1.5))
            if random.random() < 0.34:
                self.counts["abruptCloses"] += 1
                await c.close(abrupt=True)
                return
            c.send(f'422["leave:project",{{"projectId":"{p}"}}]')
            await asyncio.sleep(0.05)
            await c.close(abrupt=False)
        await self.guarded(run(), c)

    async def ws_churn_one(self):
        c = Client(self.bc, "/")

        async def run():
            await c.open()
            self.counts["wsConnects"] += 1
            c.send("hello")
            await asyncio.sleep(random.uniform(0, 1.5))
            abrupt = random.random() < 0.34
            self.counts["abruptCloses"] += abrupt
            await c.close(abrupt=abrupt)
        await self.guarded(run(), c)

    async def churn(self, factory, per_second):
        pending = set()
        while not self.stop:
            if len(pending) < 200:
                t = asyncio.create_task(factory())
                pending.add(t)
                t.add_done_callback(pending.discard)
            await asyncio.sleep(1 / per_second)
        await asyncio.gather(*pending, return_exceptions=True)

    async def sio_flood(self, per_second):
        while not self.stop:
            c = self.sio()

            async def run():
                await self.sio_open(c)
                c.send('42["join:conversation",{"conversationId":"c0"}]')
                reading = asyncio.create_task(self.drain(c))
                try:
                    end = time.monotonic() + 20
                    while not self.stop and time.monotonic() < end:
                        for _ in range(10):
                            c.send('42["message:send",{"conversationId":"c0","message":{"content":"x","type":"text"}}]')
                            c.send('42["no:such:event",1]')
                        self.counts["floodEvents"] += 20
                        await c.writer.drain()
                        await asyncio.sleep(20 / per_second)
                finally:
                    reading.cancel()
                await c.close(abrupt=random.random() < 0.5)
            await self.guarded(run(), c)

    async def ws_flood(self, per_second):
        while not self.stop:
            c = Client(self.bc, "/")

            async def run():
                await c.open()
                reading = asyncio.create_task(self.drain(c))
                try:
                    end = time.monotonic() + 20
                    while not self.stop and time.monotonic() < end:
                        for _ in range(20):
                            c.send(b"f" * 16, opcode=2)
                        self.counts["floodFrames"] += 20
                        await c.writer.drain()
                        await asyncio.sleep(20 / per_second)
                finally:
                    reading.cancel()
                await c.close(abrupt=random.random() < 0.5)
            await self.guarded(run(), c)

    async def drain(self, c):
        try:
            while True:
                await c.text() if c.path.startswith("/socket.io") else await c.read()
        except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass

    async def slow_consumer(self, realtime):
        """A client that joins the busy rooms (or the broadcast server) and never reads, for 5 to 30 s."""
        while not self.stop:
            c = self.sio(rcvbuf=1024) if realtime else Client(self.bc, "/", rcvbuf=1024)

            async def run():
                if realtime:
                    await self.sio_open(c)
                    for p in range(5):
                        c.send(f'42["join:project",{{"projectId":"p{p}"}}]')
                    c.send('42["join:conversation",{"conversationId":"c0"}]')
                else:
                    await c.open()
                self.counts["slowConsumers"] += 1
                end = time.monotonic() + random.uniform(5, 30)
                while not self.stop and time.monotonic() < end:
                    await asyncio.sleep(0.5)
                await c.close(abrupt=random.random() < 0.5)
            await self.guarded(run(), c)

    async def emits(self, per_second):
        body = {"type": "soak", "pad": "e" * 512}
        while not self.stop:
            try:
                await asyncio.to_thread(api, self.rt, "POST", f"/api/v1/projects/p{random.randrange(5)}/updates", body)
                self.counts["emits"] += 1
            except OSError:
                self.counts["errors"] += 1
            await asyncio.sleep(1 / per_second)

    def tasks(self):
        a = self.args
        r = a.rate
        jobs = [self.churn(self.sio_churn_one, 20 * r), self.churn(self.ws_churn_one, 10 * r),
                self.emits(20 * r)]
        jobs += [self.sio_flood(500 * r) for _ in range(3)] + [self.ws_flood(500 * r) for _ in range(2)]
        jobs += [self.slow_consumer(True) for _ in range(10)] + [self.slow_consumer(False) for _ in range(5)]
        return jobs


def die_with_parent():
    """The servers get SIGTERM when this script dies (PR_SET_PDEATHSIG), so a killed soak leaves nothing."""
    import ctypes
    import signal
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def start_server(binary, app):
    cmd = [binary, "serve", "--app", app, "--host", "127.0.0.1", "--port", "0", "--log-level", "error"]
    if app == "realtime":
        cmd += ["--auth", "none", "--api-token", API_TOKEN]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            preexec_fn=die_with_parent)
    deadline = time.time() + 30
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.match(r"^chorus: listening on .*:(\d+)$", line.strip())
        if m:
            return proc, int(m.group(1))
    proc.kill()
    raise SystemExit(f"chorus --app {app} did not start")


def sample(servers):
    out = {}
    for name, (proc, port) in servers.items():
        if proc.poll() is not None:
            out[name] = None
            continue
        try:
            s = {"fds": fd_count(proc.pid), "rssKiB": rss_kib(proc.pid)}
        except (FileNotFoundError, ProcessLookupError):
            out[name] = None
            continue
        if name == "realtime":
            try:
                s["sockets"] = api(port, "GET", "/api/v1/stats")["sockets"]
            except (OSError, ValueError, KeyError):
                s["sockets"] = None
        out[name] = s
    return out


async def soak(args, servers):
    rt_port, bc_port = servers["realtime"][1], servers["broadcast"][1]
    load = Load(args, rt_port, bc_port)
    tasks = [asyncio.create_task(t) for t in load.tasks()]
    samples = []
    t0 = time.monotonic()
    await asyncio.sleep(args.warmup)
    # The baseline is taken under load after the warm-up: the allocator's arenas, the kernel's and the
    # server's buffers have reached their working size, so the end is compared to a loaded server.
    # The "idle" sample before the load is reported too.
    start = sample(servers)
    samples.append((time.monotonic() - t0, start))
    end_at = t0 + args.warmup + args.duration
    while time.monotonic() < end_at and all(s is not None for s in samples[-1][1].values()):
        await asyncio.sleep(min(args.sample, max(0, end_at - time.monotonic())))
        samples.append((time.monotonic() - t0, await asyncio.to_thread(sample, servers)))
        if args.verbose:
            print(json.dumps({"t": round(samples[-1][0]), **samples[-1][1]}), file=sys.stderr, flush=True)
    load.stop = True
    await asyncio.wait(tasks, timeout=30)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(args.settle)
    end = sample(servers)
    return load.counts, start, samples, end


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", default=".build/release/chorus")
    p.add_argument("--duration", type=float, default=60, help="seconds of load after the warm-up")
    p.add_argument("--warmup", type=float, default=10)
    p.add_argument("--sample", type=float, default=10, help="seconds between samples")
    p.add_argument("--settle", type=float, default=10, help="seconds between the end of the load and the end sample")
    p.add_argument("--rate", type=float, default=1.0, help="multiplies every rate (connects/s, events/s, emits/s)")
    p.add_argument("--fd-tolerance", type=int, default=8)
    p.add_argument("--verbose", action="store_true", help="each sample on stderr")
    args = p.parse_args()
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    servers = {}
    try:
        for app in ("realtime", "broadcast"):
            servers[app] = start_server(args.bin, app)
        time.sleep(0.5)
        idle = sample(servers)
        counts, start, samples, end = asyncio.run(soak(args, servers))
        result = {"duration": args.duration, "warmup": args.warmup, "settle": args.settle, "rate": args.rate,
                  "load": counts, "servers": {}, "ok": True, "failures": []}
        for name in servers:
            series = [s[name] for _, s in samples if s.get(name)]
            r = {"alive": end.get(name) is not None, "idle": idle.get(name), "start": start.get(name),
                 "end": end.get(name), "samples": len(series)}
            if series:
                r["peak"] = {"fds": max(s["fds"] for s in series), "rssKiB": max(s["rssKiB"] for s in series)}
                if name == "realtime":
                    r["peak"]["sockets"] = max((s.get("sockets") or 0) for s in series)
            if not r["alive"]:
                result["failures"].append(f"{name}: server died")
            elif idle.get(name) and end[name]["fds"] > idle[name]["fds"] + args.fd_tolerance:
                result["failures"].append(f"{name}: descriptors {idle[name]['fds']} before the load, {end[name]['fds']} after")
            if r["alive"] and start.get(name):
                r["drift"] = {"fds": end[name]["fds"] - start[name]["fds"],
                              "rssKiB": end[name]["rssKiB"] - start[name]["rssKiB"]}
            result["servers"][name] = r
        result["ok"] = not result["failures"]
        print(json.dumps(result), flush=True)
        return 0 if result["ok"] else 1
    finally:
        for proc, _ in servers.values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    sys.exit(main())
