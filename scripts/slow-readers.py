#!/usr/bin/env python3
"""Kernel memory pinned by clients that stop reading (issue 11).

Starts `chorus serve --app broadcast` on a free loopback port, connects CLIENTS WebSocket clients
that never read, then one publisher that sends MESSAGES messages of SIZE bytes (each goes to
everyone) and reads its own copies. Reports the server side's kernel send queues (the sum of
tx_queue in /proc/net/tcp for the server's port), the host's TCP memory (/proc/net/sockstat),
the server's RSS, and how many messages the publisher got back.

    scripts/slow-readers.py [--bin .build/debug/chorus] [--clients 2000] [--messages 24] [--size 16384] [-- SERVER FLAGS]
"""
import argparse
import base64
import os
import re
import resource
import socket
import struct
import subprocess
import time


def handshake(port):
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def frame(payload):
    mask = os.urandom(4)
    n = len(payload)
    header = bytes([0x82]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n)
                              if n < 65536 else bytes([0x80 | 127]) + struct.pack(">Q", n))
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_frame(s):
    def exact(n):
        b = b""
        while len(b) < n:
            chunk = s.recv(n - len(b))
            if not chunk:
                raise EOFError
            b += chunk
        return b
    h = exact(2)
    n = h[1] & 0x7F
    if n == 126:
        n = struct.unpack(">H", exact(2))[0]
    elif n == 127:
        n = struct.unpack(">Q", exact(8))[0]
    return h[0] & 0x0F, exact(n)


def server_send_queues(port):
    total = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1].endswith(f":{port:04X}") and fields[3] == "01":
                total += int(fields[4].split(":")[0], 16)
    return total


def tcp_mem_pages():
    with open("/proc/net/sockstat") as f:
        return int(re.search(r"TCP:.* mem (\d+)", f.read()).group(1))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", default=".build/debug/chorus")
    p.add_argument("--clients", type=int, default=2000)
    p.add_argument("--messages", type=int, default=24)
    p.add_argument("--size", type=int, default=16384)
    p.add_argument("server_flags", nargs="*")
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.clients * 2 + 100), hard))
    server = subprocess.Popen(
        [args.bin, "serve", "--app", "broadcast", "--host", "127.0.0.1", "--port", "0", "--threads", "1",
         "--log-level", "error", "--idle-timeout", "0", "--ping-interval", "0"] + args.server_flags,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    clients = []
    try:
        port = int(server.stdout.readline().rsplit(":", 1)[1])
        mem0 = tcp_mem_pages()
        clients = [handshake(port) for _ in range(args.clients)]
        publisher = handshake(port)
        publisher.settimeout(30)
        payload = os.urandom(args.size)
        got = 0
        t0 = time.monotonic()
        for _ in range(args.messages):
            publisher.sendall(frame(payload))
            op, data = read_frame(publisher)
            got += op == 2 and data == payload
        elapsed = time.monotonic() - t0
        time.sleep(2)
        queues = server_send_queues(port)
        mem = tcp_mem_pages() - mem0
        print(f"{args.clients} non-reading clients, {args.messages} x {args.size} B broadcasts "
              f"({args.messages * args.size / 1024:.0f} KiB per client), flags {args.server_flags or 'default'}: "
              f"server-side kernel send queues {queues / 2**20:.1f} MiB "
              f"({queues / args.clients / 1024:.1f} KiB per client), host TCP memory +{mem * 4 / 1024:.1f} MiB, "
              f"server RSS {rss_kib(server.pid) / 1024:.1f} MiB, publisher got {got}/{args.messages} "
              f"in {elapsed:.2f} s")
    finally:
        for c in clients:
            c.close()
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
