#!/usr/bin/env python3
"""An example product backend for Chorus's proxies (Python standard library, state in memory).

    python examples/backend.py --port 8080 --token proxy-secret
    chorus --auth none --authz claims --api-token dev-api \\
        --proxy-connect http://127.0.0.1:8080/chorus/connect \\
        --proxy-join http://127.0.0.1:8080/chorus/join \\
        --proxy-message http://127.0.0.1:8080/chorus/message \\
        --proxy-token proxy-secret

It implements the three endpoints of the contract (README, "Backend proxies"):

  POST /chorus/connect  {"auth", "query", "headers", "address", "userId"?}
      auth.session (or the cookie "session=...") names a session below -> 200 {"userId", "data"}
      unknown session -> 401 {"error": "bad session"}; a banned user -> 403 {"error": "banned"}
  POST /chorus/join     {"userId", "room", "kind", "id"}
      200 {} when the user is a member of that project / conversation, else 403 {"error": "not a member"}
  POST /chorus/message  {"userId", "conversationId", "message": {"content", "type"}}
      201 {"message": {stored}} (id, createdAt and senderId assigned here)
      403 when the user is not in the conversation; 422 when moderation refuses the content

and, to look at what was stored:

  GET  /messages?conversationId=c1   -> [{stored message}, ...]

Every request must carry `Authorization: Bearer <--token>` when --token is given (401 otherwise):
the endpoints decide who a user is, so only Chorus may call them.
"""
import argparse
import datetime
import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

SESSIONS = {"sess-alice": "alice", "sess-bob": "bob", "sess-mallory": "mallory"}
BANNED = {"mallory"}
PROJECTS = {"p1": {"alice", "bob"}, "p2": {"bob"}}
CONVERSATIONS = {"c1": {"alice", "bob"}, "c2": {"bob"}}
BANNED_WORDS = {"spam"}

MESSAGES = []
LOCK = threading.Lock()
IDS = itertools.count(1)
TOKEN = None


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def session_of(body):
    """auth.session, else a `session=` cookie among the forwarded headers."""
    session = (body.get("auth") or {}).get("session")
    if session:
        return session
    cookie = (body.get("headers") or {}).get("cookie", "")
    for part in cookie.split(";"):
        name, _, value = part.strip().partition("=")
        if name == "session":
            return value
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: Chorus reuses its connections
    # Head and body are two writes: without TCP_NODELAY, Nagle holds the body until the client's
    # delayed ACK (40 ms on Linux).
    disable_nagle_algorithm = True

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        if url.path != "/messages":
            return self.reply(404, {"error": "no such route"})
        conversation = parse_qs(url.query).get("conversationId", [None])[0]
        with LOCK:
            found = [m for m in MESSAGES if conversation is None or str(m["conversationId"]) == conversation]
        self.reply(200, found)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if TOKEN is not None and self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self.reply(401, {"error": "unauthorized"})
        route = {"/chorus/connect": self.connect, "/chorus/join": self.join, "/chorus/message": self.message}
        handler = route.get(urlparse(self.path).path)
        if handler is None:
            return self.reply(404, {"error": "no such route"})
        handler(body)

    def connect(self, body):
        user = SESSIONS.get(session_of(body))
        if user is None:
            return self.reply(401, {"error": "bad session"})
        if user in BANNED:
            return self.reply(403, {"error": "banned"})
        # data.projects / data.conversations: the rooms `--authz claims` lets the user join
        # (without --proxy-join); anything else in data is kept for the application.
        projects = sorted(p for p, members in PROJECTS.items() if user in members)
        conversations = sorted(c for c, members in CONVERSATIONS.items() if user in members)
        self.reply(200, {"userId": user, "data": {"projects": projects, "conversations": conversations}})

    def join(self, body):
        table = PROJECTS if body.get("kind") == "project" else CONVERSATIONS
        if body.get("userId") in table.get(str(body.get("id")), set()):
            return self.reply(200, {})
        self.reply(403, {"error": "not a member"})

    def message(self, body):
        user, conversation = body.get("userId"), body.get("conversationId")
        content = (body.get("message") or {}).get("content", "")
        if user not in CONVERSATIONS.get(str(conversation), set()):
            return self.reply(403, {"error": "not a member"})
        if any(word in content.lower() for word in BANNED_WORDS):
            return self.reply(422, {"error": "refused by moderation"})
        stored = {
            "id": f"msg-{next(IDS)}",
            "conversationId": conversation,
            "senderId": user,
            "content": content.strip(),
            "type": (body.get("message") or {}).get("type", "text"),
            "createdAt": now_iso(),
        }
        with LOCK:
            MESSAGES.append(stored)
        self.reply(201, {"message": stored})

    def log_message(self, fmt, *args):
        print(f"backend: {self.command} {self.path} -> {args[1] if len(args) > 1 else ''}", flush=True)


def main():
    global TOKEN
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--token", help="bearer token Chorus sends (--proxy-token)")
    args = p.parse_args()
    TOKEN = args.token
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(f"backend: listening on {args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
