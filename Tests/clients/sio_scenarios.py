#!/usr/bin/env python3
"""End-to-end scenarios against a running `chorus --app realtime` (or the test's in-process
Socket.IO server), with the real python-socketio client.

    sio_scenarios.py SCENARIO --url http://127.0.0.1:PORT [--secret S] [--api-token T]

Prints "OK <scenario>" and exits 0 on success; prints the failure and exits 1 otherwise.
"""
import argparse
import base64
import hashlib
import hmac
import json
import sys
import threading
import time
import urllib.error
import urllib.request

try:
    import socketio
    import websocket  # websocket-client
except ImportError as e:  # the Swift test turns this into a clear failure
    print(f"MISSING python-socketio/websocket-client: {e}", file=sys.stderr)
    sys.exit(3)

ARGS = None
TIMEOUT = 5


def fail(msg):
    print(f"FAIL {ARGS.scenario}: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token(sub, projects=None, conversations=None, exp_in=3600, secret=None, **extra):
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"sub": sub, "iat": int(time.time()), "exp": int(time.time()) + exp_in}
    if projects is not None:
        claims["projects"] = projects
    if conversations is not None:
        claims["conversations"] = conversations
    claims.update(extra)
    signing = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    sig = hmac.new((secret or ARGS.secret).encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64(sig)


class Client:
    """A python-socketio client recording every event it receives."""

    def __init__(self, tok=None, query=None, headers=None, auth=None, namespaces=None):
        self.sio = socketio.Client(reconnection=False)
        self.events = []
        self.cond = threading.Condition()
        self.connect_error = None
        self.disconnected = threading.Event()

        def any_event(event, *args):
            with self.cond:
                self.events.append((event, args))
                self.cond.notify_all()

        def connect_error(data=None):
            self.connect_error = data

        for ns in (namespaces or ["/"]):
            self.sio.on("*", any_event, namespace=ns)
            self.sio.on("connect_error", connect_error, namespace=ns)


        @self.sio.event
        def disconnect(*args):
            self.disconnected.set()

        url = ARGS.url
        if query:
            url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
        if auth is None and tok is not None:
            auth = {"token": tok}
        self.url, self.auth, self.headers, self.namespaces = url, auth, headers or {}, namespaces

    def connect(self, expect_ok=True):
        try:
            self.sio.connect(self.url, auth=self.auth, headers=self.headers, transports=["websocket"],
                             namespaces=self.namespaces, wait_timeout=TIMEOUT)
        except socketio.exceptions.ConnectionError as e:
            if expect_ok:
                fail(f"connect failed: {e} ({self.connect_error})")
            return False
        if not expect_ok:
            fail("connect unexpectedly succeeded")
        return True

    def call(self, event, data, namespace=None):
        return self.sio.call(event, data, timeout=TIMEOUT, namespace=namespace)

    def wait_event(self, name, pred=lambda args: True, timeout=TIMEOUT):
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for i, (ev, args) in enumerate(self.events):
                    if ev == name and pred(args):
                        del self.events[i]
                        return args
                left = deadline - time.time()
                if left <= 0:
                    fail(f"no {name} event within {timeout}s (got {[e for e, _ in self.events]})")
                self.cond.wait(left)

    def assert_no_event(self, name, within=0.5):
        time.sleep(within)
        with self.cond:
            check(all(ev != name for ev, _ in self.events), f"unexpected {name}: {self.events}")

    def close(self):
        try:
            self.sio.disconnect()
        except Exception:
            pass


def api(method, path, body=None, tok="__default__", raw=None):
    url = ARGS.url + path
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    tok = ARGS.api_token if tok == "__default__" else tok
    if tok:
        req.add_header("Authorization", f"Bearer {tok}")
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, text.decode(errors="replace")


def raw_ws(path="/socket.io/?EIO=4&transport=websocket"):
    ws = websocket.create_connection(ARGS.url.replace("http", "ws", 1) + path, timeout=TIMEOUT)
    opening = ws.recv()
    check(opening.startswith("0{"), f"bad open packet {opening!r}")
    return ws, json.loads(opening[1:])


# ---------------------------------------------------------------- scenarios

def s_auth():
    ok = Client(token("u1"))
    ok.connect()
    check(ok.sio.get_sid() is not None, "no sid")
    ok.close()
    q = Client(query={"token": token("u2")}, auth={})
    q.connect()
    q.close()
    h = Client(headers={"Authorization": "Bearer " + token("u3")}, auth={})
    h.connect()
    h.close()
    for label, bad in [("wrong secret", token("u4", secret="nope")), ("expired", token("u5", exp_in=-10)),
                       ("garbage", "abc.def.ghi"), ("missing", None)]:
        c = Client(bad, auth={} if bad is None else None)
        check(not c.connect(expect_ok=False), label)
        msg = c.connect_error.get("message") if isinstance(c.connect_error, dict) else c.connect_error
        check(msg == "unauthorized", f"{label}: connect_error {c.connect_error!r}")
        check(not isinstance(c.connect_error, dict) or set(c.connect_error) == {"message"},
              f"{label}: extra fields {c.connect_error!r}")
        c.close()
    # alg none is refused
    none_tok = b64(b'{"alg":"none"}') + "." + b64(json.dumps({"sub": "x", "exp": time.time() + 60}).encode()) + "."
    c = Client(none_tok)
    check(not c.connect(expect_ok=False), "alg none accepted")
    c.close()


def s_rooms():
    a = Client(token("alice", projects=["p1"], conversations=["*"]))
    b = Client(token("bob", projects=["p2"]))
    a.connect(); b.connect()
    r = a.call("join:project", {"projectId": "p1"})
    check(r.get("ok") is True and r.get("projectId") == "p1", f"join ack {r}")
    r = b.call("join:project", {"projectId": "p1"})
    check(r == {"ok": False, "error": "forbidden"}, f"forbidden join ack {r}")
    check(b.call("join:project", {"projectId": "p2"})["ok"], "bob join p2")
    r = a.call("join:project", {})
    check(r["ok"] is False and "projectId" in r["error"], f"missing projectId {r}")
    r = a.call("join:project", {"projectId": ["x"]})
    check(r["ok"] is False, f"wrong type {r}")
    st, body = api("POST", "/api/v1/projects/p1/updates", {"status": "active"})
    check(st == 202 and body == {"recipients": 1}, f"update {st} {body}")
    args = a.wait_event("project:update")
    check(args[0] == {"status": "active", "projectId": "p1"}, f"payload {args}")
    b.assert_no_event("project:update")
    st, body = api("POST", "/api/v1/projects/p1/stages/completed", {"stageId": "s9"})
    check(st == 202 and body["recipients"] == 1, f"stage {st} {body}")
    check(a.wait_event("stage:completed")[0]["stageId"] == "s9", "stage payload")
    b.assert_no_event("stage:completed", 0.2)
    # leave, then nothing more arrives
    check(a.call("leave:project", {"projectId": "p1"})["ok"], "leave ack")
    st, body = api("POST", "/api/v1/projects/p1/updates", {"n": 2})
    check(st == 202 and body == {"recipients": 0}, f"after leave {body}")
    a.assert_no_event("project:update")
    # without ack, a refused join answers with an error event
    b.sio.emit("join:project", {"projectId": "p1"})
    err = b.wait_event("error")[0]
    check(err == {"event": "join:project", "error": "forbidden"}, f"error event {err}")
    # unknown events are ignored (connection stays usable) and counted
    b.sio.emit("no:such:event", {"x": 1})
    check(b.call("join:project", {"projectId": "p2"})["ok"], "still works after unknown event")
    st, stats = api("GET", "/api/v1/stats")
    check(st == 200 and stats["unknownEvents"] >= 1, f"stats {stats}")
    a.close(); b.close()


def s_chat():
    a = Client(token("alice", conversations=["c1"]))
    b = Client(token("bob", conversations=["c1", "c2"]))
    c = Client(token("carol", conversations=["c2"]))
    for x in (a, b, c):
        x.connect()
    check(a.call("join:conversation", {"conversationId": "c1"})["ok"], "a join")
    check(b.call("join:conversation", {"conversationId": "c1"})["ok"], "b join")
    check(c.call("join:conversation", {"conversationId": "c2"})["ok"], "c join")
    r = c.call("join:conversation", {"conversationId": "c1"})
    check(r == {"ok": False, "error": "forbidden"}, f"c forbidden {r}")
    r = a.call("message:send", {"conversationId": "c1", "message": {"content": "héllo 👋", "type": "text"}})
    check(r["ok"] is True, f"send ack {r}")
    m = r["message"]
    check(set(m) == {"id", "conversationId", "senderId", "content", "type", "createdAt"}, f"fields {m}")
    check(m["senderId"] == "alice" and m["conversationId"] == "c1" and m["content"] == "héllo 👋", f"message {m}")
    check(len(m["createdAt"]) == 24 and m["createdAt"].endswith("Z") and m["createdAt"][19] == ".", f"createdAt {m}")
    for x in (a, b):  # every member, sender included
        got = x.wait_event("message:new")[0]
        check(got == m, f"message:new {got} != {m}")
    c.assert_no_event("message:new")
    # refused: not joined, validation
    r = b.call("message:send", {"conversationId": "c2", "message": {"content": "x", "type": "text"}})
    check(r["ok"] is False and "member" in r["error"], f"not joined {r}")
    for bad, word in [({"conversationId": "c1"}, "message"), ({"conversationId": "c1", "message": {"type": "text"}}, "content"),
                      ({"conversationId": "c1", "message": {"content": 5}}, "string"),
                      ({"conversationId": "c1", "message": {"content": "x" * (ARGS.max_content + 1)}}, "longer"),
                      ({"message": {"content": "x"}}, "conversationId"), ("just a string", "object")]:
        r = a.call("message:send", bad)
        check(r["ok"] is False and word in r["error"], f"{bad!r:.60}: {r}")
    check(a.call("message:send", {"conversationId": "c1", "message": {"content": "y" * ARGS.max_content}})["ok"], "max length")
    # leave conversation: no more messages, sending refused
    check(b.call("leave:conversation", {"conversationId": "c1"})["ok"], "leave")
    b.events.clear()
    check(a.call("message:send", {"conversationId": "c1", "message": {"content": "after"}})["ok"], "send after")
    b.assert_no_event("message:new")
    for x in (a, b, c):
        x.close()


def s_notifications():
    a1, a2, b = Client(token("alice")), Client(token("alice")), Client(token("bob"))
    for x in (a1, a2, b):
        x.connect()
    st, body = api("POST", "/api/v1/users/alice/notifications", {"title": "hi"})
    check(st == 202 and body == {"recipients": 2}, f"notify {st} {body}")
    for x in (a1, a2):
        check(x.wait_event("notification:new")[0] == {"title": "hi"}, "payload")
    b.assert_no_event("notification:new")
    for x in (a1, a2, b):
        x.close()


def s_offsets():
    """python-socketio implements no recovery, and needs none: with recovery on (--offsets 1) each
    replayable event has the offset as one more, last argument (a string, as from a Node server
    with connectionStateRecovery); with --recovery-window 0 (--offsets 0) it has none. Joins,
    acks and chat work either way."""
    a = Client(token("alice", conversations=["*"], projects=["*"]))
    a.connect()
    check(a.call("join:project", {"projectId": "1"})["ok"], "join")
    check(a.call("join:conversation", {"conversationId": "c1"})["ok"], "join")
    st, _ = api("POST", "/api/v1/projects/1/updates", {"n": 1})
    check(st == 202, f"update {st}")
    reply = a.call("message:send", {"conversationId": "c1", "message": {"content": "hi", "type": "text"}})
    check(reply["ok"], f"send {reply}")
    offsets = []
    for name in ("project:update", "message:new"):
        args = a.wait_event(name)
        if ARGS.offsets:
            check(len(args) == 2 and isinstance(args[1], str) and args[1].isdigit(), f"{name}: {args}")
            offsets.append(int(args[1]))
        else:
            check(len(args) == 1, f"{name}: {args}")
    check(offsets == sorted(offsets) and len(set(offsets)) == len(offsets), f"offsets {offsets}")
    a.close()


def s_api():
    st, _ = api("POST", "/api/v1/emit", {"event": "x", "rooms": ["r"]}, tok=None)
    check(st == 401, f"no token {st}")
    st, _ = api("POST", "/api/v1/emit", {"event": "x", "rooms": ["r"]}, tok="wrong")
    check(st == 401, f"wrong token {st}")
    for body, raw in [(None, b"{not json"), ({"rooms": ["r"]}, None), ({"event": 5}, None),
                      ({"event": "x", "rooms": "r"}, None), ({"event": "x", "rooms": [1]}, None),
                      ({"event": "connect"}, None), ({"event": "x", "namespace": "/nope"}, None),
                      ({"event": "x", "except": "r"}, None)]:
        st, resp = api("POST", "/api/v1/emit", body, raw=raw)
        check(st == 400 and isinstance(resp, dict) and resp.get("error"), f"{body or raw}: {st} {resp}")
    st, _ = api("POST", "/api/v1/projects/p1/updates", raw=b"[1,2]")
    check(st == 400, f"array body {st}")
    st, _ = api("POST", "/api/v1/nope", {})
    check(st == 404, f"unknown route {st}")
    st, _ = api("GET", "/api/v1/emit")
    check(st == 405, f"GET emit {st}")
    # generic emit with rooms + except
    a = Client(token("alice", projects=["*"]))
    b = Client(token("bob", projects=["*"]))
    a.connect(); b.connect()
    a.call("join:project", {"projectId": "1"}); b.call("join:project", {"projectId": "1"})
    st, body = api("POST", "/api/v1/emit", {"rooms": ["project:1"], "except": ["user:bob"], "event": "custom", "data": {"k": [1, 2]}})
    check(st == 202 and body == {"recipients": 1}, f"emit {st} {body}")
    check(a.wait_event("custom")[0] == {"k": [1, 2]}, "custom payload")
    b.assert_no_event("custom")
    st, body = api("POST", "/api/v1/emit", {"event": "everyone", "data": 1})
    check(st == 202 and body == {"recipients": 2}, f"all {body}")
    a.wait_event("everyone"); b.wait_event("everyone")
    a.close(); b.close()
    # Engine.IO errors, as Socket.IO answers them
    st, body = api("GET", "/socket.io/?EIO=4&transport=polling", tok=None)
    check(st == 400 and body == {"code": 0, "message": "Transport unknown"}, f"polling {st} {body}")
    st, body = api("GET", "/socket.io/?EIO=4&transport=websocket", tok=None)
    check(st == 400 and body == {"code": 3, "message": "Bad request"}, f"ws without upgrade {st} {body}")
    try:
        websocket.create_connection(ARGS.url.replace("http", "ws", 1) + "/socket.io/?EIO=3&transport=websocket", timeout=TIMEOUT)
        fail("EIO=3 accepted")
    except websocket.WebSocketBadStatusException as e:
        check(e.status_code == 400 and b'"code":5' in (e.resp_body or b""), f"EIO=3: {e.status_code} {e.resp_body}")


def s_many():
    n = ARGS.count
    clients = [Client(token(f"user{i}", projects=["big"])) for i in range(n)]
    for c in clients:
        c.connect()
    for c in clients:
        check(c.call("join:project", {"projectId": "big"})["ok"], "join")
    st, body = api("POST", "/api/v1/projects/big/updates", {"seq": 1})
    check(st == 202 and body == {"recipients": n}, f"recipients {body}")
    for c in clients:
        check(c.wait_event("project:update")[0]["seq"] == 1, "payload")
    for c in clients:
        c.close()


def s_heartbeat():
    # A python-socketio client answers pings: it outlives several ping timeouts.
    good = Client(token("alice"))
    good.connect()
    ws, hs = raw_ws()
    check(hs["pingInterval"] == ARGS.ping_interval and hs["pingTimeout"] == ARGS.ping_timeout, f"handshake {hs}")
    check(hs["upgrades"] == [] and hs["maxPayload"] == ARGS.max_payload, f"handshake {hs}")
    ws.send("40" + json.dumps({"token": token("mute")}))
    check(ws.recv().startswith('40{"sid":'), "connect")
    ping = ws.recv()
    check(ping == "2", f"expected ping, got {ping!r}")
    # Do not answer: the server must close us after pingTimeout.
    t0 = time.time()
    ws.settimeout((ARGS.ping_interval + ARGS.ping_timeout) / 1000 + 3)
    try:
        while True:
            op, data = ws.recv_data(control_frame=True)
            if op == websocket.ABNF.OPCODE_CLOSE:
                break
    except websocket.WebSocketConnectionClosedException:
        pass
    waited = time.time() - t0
    check(waited >= ARGS.ping_timeout / 1000 * 0.8, f"closed too early ({waited:.2f}s)")
    time.sleep(max(0, (ARGS.ping_interval + ARGS.ping_timeout) * 2 / 1000 - waited))
    check(good.sio.connected and not good.disconnected.is_set(), "good client was disconnected")
    check(good.call("join:project", {"projectId": "x"}) is not None, "good client works")
    good.close()
    st, stats = api("GET", "/api/v1/stats")
    check(stats["counters"].get("disconnect:ping timeout", 0) >= 1, f"stats {stats}")


def s_malformed():
    good = Client(token("alice", conversations=["c"]))
    good.connect()
    check(good.call("join:conversation", {"conversationId": "c"})["ok"], "join")
    for bad in ["42garbage", '4["no", "namespace"', "9", "45-[]", "41234567890123456789[\"x\"]"]:
        ws, _ = raw_ws()
        ws.send("40" + json.dumps({"token": token("evil")}))
        check(ws.recv().startswith("40"), "connect")
        ws.send(bad)
        code, reason = close_of(ws)
        check(code == 1008 and reason == "parse error", f"{bad!r}: close {code} {reason!r}")
    # oversized: over maxPayload -> 1009
    ws, _ = raw_ws()
    ws.send("40" + json.dumps({"token": token("evil")}))
    ws.recv()
    ws.send('42["message:send",{"conversationId":"c","message":{"content":"' + "x" * (ARGS.max_payload + 10) + '"}}]')
    code, reason = close_of(ws)
    check(code == 1009, f"oversized: close {code} {reason!r}")
    r = good.call("message:send", {"conversationId": "c", "message": {"content": "still here"}})
    check(r["ok"], f"good client after malformed: {r}")
    check(good.sio.connected, "good disconnected")
    good.close()
    st, stats = api("GET", "/api/v1/stats")
    check(stats["counters"].get("disconnect:parse error", 0) >= 5, f"stats {stats}")
    check(stats["counters"].get("disconnect:transport error", 0) >= 1, f"stats {stats}")


def close_of(ws):
    try:
        while True:
            op, data = ws.recv_data(control_frame=True)
            if op == websocket.ABNF.OPCODE_CLOSE:
                code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                return code, data[2:].decode(errors="replace")
    except websocket.WebSocketConnectionClosedException:
        return None, "closed without close frame"


def s_attachments():
    """`--sio-max-attachments N`: a binary event announcing N attachments is taken (the connection
    lives on and answers), one announcing N + 1 closes the connection (parse error)."""
    n = ARGS.max_attachments

    def binary_event(count):
        ws, _ = raw_ws()
        ws.send("40" + json.dumps({"token": token("alice")}))
        check(ws.recv().startswith("40"), "connect")
        placeholders = ",".join(json.dumps({"_placeholder": True, "num": i}) for i in range(count))
        ws.send(f'45{count}-["upload",{placeholders}]')
        for i in range(count):
            ws.send_binary(bytes([i]))
        return ws

    ws = binary_event(n)
    ws.send('421["join:conversation",{"conversationId":"c1"}]')
    while True:
        f = ws.recv()
        if f.startswith("431"):
            break
    ws.close()
    ws = binary_event(n + 1)
    code, reason = close_of(ws)
    check(code is not None or reason == "closed without close frame", f"not closed: {code} {reason}")


def s_generic():
    """Against the test's in-process server: namespaces, binary, acks both ways, DISCONNECT."""
    c = Client(auth={"name": "py"}, namespaces=["/", "/admin"])

    # the server emits "ask" with an ack on connect; we answer with the doubled number
    @c.sio.on("ask")
    def ask(n):
        return n * 2

    c.connect()
    res = c.wait_event("ask-result")[0]
    check(res == {"ok": True, "value": 42}, f"server ack {res}")
    r = c.call("echo", {"a": 1, "bin": b"\x00\x01\xff"})
    check(r == {"a": 1, "bin": b"\x00\x01\xff"}, f"binary echo {r!r}")
    c.sio.emit("binary-in", [b"\xde\xad", "x", {"deep": b"\xbe\xef"}])
    args = c.wait_event("binary-out")
    check(args[0] == [b"\xde\xad", "x", {"deep": b"\xbe\xef"}], f"binary out {args!r}")
    r = c.call("whoami", None, namespace="/admin")
    check(r == {"namespace": "/admin", "name": "py"}, f"admin {r}")
    # rooms do not leak across namespaces: "lobby" in "/" vs "/admin"
    check(c.call("join", "lobby") is True, "join")
    c.call("shout", "lobby", namespace="/admin")
    c.assert_no_event("shouted")
    c.call("shout", "lobby")
    c.wait_event("shouted")
    # server-side namespace disconnect: /admin goes, / stays
    c.sio.emit("kick-me", namespace="/admin")
    time.sleep(0.3)
    check("/admin" not in c.sio.namespaces, f"still in /admin: {c.sio.namespaces}")
    check(c.call("echo", 1) == 1, "main namespace survives /admin kick")
    # client DISCONNECT
    c.close()
    # invalid namespace
    d = Client(namespaces=["/nope"], auth={})
    check(not d.connect(expect_ok=False), "invalid namespace accepted")
    check(d.connect_error == {"message": "Invalid namespace"}, f"invalid namespace: {d.connect_error}")
    # middleware rejection carries data
    e = Client(auth={"name": "bad"})
    check(not e.connect(expect_ok=False), "middleware did not reject")
    check(e.connect_error == {"message": "go away", "data": {"why": "bad name"}}, f"connect_error {e.connect_error}")
    # server ack timeout: a raw client never answers
    ws, _ = raw_ws()
    ws.send('40{"name":"raw"}')
    check(ws.recv().startswith('40{"sid":'), "raw connect")
    frames = [ws.recv() for _ in range(2)]
    check(frames[0].startswith('420["never-answered"'), f"ack request {frames}")
    check(frames[1] == '42["timeout-result",{"ok":false,"error":"timeout"}]', f"timeout {frames}")
    ws.close()


SCENARIOS = {name[2:]: fn for name, fn in globals().items() if name.startswith("s_")}


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--url", required=True)
    p.add_argument("--secret", default="test-secret")
    p.add_argument("--api-token", default="test-api-token")
    p.add_argument("--count", type=int, default=50)
    p.add_argument("--ping-interval", type=int, default=25000)
    p.add_argument("--ping-timeout", type=int, default=20000)
    p.add_argument("--max-payload", type=int, default=1000000)
    p.add_argument("--max-content", type=int, default=10000)
    p.add_argument("--offsets", type=int, default=1, help="1: recovery on (an offset after each event); 0: off")
    p.add_argument("--max-attachments", type=int, default=10)
    ARGS = p.parse_args()
    SCENARIOS[ARGS.scenario]()
    print(f"OK {ARGS.scenario}")


if __name__ == "__main__":
    main()
