#!/usr/bin/env python3
"""RSS a chorus server holds for unauthenticated request bodies (issue 11).

Starts `chorus serve --app realtime --auth none --api-token T` on a free loopback port, opens
CONNECTIONS connections that each send an emit-API head with `Content-Length: LENGTH` and no
token, then half the body, and reports the server's RSS (VmRSS) before and while they are held.

    scripts/held-bodies.py [--bin .build/debug/chorus] [--connections 500] [--length 1000000]
"""
import argparse
import os
import re
import socket
import subprocess
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", default=".build/debug/chorus")
    p.add_argument("--connections", type=int, default=500)
    p.add_argument("--length", type=int, default=1_000_000)
    args = p.parse_args()
    server = subprocess.Popen(
        [args.bin, "serve", "--app", "realtime", "--auth", "none", "--api-token", "secret", "--host", "127.0.0.1",
         "--port", "0", "--threads", "1", "--handshake-timeout", "60", "--log-level", "error"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline()
        port = int(line.rsplit(":", 1)[1])
        time.sleep(0.5)
        idle = rss_kib(server.pid)
        head = (f"POST /api/v1/projects/p1/updates HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: application/json\r\nContent-Length: {args.length}\r\n\r\n").encode()
        half = b"x" * (args.length // 2)
        sockets = []
        refused = 0
        for _ in range(args.connections):
            s = socket.create_connection(("127.0.0.1", port))
            s.settimeout(10)
            try:
                s.sendall(head + half)
            except OSError:
                refused += 1
            sockets.append(s)
        time.sleep(1.0)
        held = rss_kib(server.pid)
        answers = {}
        for s in sockets:
            s.settimeout(0.2)
            try:
                status = s.recv(64).split(b" ")[1].decode()
            except (OSError, IndexError):
                status = "none yet"
            answers[status] = answers.get(status, 0) + 1
        print(f"{args.connections} connections x (head with Content-Length {args.length} + {len(half)} body bytes), "
              f"no token: server RSS idle {idle / 1024:.1f} MiB, holding them {held / 1024:.1f} MiB "
              f"(+{(held - idle) / 1024:.1f} MiB); answers {answers}; sends cut short {refused}")
        for s in sockets:
            s.close()
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
