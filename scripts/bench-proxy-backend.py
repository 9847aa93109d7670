#!/usr/bin/env python3
"""A message-proxy backend that answers at once, for scripts/bench-proxy.sh (standard library).

    bench-proxy-backend.py [--port 0]

Prints "LISTENING <port>". asyncio with a minimal HTTP/1.1 keep-alive parser (no thread per
request): each POST is answered 200 {"message": {"content", "type"}} with the content it was sent,
so the benchmark's timestamps in the content survive; Chorus fills id, conversationId, senderId and
createdAt. Not a general HTTP server: Content-Length bodies only.
"""
import argparse
import asyncio
import json

RESPONSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"


class Backend(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = bytearray()

    def data_received(self, data):
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line.startswith(b"content-length:"):
                    length = int(line[15:])
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            try:
                message = json.loads(body).get("message", {})
                out = json.dumps({"message": {"content": message.get("content"), "type": message.get("type")}}).encode()
            except ValueError:
                out = b'{"message":{}}'
            self.transport.write(RESPONSE_HEAD % len(out) + out)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Backend, "127.0.0.1", args.port, backlog=1024)
    print(f"LISTENING {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
