#!/usr/bin/env python3
"""A scriptable backend for the proxy tests (standard library only).

    proxy_backend.py [--port 0]

Listens on 127.0.0.1 (port 0: a free one), prints "LISTENING <port>" and serves until killed.
HTTP/1.1 with keep-alive, one thread per connection. What it answers is chosen by the request
itself, so each test case is one message or one id:

  POST /message   content "refuse..."  -> 422 {"error": "refused by the backend"}
                  content "fail..."    -> 500
                  content "garbage..." -> 200 with a body that is not JSON
                  content "partial..." -> 200 {"message": {"content", "type", "extra"}} (Chorus fills the rest)
                  content "sleep:S ..." -> waits S seconds, then stores
                  anything else        -> 200 {"message": {...stored, "id": "m-<n>", "stored": true}}
  POST /join      id "forbidden..." -> 403; "broken..." -> 500; "sleep:S..." waits S s; else 200
  POST /connect   auth.session "ok:<user>" -> 200 {"userId": user, "data": {"conversations": "*", "projects": "*"}}
                  auth.session "same"      -> 200 {} (after JWT: the token's subject stays)
                  auth.session "other"     -> 200 {"userId": "someone-else"}
                  auth.session "banned"    -> 403 {"error": "banned"}
                  anything else            -> 401 {"error": "bad session"}
  GET  /_log      -> every request received so far: [{"path", "body", "authorization", "at"}]
"""
import argparse
import itertools
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG = []
LOG_LOCK = threading.Lock()
IDS = itertools.count(1)


def leading_sleep(text):
    """'sleep:0.5 rest' -> 0.5 (seconds), else 0."""
    if isinstance(text, str) and text.startswith("sleep:"):
        try:
            return float(text[6:].split(" ", 1)[0].split("-", 1)[0])
        except ValueError:
            return 0
    return 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Head and body are two writes: without TCP_NODELAY, Nagle holds the body until the client's
    # delayed ACK (40 ms on Linux).
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def answer(self, status, body=None, raw=None):
        data = raw if raw is not None else json.dumps(body if body is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_log":
            with LOG_LOCK:
                return self.answer(200, LOG)
        self.answer(404, {"error": "no such route"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            return self.answer(400, {"error": "body is not JSON"})
        entry = {"path": self.path, "body": body, "authorization": self.headers.get("Authorization"),
                 "contentType": self.headers.get("Content-Type"), "at": time.time()}
        route = {"/message": self.message, "/join": self.join, "/connect": self.connect}.get(self.path)
        if route is None:
            return self.answer(404, {"error": "no such route"})
        route(body, entry)

    def record(self, entry):
        entry["done"] = time.time()
        with LOG_LOCK:
            LOG.append(entry)

    def message(self, body, entry):
        content = body.get("message", {}).get("content", "")
        time.sleep(leading_sleep(content))
        self.record(entry)
        if content.startswith("refuse"):
            return self.answer(422, {"error": "refused by the backend"})
        if content.startswith("fail"):
            return self.answer(500, {"error": "database down"})
        if content.startswith("garbage"):
            return self.answer(200, raw=b"<html>not json</html>")
        if content.startswith("partial"):
            return self.answer(200, {"message": {"content": content, "type": body["message"]["type"], "extra": "x"}})
        stored = {
            "id": f"m-{next(IDS)}",
            "conversationId": body["conversationId"],
            "senderId": body["userId"],
            "content": content,
            "type": body["message"]["type"],
            "createdAt": "2024-01-01T00:00:00.000Z",
            "stored": True,
        }
        self.answer(201, {"message": stored})

    def join(self, body, entry):
        ident = str(body.get("id", ""))
        time.sleep(leading_sleep(ident))
        self.record(entry)
        if ident.startswith("forbidden"):
            return self.answer(403, {"error": "not a member"})
        if ident.startswith("broken"):
            return self.answer(500, {"error": "projects service down"})
        self.answer(200, {})

    def connect(self, body, entry):
        session = (body.get("auth") or {}).get("session", "")
        time.sleep(leading_sleep(session))
        self.record(entry)
        if session.startswith("ok:"):
            return self.answer(200, {"userId": session[3:], "data": {"conversations": "*", "projects": "*", "plan": "pro"}})
        if session == "same":
            return self.answer(200, {})
        if session == "other":
            return self.answer(200, {"userId": "someone-else"})
        if session == "banned":
            return self.answer(403, {"error": "banned"})
        self.answer(401, {"error": "bad session"})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"LISTENING {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
