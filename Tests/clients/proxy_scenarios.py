#!/usr/bin/env python3
"""End-to-end scenarios for the backend proxies: a running `chorus --app realtime` with
`--proxy-*` flags pointing at Tests/clients/proxy_backend.py, and python-socketio clients.

    proxy_scenarios.py SCENARIO --url http://127.0.0.1:CHORUS --backend http://127.0.0.1:BACKEND
                       [--secret S] [--api-token T] [--proxy-token P] [--timeout SECONDS] [--join-cached]

Prints "OK <scenario>" and exits 0 on success; prints the failure and exits 1 otherwise.
The backend's answers are chosen by the message content / room id (see proxy_backend.py).
"""
import argparse
import json
import threading
import time
import urllib.request

import sio_scenarios as sio
from sio_scenarios import Client, api, check, fail, token


def backend_log(path=None):
    with urllib.request.urlopen(ARGS.backend + "/_log", timeout=5) as r:
        log = json.loads(r.read())
    return [e for e in log if path is None or e["path"] == path]


def send(client, conversation, content, kind="text"):
    return client.call("message:send", {"conversationId": conversation, "message": {"content": content, "type": kind}})


def proxy_stats(name):
    st, stats = api("GET", "/api/v1/stats")
    check(st == 200, f"stats {st} {stats}")
    return stats["proxies"][name]


class Acks:
    """Acks of messages emitted without waiting, in the order they arrive."""

    def __init__(self):
        self.got = []
        self.cond = threading.Condition()

    def callback(self, label):
        def cb(*args):
            with self.cond:
                self.got.append((label, args[0] if args else None, time.time()))
                self.cond.notify_all()
        return cb

    def wait(self, count, timeout=10):
        deadline = time.time() + timeout
        with self.cond:
            while len(self.got) < count:
                left = deadline - time.time()
                if left <= 0:
                    fail(f"only {len(self.got)} of {count} acks: {self.got}")
                self.cond.wait(left)
        return list(self.got)


def emit_send(client, conversation, content, acks, label=None):
    client.sio.emit("message:send", {"conversationId": conversation, "message": {"content": content, "type": "text"}},
                    callback=acks.callback(label or content))


def members(*subs, conversation="c1"):
    clients = [Client(token(sub, conversations=[conversation, "7"])) for sub in subs]
    for c in clients:
        c.connect()
        check(c.call("join:conversation", {"conversationId": conversation})["ok"], f"{c} join")
    return clients


# ---------------------------------------------------------------- message:send

def s_message():
    alice, bob = members("u-alice", "u-bob")
    carol = Client(token("u-carol", conversations=["c2"]))
    carol.connect()
    check(carol.call("join:conversation", {"conversationId": "c2"})["ok"], "carol join")

    # Stored: the backend sees the sender and the message; its stored object reaches every member.
    r = send(alice, "c1", "hello")
    check(r.get("ok") is True, f"ack {r}")
    m = r["message"]
    check(m["stored"] is True and m["id"].startswith("m-") and m["createdAt"] == "2024-01-01T00:00:00.000Z", f"stored {m}")
    check(m["senderId"] == "u-alice" and m["conversationId"] == "c1" and m["content"] == "hello", f"fields {m}")
    for x in (alice, bob):
        got = x.wait_event("message:new")[0]
        check(got == m, f"message:new {got} != {m}")
    carol.assert_no_event("message:new", 0.2)
    seen = backend_log("/message")
    check(len(seen) == 1, f"backend calls {seen}")
    check(seen[0]["body"] == {"userId": "u-alice", "conversationId": "c1", "message": {"content": "hello", "type": "text"}},
          f"backend body {seen[0]['body']}")
    check(seen[0]["authorization"] == f"Bearer {ARGS.proxy_token}", f"authorization {seen[0]['authorization']}")
    check(seen[0]["contentType"] == "application/json", f"content type {seen[0]['contentType']}")

    # The backend's own fields are kept; only the four missing ones are filled in.
    r = send(bob, "c1", "partial answer", kind="note")
    check(r["ok"] is True, f"partial ack {r}")
    m = r["message"]
    check(m["extra"] == "x" and m["type"] == "note" and m["content"] == "partial answer", f"backend fields {m}")
    check(m["senderId"] == "u-bob" and m["conversationId"] == "c1", f"filled ids {m}")
    check(len(m["id"]) == 36 and m["id"][14] == "4", f"filled uuid {m}")
    check(len(m["createdAt"]) == 24 and m["createdAt"].endswith("Z"), f"filled createdAt {m}")
    for x in (alice, bob):
        check(x.wait_event("message:new")[0] == m, "partial broadcast")

    # A number conversation id reaches the backend as a number.
    for x in (alice, bob):
        check(x.call("join:conversation", {"conversationId": 7})["ok"], "join 7")
    r = send(alice, 7, "numbered")
    check(r["ok"] is True and r["message"]["conversationId"] == 7, f"numbered {r}")
    check(backend_log("/message")[-1]["body"]["conversationId"] == 7, "backend saw 7")
    for x in (alice, bob):
        x.wait_event("message:new")

    # Refused (4xx): only the sender's ack hears of it; nothing is broadcast.
    r = send(bob, "c1", "refuse this")
    check(r == {"ok": False, "error": "refused by the backend"}, f"refused ack {r}")
    # 5xx and an unusable 2xx: unavailable, nothing broadcast.
    check(send(alice, "c1", "fail now") == {"ok": False, "error": "unavailable"}, "5xx")
    check(send(alice, "c1", "garbage answer") == {"ok": False, "error": "unavailable"}, "invalid 2xx")
    for x in (alice, bob):
        x.assert_no_event("message:new", 0.3)

    # Refused without an ack: an error event to the sender only.
    bob.sio.emit("message:send", {"conversationId": "c1", "message": {"content": "refuse again"}})
    check(bob.wait_event("error")[0] == {"event": "message:send", "error": "refused by the backend"}, "error event")
    alice.assert_no_event("error", 0.2)

    # Checked before the backend: validation and membership never reach it.
    before = len(backend_log("/message"))
    r = send(carol, "c1", "not a member")
    check(r["ok"] is False and "member" in r["error"], f"non-member {r}")
    r = alice.call("message:send", {"conversationId": "c1", "message": {"content": ""}})
    check(r["ok"] is False and "empty" in r["error"], f"validation {r}")
    check(len(backend_log("/message")) == before, "backend called for a refused send")

    s = proxy_stats("message")
    check(s["calls"] == 7 and s["answered"] == {"2xx": 4, "4xx": 2, "5xx": 1}, f"counters {s}")
    check(s["failures"]["invalid"] == 1 and s["failures"]["timeout"] == 0 and s["inFlight"] == 0, f"failures {s}")
    check(s["latency"]["count"] == 7 and s["latency"]["bucketsMilliseconds"]["+Inf"] == 7, f"latency {s}")
    st, stats = api("GET", "/api/v1/stats")
    check(stats["messages"] == 3, f"messages broadcast {stats['messages']}")
    for x in (alice, bob, carol):
        x.close()


def s_order():
    """The backend answers out of order; members and the sender still see send order."""
    alice, bob = members("u-alice", "u-bob")
    acks = Acks()
    emit_send(alice, "c1", "sleep:0.8 first", acks, "first")
    time.sleep(0.05)
    emit_send(alice, "c1", "second", acks, "second")
    got = acks.wait(2)
    check([label for label, _, _ in got] == ["first", "second"], f"ack order {got}")
    check(all(a["ok"] for _, a, _ in got), f"acks {got}")
    for x in (alice, bob):
        contents = [x.wait_event("message:new")[0]["content"] for _ in range(2)]
        check(contents == ["sleep:0.8 first", "second"], f"broadcast order {contents}")
    log = {e["body"]["message"]["content"]: e for e in backend_log("/message")}
    check(log["second"]["done"] < log["sleep:0.8 first"]["done"], "the backend did not answer out of order")

    # A burst with random backend delays: still in send order, for every member.
    import random
    rnd = random.Random(15)
    acks = Acks()
    contents = [f"sleep:{rnd.choice([0, 0.05, 0.2, 0.4])} n{i}" for i in range(12)]
    for c in contents:
        emit_send(alice, "c1", c, acks)
    got = acks.wait(len(contents))
    check([label for label, _, _ in got] == contents, f"burst ack order {[l for l, _, _ in got]}")
    for x in (alice, bob):
        seen = [x.wait_event("message:new")[0]["content"] for _ in contents]
        check(seen == contents, f"burst broadcast order {seen}")
    alice.close(); bob.close()


def s_sender_left():
    """A message the backend stores after its sender disconnected is still broadcast, in order."""
    alice, bob = members("u-alice", "u-bob")
    acks = Acks()
    emit_send(alice, "c1", "sleep:0.6 one", acks)
    emit_send(alice, "c1", "two", acks)
    time.sleep(0.2)
    alice.close()
    contents = [bob.wait_event("message:new")[0]["content"] for _ in range(2)]
    check(contents == ["sleep:0.6 one", "two"], f"broadcast after the sender left {contents}")
    check(len(backend_log("/message")) == 2, "backend calls")
    bob.close()


def s_one_connection():
    """--proxy-connections 1: calls share one kept-alive connection, so the backend gets them one by one."""
    alice, bob = members("u-alice", "u-bob")
    acks = Acks()
    for c in ("sleep:0.5 first", "sleep:0.1 second", "third"):
        emit_send(alice, "c1", c, acks)
    got = acks.wait(3)
    check([label for label, _, _ in got] == ["sleep:0.5 first", "sleep:0.1 second", "third"], f"acks {got}")
    log = backend_log("/message")
    for earlier, later in zip(log, log[1:]):
        check(later["at"] >= earlier["done"] - 0.001, f"two calls at once on one connection: {log}")
    alice.close(); bob.close()


def s_timeout():
    alice, bob = members("u-alice", "u-bob")
    start = time.time()
    r = send(alice, "c1", "sleep:3 slow")
    took = time.time() - start
    check(r == {"ok": False, "error": "unavailable"}, f"timeout ack {r}")
    check(ARGS.timeout * 0.8 <= took < ARGS.timeout + 1.5, f"answered after {took:.2f}s, timeout {ARGS.timeout}s")
    for x in (alice, bob):
        x.assert_no_event("message:new", 0.3)
    s = proxy_stats("message")
    check(s["failures"]["timeout"] == 1, f"timeout counted {s}")
    # The next message goes through (the client recovered).
    r = send(alice, "c1", "after the timeout")
    check(r["ok"] is True, f"after timeout {r}")
    bob.wait_event("message:new", lambda a: a[0]["content"] == "after the timeout")
    alice.close(); bob.close()


def s_down():
    """--proxy-message points at a port nothing listens on."""
    alice, bob = members("u-alice", "u-bob")
    start = time.time()
    r = send(alice, "c1", "nobody home")
    took = time.time() - start
    check(r == {"ok": False, "error": "unavailable"}, f"down ack {r}")
    check(took < ARGS.timeout, f"a refused connection took {took:.2f}s (timeout {ARGS.timeout}s)")
    for x in (alice, bob):
        x.assert_no_event("message:new", 0.3)
    s = proxy_stats("message")
    check(s["failures"]["refused"] == 1 and s["answered"]["2xx"] == 0, f"refused counted {s}")
    alice.close(); bob.close()


def s_inflight():
    """--proxy-max-in-flight 2: the third and fourth concurrent calls are refused at once."""
    alice, bob, carol = members("u-alice", "u-bob", "u-carol")
    acks = Acks()
    for i, sender in enumerate([alice, bob, carol, alice]):
        emit_send(sender, "c1", f"sleep:1 m{i}", acks, f"m{i}")
        time.sleep(0.05)
    got = acks.wait(4)
    refused = [(label, a, t) for label, a, t in got if not a["ok"]]
    check(len(refused) == 2 and all(a == {"ok": False, "error": "unavailable"} for _, a, _ in refused), f"acks {got}")
    check({label for label, _, _ in refused} == {"m2", "m3"}, f"refused the wrong ones {got}")
    order = [label for label, _, _ in got]
    # carol's refusal is immediate; alice's second waits behind her first (acks keep send order).
    check(order[0] == "m2" and order.index("m0") < order.index("m3"), f"ack order {order}")
    contents = [bob.wait_event("message:new")[0]["content"] for _ in range(2)]
    check(sorted(contents) == ["sleep:1 m0", "sleep:1 m1"], f"broadcast {contents}")
    bob.assert_no_event("message:new", 0.5)
    s = proxy_stats("message")
    check(s["failures"]["overload"] == 2 and s["answered"]["2xx"] == 2, f"overload counted {s}")
    check(len(backend_log("/message")) == 2, "refused calls reached the backend")
    for x in (alice, bob, carol):
        x.close()


def s_per_socket():
    """--proxy-max-per-socket 2: a socket's third waiting message is refused; others are not affected."""
    alice, bob = members("u-alice", "u-bob")
    acks = Acks()
    for i in range(3):
        emit_send(alice, "c1", f"sleep:0.6 a{i}", acks, f"a{i}")
    emit_send(bob, "c1", "sleep:0.6 b0", acks, "b0")
    got = acks.wait(4)
    check(got[0][0] == "a2" and got[0][1] == {"ok": False, "error": "unavailable"}, f"third not refused first {got}")
    check(all(a["ok"] for label, a, _ in got[1:]), f"others {got}")
    s = proxy_stats("message")
    check(s["failures"]["overload"] == 1, f"overload counted {s}")
    alice.close(); bob.close()


# ---------------------------------------------------------------- joins

def joins(room):
    return [e for e in backend_log("/join") if e["body"]["room"] == room]


def s_join():
    cached = ARGS.join_cached
    alice = Client(token("u-alice"))  # no claims: the backend decides
    alice.connect()
    r = alice.call("join:project", {"projectId": "p1"})
    check(r == {"ok": True, "projectId": "p1"}, f"allowed {r}")
    check(joins("project:p1")[0]["body"] == {"userId": "u-alice", "room": "project:p1", "kind": "project", "id": "p1"},
          f"join body {joins('project:p1')}")
    st, body = api("POST", "/api/v1/projects/p1/updates", {"n": 1})
    check(body == {"recipients": 1}, f"joined for real {body}")
    alice.wait_event("project:update")
    r = alice.call("join:project", {"projectId": "forbidden-1"})
    check(r == {"ok": False, "error": "forbidden"}, f"403 {r}")
    r = alice.call("join:conversation", {"conversationId": "broken-1"})
    check(r == {"ok": False, "error": "unavailable"}, f"500 {r}")
    r = alice.call("join:project", {})
    check(r["ok"] is False and "projectId" in r["error"], f"validation {r}")
    check(alice.call("join:conversation", {"conversationId": "c5"}) == {"ok": True, "conversationId": "c5"}, "conversation")
    # Without an ack: the refusal is an error event.
    alice.sio.emit("join:project", {"projectId": "forbidden-1"})
    check(alice.wait_event("error")[0] == {"event": "join:project", "error": "forbidden"}, "error event")

    # Again: from the cache (no backend call) when --proxy-join-cache is set; unavailable is never cached.
    check(alice.call("leave:project", {"projectId": "p1"})["ok"], "leave")
    check(alice.call("join:project", {"projectId": "p1"}) == {"ok": True, "projectId": "p1"}, "allowed again")
    check(alice.call("join:project", {"projectId": "forbidden-1"})["error"] == "forbidden", "forbidden again")
    check(alice.call("join:conversation", {"conversationId": "broken-1"})["error"] == "unavailable", "unavailable again")
    check(len(joins("project:p1")) == (1 if cached else 2), f"p1 calls {len(joins('project:p1'))} (cached={cached})")
    check(len(joins("project:forbidden-1")) == (1 if cached else 3), f"forbidden calls (cached={cached})")
    check(len(joins("conversation:broken-1")) == 2, "unavailable was cached")
    # Another user is asked for separately.
    bob = Client(token("u-bob"))
    bob.connect()
    check(bob.call("join:project", {"projectId": "p1"})["ok"], "bob allowed")
    check(len(joins("project:p1")) == (2 if cached else 3), "per-user cache")
    s = proxy_stats("join")
    check(s["answered"]["2xx"] >= 2 and s["answered"]["4xx"] >= 1 and s["answered"]["5xx"] == 2, f"join counters {s}")
    if cached:
        st, stats = api("GET", "/api/v1/stats")
        # forbidden-1 without an ack, p1 again, forbidden-1 again
        check(stats["proxies"]["joinCache"]["hits"] == 3, f"cache hits {stats['proxies']}")
    alice.close(); bob.close()


# ---------------------------------------------------------------- connect

def connect_error_message(client):
    e = client.connect_error
    return e.get("message") if isinstance(e, dict) else e


def s_connect():
    """--auth none --proxy-connect: the backend alone names the user."""
    dave = Client(auth={"session": "ok:u-dave"}, query={"userId": "mallory", "room": "x"},
                  headers={"Cookie": "sid=abc", "X-Secret": "not forwarded"})
    dave.connect()
    call = backend_log("/connect")[-1]
    body = call["body"]
    check(body["auth"] == {"session": "ok:u-dave"} and body["query"].get("userId") == "mallory"
          and body["query"].get("room") == "x", f"connect body {body}")
    check(body["headers"].get("cookie") == "sid=abc" and "x-secret" not in body["headers"], f"headers {body['headers']}")
    check(body["address"].startswith("127.0.0.1"), f"address {body['address']}")
    check("userId" not in body, f"no verified user without JWT {body}")
    check(call["authorization"] == f"Bearer {ARGS.proxy_token}", f"authorization {call['authorization']}")
    # The backend's user, not the query's: its messages go out as u-dave (grants from the answer's data).
    check(dave.call("join:conversation", {"conversationId": "c1"})["ok"], "grants from data")
    r = send(dave, "c1", "hi from dave")
    check(r["ok"] is True and r["message"]["senderId"] == "u-dave", f"sender {r}")
    check(backend_log("/message")[-1]["body"]["userId"] == "u-dave", "message proxy saw u-dave")
    st, body = api("POST", "/api/v1/users/u-dave/notifications", {"n": 1})
    check(body == {"recipients": 1}, f"user room {body}")
    for session, message in [("nope", "bad session"), ("banned", "banned")]:
        c = Client(auth={"session": session}, query={"userId": "mallory"})
        check(not c.connect(expect_ok=False), session)
        check(connect_error_message(c) == message, f"{session}: {c.connect_error!r}")
        c.close()
    s = proxy_stats("connect")
    check(s["answered"] == {"2xx": 1, "4xx": 2, "5xx": 0}, f"connect counters {s}")
    dave.close()


def s_connect_jwt():
    """--auth jwt --proxy-connect: the token first, then the backend."""
    erin = Client(token("u-erin", conversations=["c1"]), auth={"token": token("u-erin", conversations=["c1"]), "session": "same"})
    erin.connect()
    body = backend_log("/connect")[-1]["body"]
    check(body["userId"] == "u-erin", f"verified user forwarded {body}")
    check(erin.call("join:conversation", {"conversationId": "c1"})["ok"], "token grants kept")
    check(erin.call("join:conversation", {"conversationId": "c2"}) == {"ok": False, "error": "forbidden"}, "token grants only")
    before = len(backend_log("/connect"))
    bad = Client(auth={"token": token("u-erin", secret="wrong"), "session": "same"})
    check(not bad.connect(expect_ok=False), "bad token accepted")
    check(connect_error_message(bad) == "unauthorized", f"bad token {bad.connect_error!r}")
    check(len(backend_log("/connect")) == before, "the backend was asked about a bad token")
    for session, message in [("other", "unauthorized"), ("nope", "bad session"), ("banned", "banned")]:
        c = Client(auth={"token": token("u-frank"), "session": session})
        check(not c.connect(expect_ok=False), session)
        check(connect_error_message(c) == message, f"{session}: {c.connect_error!r}")
        c.close()
    # The backend may widen the grants: data.conversations "*".
    g = Client(auth={"token": token("u-gina"), "session": "ok:u-gina"})
    g.connect()
    check(g.call("join:conversation", {"conversationId": "c9"})["ok"], "grants from data")
    g.close(); bad.close(); erin.close()


def s_connect_down():
    """The connect proxy is unreachable: CONNECT_ERROR unavailable."""
    c = Client(auth={"session": "ok:u-dave"})
    check(not c.connect(expect_ok=False), "connected without a backend")
    check(connect_error_message(c) == "unavailable", f"down: {c.connect_error!r}")
    c.close()


# ---------------------------------------------------------------- examples/backend.py

def s_example():
    """The README's example: examples/backend.py behind all three proxies."""
    alice, bob = Client(auth={"session": "sess-alice"}), Client(auth={"session": "sess-bob"})
    alice.connect(); bob.connect()
    for c in (alice, bob):
        check(c.call("join:conversation", {"conversationId": "c1"}) == {"ok": True, "conversationId": "c1"}, "join c1")
    check(alice.call("join:conversation", {"conversationId": "c2"}) == {"ok": False, "error": "forbidden"}, "c2")
    check(bob.call("join:project", {"projectId": "p2"})["ok"], "bob p2")
    r = send(alice, "c1", "  hello bob ")
    check(r["ok"] and r["message"]["id"] == "msg-1" and r["message"]["content"] == "hello bob", f"stored {r}")
    check(bob.wait_event("message:new")[0] == r["message"], "bob got it")
    check(send(bob, "c1", "buy SPAM") == {"ok": False, "error": "refused by moderation"}, "moderation")
    with urllib.request.urlopen(ARGS.backend + "/messages?conversationId=c1", timeout=5) as resp:
        stored = json.loads(resp.read())
    check([m["id"] for m in stored] == ["msg-1"], f"stored {stored}")
    for session, message in [("sess-mallory", "banned"), ("nope", "bad session")]:
        c = Client(auth={"session": session})
        check(not c.connect(expect_ok=False), session)
        check(connect_error_message(c) == message, f"{session}: {c.connect_error!r}")
        c.close()
    # The session may come as a cookie too (forwarded by --proxy-connect-headers).
    carol = Client(headers={"Cookie": "theme=dark; session=sess-bob"}, auth={})
    carol.connect()
    check(carol.call("join:project", {"projectId": "p2"})["ok"], "cookie session is bob")
    alice.close(); bob.close(); carol.close()


SCENARIOS = {name[2:]: fn for name, fn in globals().items() if name.startswith("s_")}


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--url", required=True)
    p.add_argument("--backend", required=True)
    p.add_argument("--secret", default="test-secret")
    p.add_argument("--api-token", default="test-api-token")
    p.add_argument("--proxy-token", default="test-proxy-token")
    p.add_argument("--timeout", type=float, default=3.0)
    p.add_argument("--join-cached", action="store_true")
    ARGS = p.parse_args()
    sio.ARGS = ARGS
    SCENARIOS[ARGS.scenario]()
    print(f"OK {ARGS.scenario}")


if __name__ == "__main__":
    main()
