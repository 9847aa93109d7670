#!/usr/bin/env python3
"""What a recovery window costs Redis with `--adapter redis-streams`: the stream holding N chat
messages (each a `message:new` as the realtime app broadcasts it) and the sessions of S clients
whose transport dropped.

    scripts/streams-memory.py [--messages 10000] [--sessions 1000] [--content 120]
                              [--bin .build/release/chorus] [--python .venv-test/bin/python]

Starts its own redis-server and one `chorus serve --app realtime --auth none --adapter
redis-streams` on free loopback ports, emits the messages through the HTTP emit API (keep-alive),
opens S raw Socket.IO clients and drops their TCP connections, then reads Redis's own accounting
(`MEMORY USAGE`, `INFO memory`) and prints one JSON line. Stops both by PID. Needs the `redis`
Python package (the test venv has it).
"""
import argparse
import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import time

import redis

TOKEN = "memory-token"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def raw_session(port, user):
    """A Socket.IO client that connects, gets its session, and loses its TCP connection."""
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /socket.io/?EIO=4&transport=websocket&userId={user} HTTP/1.1\r\nHost: x\r\n"
               f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode())

    def until(marker, data=b""):
        while marker not in data:
            chunk = s.recv(4096)
            if not chunk:
                sys.exit("connection closed before " + marker.decode())
            data += chunk
        return data

    until(b'0{"sid"')
    payload = b"40{}"
    s.sendall(bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
    until(b'"pid"')
    s.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--messages", type=int, default=10000)
    p.add_argument("--sessions", type=int, default=1000)
    p.add_argument("--content", type=int, default=120, help="characters of each message's content")
    p.add_argument("--bin", default=".build/release/chorus")
    args = p.parse_args()

    rport, cport = free_port(), free_port()
    redis_proc = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    chorus = None
    try:
        wait_port(rport)
        r = redis.Redis(port=rport)
        baseline = r.info("memory")["used_memory"]
        chorus = subprocess.Popen([args.bin, "serve", "--host", "127.0.0.1", "--port", str(cport), "--app", "realtime",
                                   "--auth", "none", "--api-token", TOKEN, "--adapter", "redis-streams",
                                   "--redis-url", f"redis://127.0.0.1:{rport}", "--log-level", "error"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(cport)
        time.sleep(0.5)
        conn = http.client.HTTPConnection("127.0.0.1", cport)
        content = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit " * 10)[: args.content]
        started = time.time()
        for i in range(args.messages):
            body = json.dumps({"rooms": ["conversation:c1"], "event": "message:new", "data": {
                "id": f"m-{i:08d}", "conversationId": "c1", "senderId": "user-000123", "content": content,
                "type": "text", "createdAt": "2026-12-03T16:00:00.000Z"}})
            conn.request("POST", "/api/v1/emit", body, {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status != 202:
                sys.exit(f"emit answered {response.status}")
        emit_seconds = time.time() - started
        deadline = time.time() + 10
        while r.xlen("socket.io") < args.messages and time.time() < deadline:
            time.sleep(0.05)
        length = r.xlen("socket.io")
        stream_bytes = r.memory_usage("socket.io", samples=0)
        for i in range(args.sessions):
            raw_session(cport, f"user-{i:06d}")
        deadline = time.time() + 10
        while len(r.keys("sio:session:*")) < args.sessions and time.time() < deadline:
            time.sleep(0.05)
        keys = r.keys("sio:session:*")
        session_bytes = sum(r.memory_usage(k, samples=0) for k in keys)
        used = r.info("memory")["used_memory"] - baseline
        entry = r.xrange("socket.io", count=1)[0][1]
        print(json.dumps({
            "messages": args.messages, "streamLength": length, "streamBytes": stream_bytes,
            "bytesPerEntry": round(stream_bytes / max(length, 1), 1),
            "entryFieldBytes": sum(len(k) + len(v) for k, v in entry.items()),
            "sessions": len(keys), "sessionBytes": session_bytes, "bytesPerSession": round(session_bytes / max(len(keys), 1), 1),
            "usedMemoryDelta": used, "emitSeconds": round(emit_seconds, 2),
        }))
    finally:
        if chorus:
            chorus.terminate()
            chorus.wait(10)
        redis_proc.terminate()
        redis_proc.wait(10)


if __name__ == "__main__":
    main()
