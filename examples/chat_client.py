#!/usr/bin/env python3
"""A chat client for `chorus --app realtime` (python-socketio, WebSocket transport).

    pip install "python-socketio[client]" websocket-client
    chorus --jwt-secret dev-secret --api-token dev-api
    python examples/chat_client.py --user alice --conversation c1
    (type lines to send them; Ctrl-D to quit)

With --secret the script mints its own HS256 token (development only); in production pass --token.
With `chorus --auth none`, --user is sent as the userId query parameter and no token is needed.
With a connect proxy (examples/backend.py), --session is sent as auth.session for the backend to check.
"""
import argparse
import base64
import hashlib
import hmac
import json
import sys
import time

import socketio


def dev_token(user, secret, conversations, projects):
    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"sub": user, "exp": int(time.time()) + 3600,
                             "conversations": conversations, "projects": projects}).encode())
    sig = hmac.new(secret.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{b64(sig)}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", default="http://127.0.0.1:3001")
    p.add_argument("--user", default="alice")
    p.add_argument("--conversation", default="c1")
    p.add_argument("--project", default=None)
    p.add_argument("--token", default=None, help="a JWT from your auth service")
    p.add_argument("--secret", default="dev-secret", help="HS256 secret to mint a development token")
    p.add_argument("--session", default=None, help="a session id for the connect proxy (auth.session)")
    args = p.parse_args()

    token = args.token or dev_token(args.user, args.secret, [args.conversation], [args.project] if args.project else [])
    sio = socketio.Client(reconnection=True)

    @sio.event
    def connect():
        print(f"connected as {args.user} (sid {sio.get_sid()})")
        print("join:conversation ->", sio.call("join:conversation", {"conversationId": args.conversation}))
        if args.project:
            print("join:project ->", sio.call("join:project", {"projectId": args.project}))

    @sio.event
    def connect_error(data):
        print("connect_error:", data)

    @sio.event
    def disconnect(*reason):
        print("disconnected", *reason)

    # With connection state recovery on (the server's default) every event carries its offset as a
    # last, extra argument, as a Node server with connectionStateRecovery sends it: accept *_.
    @sio.on("message:new")
    def message_new(m, *_):
        print(f"[{m['createdAt']}] {m['senderId']}: {m['content']}")

    for event in ("project:update", "stage:completed", "notification:new", "error"):
        sio.on(event, lambda data, *_, event=event: print(f"{event}: {json.dumps(data)}"))

    auth = {"token": token}
    if args.session:
        auth["session"] = args.session
    sio.connect(f"{args.url}?userId={args.user}", auth=auth, transports=["websocket"])
    try:
        for line in sys.stdin:
            line = line.rstrip("\n")
            if line:
                ack = sio.call("message:send", {"conversationId": args.conversation,
                                                "message": {"content": line, "type": "text"}})
                if not ack.get("ok"):
                    print("refused:", ack.get("error"))
    finally:
        sio.disconnect()


if __name__ == "__main__":
    main()
