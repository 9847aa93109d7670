#!/usr/bin/env python3
"""Several Chorus nodes on one Redis (`--adapter redis`), with real python-socketio clients spread
over them, a Python stand-in for socket.io-redis-emitter, and a Python stand-in foreign node that
speaks socket.io-redis-adapter 8.x's protocol.

    cluster_scenarios.py SCENARIO --url http://127.0.0.1:A --url http://127.0.0.1:B --redis redis://127.0.0.1:P
                         [--secret S] [--api-token T] [--key socket.io]

Prints "OK <scenario>" and exits 0 on success; prints the failure and exits 1 otherwise.
"""
import argparse
import base64
import json
import re
import socket
import sys
import threading
import time

try:
    import redis
    import msgpack
except ImportError as e:
    print(f"MISSING redis/msgpack: {e}", file=sys.stderr)
    sys.exit(3)

import cluster_wire as w
import sio_scenarios as sio
from sio_scenarios import check, fail, token

ARGS = None


def at(node, tok):
    """A client of node `node` (index into --url)."""
    sio.ARGS.url = ARGS.url[node]
    c = sio.Client(tok)
    c.connect()
    return c


def api(node, method, path, body=None):
    sio.ARGS.url = ARGS.url[node]
    return sio.api(method, path, body)


def redis_client():
    return redis.Redis.from_url(ARGS.redis)


def wait_for_nodes(r, count, timeout=10):
    """Every node subscribed to the channel Node fleets count with NUMSUB: the request channel
    (socket.io-redis-adapter) or the namespace's public channel (the Redis Streams adapter); and
    every Chorus node's stream reader placed (so that no entry is added before it reads)."""
    channels = [w.channels(ARGS.key)["request"], f"{ARGS.key}#/#"]
    deadline = time.time() + timeout
    n = 0
    while time.time() < deadline:
        n = max(r.pubsub_numsub(c)[0][1] for c in channels)
        if n >= count and all(reader_ready(i) for i in range(len(ARGS.url))):
            return
        time.sleep(0.05)
    fail(f"only {n} subscribers on {channels}, wanted {count}, or a stream reader not ready")


def wait_room_held(room, nodes):
    """With --redis-subscription rooms, a node SUBSCRIBEs to a room's channel when the room gets its
    first local member: a Redis round trip after the join was acknowledged, during which a broadcast
    into the room from elsewhere does not reach it (README, "Subscriptions"). Waits until `nodes`
    nodes hold the channel; with the pattern subscription there is nothing to wait for."""
    if ARGS.subscription != "rooms":
        return
    channel = w.broadcast_channel(ARGS.key, "/", [room])
    r = redis_client()
    deadline = time.time() + 5
    while r.pubsub_numsub(channel)[0][1] < nodes:
        if time.time() > deadline:
            fail(f"{channel}: {r.pubsub_numsub(channel)[0][1]} subscribers, wanted {nodes}")
        time.sleep(0.02)


def reader_ready(node):
    cluster = api(node, "GET", "/api/v1/stats")[1].get("cluster") or {}
    return cluster.get("readerReady", True)


def without_offset(args):
    """An event's arguments without the offset that connection state recovery (on by default)
    appends as the last one, a string, as a Node server with connectionStateRecovery does;
    python-socketio hands it to the handler like any other argument."""
    check(len(args) >= 1 and isinstance(args[-1], str) and is_offset(args[-1]), f"no recovery offset in {args}")
    return tuple(args[:-1])


def is_offset(text):
    """One node's log numbers events ("17"); the Redis Streams adapter uses entry ids ("1733-0")."""
    return re.fullmatch(r"[0-9]+(-[0-9]+)?", text) is not None


# ---------------------------------------------------------------- scenarios

def s_cross_node():
    """Emits on one node reach clients on the other: rooms, except, the whole namespace, a user's
    sockets on both nodes, a chat message sent from a socket handler."""
    wait_for_nodes(redis_client(), len(ARGS.url))
    alice_a = at(0, token("alice", projects=["*"], conversations=["*"]))
    alice_b = at(1, token("alice", projects=["*"], conversations=["*"]))
    bob_b = at(1, token("bob", projects=["*"], conversations=["*"]))
    carol_b = at(1, token("carol", projects=["*"], conversations=["*"]))
    for c in (alice_a, bob_b, carol_b):
        check(c.call("join:project", {"projectId": "1"})["ok"], "join project")
    wait_room_held("project:1", 2)
    # A room with except, from node A's emit API: bob on B gets it, carol (excluded) does not.
    st, body = api(0, "POST", "/api/v1/emit",
                   {"rooms": ["project:1"], "except": ["user:carol"], "event": "custom", "data": {"k": 1}})
    check(st == 202 and body == {"recipients": 1, "scope": "node"}, f"emit {st} {body}")
    check(bob_b.wait_event("custom")[0] == {"k": 1}, "bob on B")
    check(alice_a.wait_event("custom")[0] == {"k": 1}, "alice on A")
    carol_b.assert_no_event("custom")
    alice_b.assert_no_event("custom", within=0)  # not in project:1
    # The whole namespace, from node B.
    st, body = api(1, "POST", "/api/v1/emit", {"event": "everyone", "data": 2})
    check(st == 202, f"everyone {st} {body}")
    for c in (alice_a, alice_b, bob_b, carol_b):
        check(c.wait_event("everyone")[0] == 2, "everyone")
    # A user's notification reaches both of their sockets, one per node.
    wait_room_held("user:alice", 2)
    st, body = api(1, "POST", "/api/v1/users/alice/notifications", {"title": "hi"})
    check(st == 202 and body["recipients"] == 1, f"notify {st} {body}")
    # Matched by payload: a node that started while Redis was down flushes the broadcasts it queued
    # meanwhile once Redis is there (by design, --redis-publish-queue), e.g. redis_down's "local".
    for c in (alice_a, alice_b):
        c.wait_event("notification:new", lambda args: args[0] == {"title": "hi"})
    bob_b.assert_no_event("notification:new", within=0.2)
    # A chat message sent on node A reaches the conversation's members on node B.
    for c in (alice_a, bob_b):
        check(c.call("join:conversation", {"conversationId": "c1"})["ok"], "join conversation")
    wait_room_held("conversation:c1", 2)
    reply = alice_a.call("message:send", {"conversationId": "c1", "message": {"content": "hello", "type": "text"}})
    check(reply["ok"], f"send {reply}")
    check(bob_b.wait_event("message:new")[0]["content"] == "hello", "message on B")
    check(alice_a.wait_event("message:new")[0]["content"] == "hello", "message on A")
    carol_b.assert_no_event("message:new", within=0.2)
    for c in (alice_a, alice_b, bob_b, carol_b):
        c.close()


def s_redis_down():
    """One node whose Redis is unreachable: its own clients are still served (emit API, chat)."""
    a1, a2 = at(0, token("alice", conversations=["*"])), at(0, token("alice", conversations=["*"]))
    st, body = api(0, "POST", "/api/v1/users/alice/notifications", {"title": "local"})
    check(st == 202 and body == {"recipients": 2, "scope": "node"}, f"notify {st} {body}")
    for c in (a1, a2):
        check(c.wait_event("notification:new")[0] == {"title": "local"}, "local delivery")
    for c in (a1, a2):
        check(c.call("join:conversation", {"conversationId": "c9"})["ok"], "join")
    check(a1.call("message:send", {"conversationId": "c9", "message": {"content": "x", "type": "text"}})["ok"], "send")
    a2.wait_event("message:new")
    a1.close(); a2.close()


def s_emitter():
    """A socket.io-redis-emitter stand-in: ["emitter", packet, {rooms, flags, except}] published to
    Redis reaches the Chorus nodes' clients (room channel, namespace channel, except, binary)."""
    r = redis_client()
    wait_for_nodes(r, len(ARGS.url))
    key = ARGS.key
    alice = at(0, token("alice", projects=["*"]))
    bob = at(1, token("bob", projects=["*"]))
    for c in (alice, bob):
        check(c.call("join:project", {"projectId": "7"})["ok"], "join")
    wait_room_held("project:7", 2)
    # One room: its own channel.
    r.publish(w.broadcast_channel(key, "/", ["project:7"]),
              w.emitter_broadcast("/", ["project:update", {"projectId": "7", "n": 1}], rooms=["project:7"]))
    for c in (alice, bob):
        check(c.wait_event("project:update")[0] == {"projectId": "7", "n": 1}, "room emit")
    # Several rooms except one, on the namespace channel.
    r.publish(w.broadcast_channel(key, "/", ["user:alice", "user:bob"]),
              w.emitter_broadcast("/", ["hey", "there", 3], rooms=["user:alice", "user:bob"], except_=["user:bob"]))
    check(without_offset(alice.wait_event("hey")) == ("there", 3), "rooms except")
    bob.assert_no_event("hey")
    # The whole namespace, with a binary argument.
    r.publish(w.broadcast_channel(key, "/", []), w.emitter_broadcast("/", ["blob", b"\x00\x01\xff", {"ok": True}]))
    for c in (alice, bob):
        args = c.wait_event("blob")
        check(args[0] == b"\x00\x01\xff" and args[1] == {"ok": True}, f"binary {args}")
    # Garbage on the channels is skipped; delivery goes on.
    r.publish(w.broadcast_channel(key, "/", []), b"\xc1not msgpack")
    r.publish(w.channels(key)["request"], b"{broken json")
    r.publish(w.broadcast_channel(key, "/", []), w.emitter_broadcast("/", ["after"]))
    for c in (alice, bob):
        c.wait_event("after")
    for node in range(len(ARGS.url)):
        st, body = api(node, "GET", "/api/v1/stats")
        check(st == 200 and body["cluster"]["malformed"] == 2 and body["cluster"]["servers"] == len(ARGS.url), f"stats {body}")
    for c in (alice, bob):
        c.close()


class ForeignNode:
    """A Node.js node stand-in speaking socket.io-redis-adapter 8.x: it psubscribes to the
    namespace's broadcasts and subscribes to the request/response channels (so NUMSUB counts it),
    records what it receives and answers requests for its one pretend socket."""

    SOCKET_ID = "FOREIGNSOCKET0000000"

    def __init__(self):
        self.uid = "nodejs"
        self.r = redis_client()
        self.ps = self.r.pubsub()
        ch = w.channels(ARGS.key)
        self.ch = ch
        self.broadcasts, self.responses, self.requests = [], [], []
        self.cond = threading.Condition()
        self.ps.psubscribe(**{ch["broadcast"] + "*": self.handle})
        self.ps.subscribe(**{ch["request"]: self.handle, ch["response"]: self.handle,
                             ch["response"] + self.uid + "#": self.handle})
        self.thread = self.ps.run_in_thread(sleep_time=0.01, daemon=True)

    def handle(self, message):
        data = message["data"]
        channel = message["channel"].decode()
        with self.cond:
            if message["type"] == "pmessage":
                self.broadcasts.append(w.decode(data))
            elif channel == self.ch["request"]:
                req = w.decode(data)
                self.requests.append(req)
                self.answer(req)
            else:
                self.responses.append(w.decode(data))
            self.cond.notify_all()

    def answer(self, req):
        t, rid = req.get("type"), req.get("requestId")
        if req.get("uid") == self.uid:
            return
        if t == w.ALL_ROOMS:
            self.r.publish(self.ch["response"], w.response_all_rooms(rid, [self.SOCKET_ID, "foreign-room"]))
        elif t == w.REMOTE_FETCH:
            mine = {self.SOCKET_ID, "foreign-room"}
            wanted = req["opts"]["rooms"]
            matches = (not wanted or mine & set(wanted)) and not mine & set(req["opts"]["except"])
            self.r.publish(self.ch["response"], w.response_fetch(rid, [
                {"id": self.SOCKET_ID, "handshake": {}, "rooms": [self.SOCKET_ID, "foreign-room"], "data": {"from": "node"}}]
                if matches else []))
        elif t == w.SERVER_SIDE_EMIT and rid is not None:
            self.r.publish(self.ch["response"], w.response_server_side_emit(rid, "node-ack"))

    def wait(self, what, pred, timeout=sio.TIMEOUT):
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for item in getattr(self, what):
                    if pred(item):
                        return item
                left = deadline - time.time()
                if left <= 0:
                    fail(f"foreign node: no matching {what} within {timeout}s: {getattr(self, what)}")
                self.cond.wait(left)

    def close(self):
        self.thread.stop()
        self.thread.join(2)
        self.ps.close()


def s_foreign_node():
    """A Node node on the same Redis: its broadcasts reach Chorus clients, Chorus's broadcasts reach
    it, its requests (all rooms, fetch, server-side emit with ack) are answered by every Chorus node
    within the timeout, and Chorus's requests count it and include its answer."""
    r = redis_client()
    wait_for_nodes(r, len(ARGS.url))
    node = ForeignNode()
    wait_for_nodes(r, len(ARGS.url) + 1)
    alice = at(0, token("alice", projects=["*"]))
    bob = at(1, token("bob", projects=["*"]))
    check(alice.call("join:project", {"projectId": "9"})["ok"], "join")
    wait_room_held("project:9", 1)
    # Its broadcast (adapter form, its own uid) reaches Chorus clients.
    r.publish(w.broadcast_channel(ARGS.key, "/", ["project:9"]),
              w.broadcast(node.uid, "/", ["from-node", 1], rooms=["project:9"]))
    check(without_offset(alice.wait_event("from-node")) == (1,), "node broadcast")
    bob.assert_no_event("from-node", within=0.2)
    # A Chorus broadcast reaches it, in the adapter's form.
    st, _ = api(1, "POST", "/api/v1/emit", {"rooms": ["project:9"], "event": "from-chorus", "data": {"x": 1}})
    check(st == 202, f"emit {st}")
    got = node.wait("broadcasts", lambda m: m[1]["data"][0] == "from-chorus")
    check(got[1] == {"type": 2, "data": ["from-chorus", {"x": 1}], "nsp": "/"}, f"packet {got}")
    check(got[2] == {"rooms": ["project:9"], "except": [], "flags": {}}, f"opts {got}")
    # Its ALL_ROOMS request: every Chorus node answers within the timeout.
    r.publish(node.ch["request"], w.request_all_rooms(node.uid, "rq-rooms"))
    deadline = time.time() + 3
    while True:
        answers = [x for x in node.responses if x.get("requestId") == "rq-rooms"]
        if len(answers) >= len(ARGS.url):
            break
        if time.time() > deadline:
            fail(f"all rooms: {answers}")
        time.sleep(0.05)
    rooms = set().union(*(set(a["rooms"]) for a in answers))
    check({"project:9", "user:alice", "user:bob"} <= rooms, f"rooms {rooms}")
    # Its REMOTE_FETCH: the sockets with handshake, rooms and data.
    r.publish(node.ch["request"], w.request_fetch(node.uid, "rq-fetch", ["project:9"], []))
    deadline = time.time() + 3
    while True:
        answers = [x for x in node.responses if x.get("requestId") == "rq-fetch"]
        if len(answers) >= len(ARGS.url):
            break
        if time.time() > deadline:
            fail(f"fetch: {answers}")
        time.sleep(0.05)
    sockets = [s for a in answers for s in a["sockets"]]
    check(len(sockets) == 1 and "project:9" in sockets[0]["rooms"] and sockets[0]["rooms"][0] == sockets[0]["id"]
          and len(sockets[0]["id"]) == 13 and sockets[0]["handshake"]["auth"].get("token"), f"fetched {sockets}")
    # Server-side emit with ack: every Chorus node answers (null without a handler).
    r.publish(node.ch["request"], w.request_server_side_emit(node.uid, "rq-sse", ["ping"]))
    deadline = time.time() + 3
    while len([x for x in node.responses if x.get("requestId") == "rq-sse"]) < len(ARGS.url):
        if time.time() > deadline:
            fail(f"server-side emit acks: {node.responses}")
        time.sleep(0.05)
    # Chorus's own request (the operator fetch route) counts it and includes its socket.
    st, body = api(0, "GET", "/api/v1/sockets?room=foreign-room")
    check(st == 200 and [s["id"] for s in body["sockets"]] == [ForeignNode.SOCKET_ID], f"fetch via chorus {st} {body}")
    st, body = api(0, "GET", "/api/v1/sockets?room=project:9")
    check(st == 200 and len(body["sockets"]) == 1, f"fetch project:9 via chorus {st} {body}")
    node.close()
    alice.close(); bob.close()


def s_operations():
    """The operator routes act on every node: fetch a room's sockets, make them join and leave
    rooms, disconnect them."""
    wait_for_nodes(redis_client(), len(ARGS.url))
    alice = at(0, token("alice", projects=["*"]))
    bob = at(1, token("bob", projects=["*"]))
    st, body = api(0, "GET", "/api/v1/sockets?room=user:bob")
    check(st == 200 and len(body["sockets"]) == 1, f"fetch bob from A {st} {body}")
    bob_id = body["sockets"][0]["id"]
    check(len(bob_id) == 13 and body["sockets"][0]["rooms"][0] == bob_id and "user:bob" in body["sockets"][0]["rooms"], f"{body}")
    # Join: both users' sockets join "war-room" from node B; an emit to it on node A reaches both.
    st, body = api(1, "POST", "/api/v1/sockets/join", {"rooms": ["user:alice", "user:bob"], "join": ["war-room"]})
    check(st == 202, f"join {st} {body}")
    time.sleep(0.3)
    st, body = api(0, "GET", "/api/v1/sockets?room=war-room")
    check(st == 200 and len(body["sockets"]) == 2, f"after join {body}")
    api(0, "POST", "/api/v1/emit", {"rooms": ["war-room"], "event": "w", "data": 1})
    alice.wait_event("w"); bob.wait_event("w")
    # io.to(socketId) from another node reaches that socket.
    api(0, "POST", "/api/v1/emit", {"rooms": [bob_id], "event": "direct", "data": 1})
    bob.wait_event("direct")
    alice.assert_no_event("direct", within=0.2)
    # Leave, from node A: bob leaves war-room.
    st, _ = api(0, "POST", "/api/v1/sockets/leave", {"rooms": ["user:bob"], "leave": ["war-room"]})
    check(st == 202, f"leave {st}")
    time.sleep(0.3)
    st, body = api(1, "GET", "/api/v1/sockets?room=war-room")
    check(st == 200 and [s["id"] for s in body["sockets"]] != [bob_id] and len(body["sockets"]) == 1, f"after leave {body}")
    # Disconnect bob's sockets from node A.
    st, _ = api(0, "POST", "/api/v1/sockets/disconnect", {"rooms": ["user:bob"]})
    check(st == 202, f"disconnect {st}")
    check(bob.disconnected.wait(sio.TIMEOUT), "bob disconnected")
    check(not alice.disconnected.is_set(), "alice stays")
    alice.close(); bob.close()


def s_request_timeout():
    """A node that is counted (subscribed to the request channel) but never answers: a fetch
    fails with 504 after --redis-request-timeout (given as --timeout-ms), not before, not much later."""
    r = redis_client()
    wait_for_nodes(r, len(ARGS.url))
    mute = r.pubsub()
    mute.subscribe(w.channels(ARGS.key)["request"])
    wait_for_nodes(r, len(ARGS.url) + 1)
    started = time.time()
    st, body = api(0, "GET", "/api/v1/sockets?room=anything")
    elapsed = time.time() - started
    limit = ARGS.timeout_ms / 1000
    check(st == 504 and "answered" in body["error"], f"fetch {st} {body}")
    check(limit * 0.9 <= elapsed < limit + 2, f"answered after {elapsed:.2f}s, timeout {limit}s")
    st, body = api(0, "GET", "/api/v1/stats")
    check(st == 200 and body["cluster"]["requestsTimedOut"] == 1, f"stats {body}")
    mute.close()


def s_publish_queue():
    """Redis unreachable: emits wait in the bounded queue (--publish-queue); beyond, they are dropped
    and counted. Local delivery goes on."""
    a = at(0, token("alice"))
    n = ARGS.publish_queue + 3
    for i in range(n):
        st, _ = api(0, "POST", "/api/v1/users/alice/notifications", {"i": i})
        check(st == 202, f"emit {st}")
    for i in range(n):
        a.wait_event("notification:new", lambda args, i=i: args[0] == {"i": i})
    st, body = api(0, "GET", "/api/v1/stats")
    cluster = body["cluster"]
    check(st == 200 and cluster["redisConnected"] is False and cluster["servers"] is None, f"stats {body}")
    check(cluster["publishQueue"] == ARGS.publish_queue and cluster["publishDrops"] == 3, f"queue {cluster}")
    a.close()


class StreamsNode:
    """A Node.js node stand-in using socket.io-redis-streams-adapter 0.3.x: it subscribes to the
    namespace's public channel (so NUMSUB counts it) and its own, answers FETCH_SOCKETS for its one
    pretend socket, and writes stream entries and sessions as that adapter does."""

    UID = "f00dfeedf00dfeed"
    SOCKET_ID = "NODESOCKET0000000001"

    def __init__(self):
        self.r = redis_client()
        self.public = f"{ARGS.key}#/#"
        self.private = f"{ARGS.key}#/#{self.UID}#"
        self.responses = []
        self.cond = threading.Condition()
        self.ps = self.r.pubsub()
        self.ps.subscribe(**{self.public: self.handle, self.private: self.handle})
        self.thread = self.ps.run_in_thread(sleep_time=0.01, daemon=True)

    def handle(self, message):
        m = msgpack.unpackb(message["data"], raw=False)
        if m.get("uid") == self.UID:
            return
        with self.cond:
            if m["type"] == 7:  # FETCH_SOCKETS: answered on the requester's channel
                self.r.publish(f"{ARGS.key}#/#{m['uid']}#", msgpack.packb({"uid": self.UID, "nsp": "/", "type": 8, "data": {
                    "requestId": m["data"]["requestId"],
                    "sockets": [{"id": self.SOCKET_ID, "handshake": {}, "rooms": [self.SOCKET_ID], "data": {"from": "node"}}]}},
                    use_bin_type=True))
            else:
                self.responses.append(m)
            self.cond.notify_all()

    def xadd(self, type_, data, uid=None, binary=False):
        """RedisStreamsAdapter.doPublish: JSON data, or base64 MessagePack when it holds binary."""
        raw = base64.b64encode(msgpack.packb(data, use_bin_type=True)) if binary else w.dumps(data)
        return self.r.xadd(ARGS.key, {"uid": uid or self.UID, "nsp": "/", "type": str(type_), "data": raw},
                           maxlen=10000, approximate=True).decode()

    def broadcast(self, event, args, rooms=(), except_=(), uid=None, binary=False):
        return self.xadd(3, {"packet": {"type": 2, "data": [event, *args]},
                             "opts": {"rooms": list(rooms), "except": list(except_), "flags": {}}}, uid=uid, binary=binary)

    def wait(self, pred, timeout=sio.TIMEOUT):
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for item in self.responses:
                    if pred(item):
                        return item
                left = deadline - time.time()
                if left <= 0:
                    fail(f"streams node: no matching response within {timeout}s: {self.responses}")
                self.cond.wait(left)

    def close(self):
        self.thread.stop()
        self.thread.join(2)
        self.ps.close()


def raw_connect(node, auth):
    """A raw Engine.IO/Socket.IO client on node `node`: CONNECT with `auth`; the frames received up
    to the CONNECT reply (missed events come before it)."""
    sio.ARGS.url = ARGS.url[node]
    ws, _ = sio.raw_ws()
    ws.send("40" + json.dumps(auth))
    frames = []
    while True:
        f = ws.recv()
        if f == "2":
            ws.send("3")
            continue
        frames.append(f)
        if f.startswith("40") or f.startswith("44"):
            return ws, frames


def raw_call(ws, ack_id, event, data):
    ws.send(f"42{ack_id}" + json.dumps([event, data]))
    while True:
        f = ws.recv()
        if f.startswith(f"43{ack_id}"):
            return json.loads(f[2 + len(str(ack_id)):])


def stream_read_past(node, entry_id, timeout=5):
    """Node `node`'s stream reader has read `entry_id` (so its restore replays it)."""
    want = tuple(int(x) for x in entry_id.split("-"))
    deadline = time.time() + timeout
    while time.time() < deadline:
        last = api(node, "GET", "/api/v1/stats")[1]["cluster"]["lastRead"]
        if tuple(int(x) for x in last.split("-")) >= want:
            return
        time.sleep(0.02)
    fail(f"node {node} did not read {entry_id}")


def s_streams_foreign_node():
    """A Node.js node with the Redis Streams adapter on the same Redis: Chorus's entries and
    sessions are in that adapter's layout, its entries (JSON and binary) reach Chorus clients with
    their ids as offsets, a session it kept is restored by Chorus with exactly the missed events,
    and FETCH_SOCKETS is answered both ways."""
    r = redis_client()
    wait_for_nodes(r, len(ARGS.url))
    node = StreamsNode()
    wait_for_nodes(r, len(ARGS.url) + 1)
    alice = at(0, token("alice", projects=["*"]))
    bob = at(1, token("bob", projects=["*"]))
    for c in (alice, bob):
        check(c.call("join:project", {"projectId": "1"})["ok"], "join")
    # Chorus's broadcast: a stream entry in the reference's layout; its id is the clients' offset.
    last = (r.xrevrange(ARGS.key, count=1) or [(b"0-0", {})])[0][0].decode()
    st, _ = api(0, "POST", "/api/v1/emit", {"rooms": ["project:1"], "event": "from-chorus", "data": {"x": 1}})
    check(st == 202, f"emit {st}")
    args = alice.wait_event("from-chorus")
    check(bob.wait_event("from-chorus") == args, "both nodes give the same offset")
    entries = [e for e in r.xrange(ARGS.key, "(" + last, "+") if e[1][b"type"] == b"3"]
    check(len(entries) == 1, f"entries {entries}")
    entry_id, fields = entries[0][0].decode(), entries[0][1]
    check(args == ({"x": 1}, entry_id), f"args {args}, entry {entry_id}")
    chorus_uid = api(0, "GET", "/api/v1/stats")[1]["cluster"]["uid"]
    check(fields[b"uid"].decode() == chorus_uid and re.fullmatch(r"[0-9a-f]{16}", chorus_uid) and fields[b"nsp"] == b"/", f"fields {fields}")
    check(fields[b"data"] == w.dumps({"packet": {"type": 2, "data": ["from-chorus", {"x": 1}]},
                                      "opts": {"rooms": ["project:1"], "except": [], "flags": {}}}), f"data {fields[b'data']}")
    # Its entries: JSON and binary data reach both nodes' clients, the entry id as the offset.
    eid = node.broadcast("from-node", [{"y": 2}], rooms=["project:1"])
    for c in (alice, bob):
        check(c.wait_event("from-node") == ({"y": 2}, eid), "node broadcast")
    eid = node.broadcast("from-node-bin", [b"\x00\x01\xff"], rooms=["project:1"], binary=True)
    for c in (alice, bob):
        check(c.wait_event("from-node-bin") == (b"\x00\x01\xff", eid), "binary broadcast")
    # An entry with node 0's own uid is node 0's own (already delivered there): only node 1 delivers it.
    node.broadcast("as-node-0", [1], rooms=["project:1"], uid=chorus_uid)
    bob.wait_event("as-node-0")
    alice.assert_no_event("as-node-0", within=0.3)
    # SOCKETS_JOIN from its side: every node's project:1 sockets join project:7.
    node.xadd(4, {"opts": {"rooms": ["project:1"], "except": [], "flags": {}}, "rooms": ["project:7"]})
    time.sleep(0.3)
    node.broadcast("in-seven", [7], rooms=["project:7"])
    for c in (alice, bob):
        check(c.wait_event("in-seven")[0] == 7, "joined remotely")
    # A session Chorus keeps, in the reference's form: base64 MessagePack {sid, pid, rooms, data}, TTL the window.
    ws, frames = raw_connect(0, {"token": token("carol", projects=["*"])})
    reply = json.loads(frames[-1][2:])
    sid, pid = reply["sid"], reply["pid"]
    check(raw_call(ws, 1, "join:project", {"projectId": "1"})[0]["ok"], "carol joins")
    ws.sock.shutdown(socket.SHUT_RDWR)
    ws.sock.close()
    deadline = time.time() + 5
    while r.get("sio:session:" + pid) is None:
        check(time.time() < deadline, "no session kept in Redis")
        time.sleep(0.02)
    kept = msgpack.unpackb(base64.b64decode(r.get("sio:session:" + pid)), raw=False)
    check(kept["sid"] == sid and kept["pid"] == pid and kept["rooms"][0] == sid
          and {"project:1", "user:carol"} <= set(kept["rooms"]) and kept["data"]["userId"] == "carol", f"session {kept}")
    check(0 < r.pttl("sio:session:" + pid) <= 120000, "TTL")
    # A session the Node node kept: restored by Chorus with exactly what it missed, before the reply.
    nsid, npid = "NODESESSIONSOCKET001", "node-private-session-id"
    first = node.broadcast("before", [0], rooms=["project:1"])
    r.set("sio:session:" + npid, base64.b64encode(msgpack.packb(
        {"sid": nsid, "pid": npid, "rooms": [nsid, "project:1"],
         "data": {"userId": "dave", "projects": ["*"], "conversations": ["*"]}}, use_bin_type=True)), px=60000)
    e2 = node.broadcast("missed", [{"n": 1}], rooms=["project:1"])
    node.broadcast("other-project", [0], rooms=["project:2"])
    e4 = node.broadcast("direct", ["to you"], rooms=[nsid])
    e5 = node.broadcast("not-for-you", [0], rooms=["project:1"], except_=[nsid])
    stream_read_past(1, e5)
    ws, frames = raw_connect(1, {"pid": npid, "offset": first})
    check(frames == ['42["missed",{"n":1},"%s"]' % e2, '42["direct","to you","%s"]' % e4,
                     '40{"sid":"%s","pid":"%s"}' % (nsid, npid)], f"frames {frames}")
    check(r.get("sio:session:" + npid) is None, "the session was not taken (GETDEL)")
    sio.ARGS.url = ARGS.url[1]
    st, body = sio.api("GET", "/api/v1/sockets?room=" + nsid)
    check(st == 200 and [s["data"].get("userId") for s in body["sockets"] if s["id"] == nsid] == ["dave"], f"restored data {body}")
    ws.close()
    # FETCH_SOCKETS from it: every Chorus node answers on its channel; Chorus's fetch counts it.
    r.publish(node.public, msgpack.packb({"uid": node.UID, "nsp": "/", "type": 7, "data": {
        "opts": {"rooms": ["project:1"], "except": [], "flags": {}}, "requestId": "rq-fetch"}}, use_bin_type=True))
    answers = []
    deadline = time.time() + 3
    while len(answers) < len(ARGS.url):
        check(time.time() < deadline, f"fetch answers {node.responses}")
        answers = [m for m in node.responses if m["type"] == 8 and m["data"]["requestId"] == "rq-fetch"]
        time.sleep(0.05)
    ids = {s["id"] for m in answers for s in m["data"]["sockets"]}
    check(len(ids) >= 2 and all(len(i) == 13 for i in ids), f"fetched {answers}")
    # SERVER_SIDE_EMIT with an ack: every node answers (null: no handler for it).
    r.publish(node.public, msgpack.packb({"uid": node.UID, "nsp": "/", "type": 9, "data": {
        "packet": ["ping"], "requestId": "rq-sse"}}, use_bin_type=True))
    # BROADCAST with an ack: each node reports its client count, then each client's answer.
    r.publish(node.public, msgpack.packb({"uid": node.UID, "nsp": "/", "type": 3, "data": {
        "packet": {"type": 2, "data": ["ask", 1]}, "requestId": "rq-ack",
        "opts": {"rooms": ["project:1"], "except": [], "flags": {"timeout": 3000}}}}, use_bin_type=True))
    for c in (alice, bob):
        check(c.wait_event("ask") == (1,), "asked")
    deadline = time.time() + 3
    while True:
        sse = [m for m in node.responses if m["type"] == 10 and m["data"]["requestId"] == "rq-sse"]
        counts = [m["data"]["clientCount"] for m in node.responses if m["type"] == 11 and m["data"]["requestId"] == "rq-ack"]
        acks = [m for m in node.responses if m["type"] == 12 and m["data"]["requestId"] == "rq-ack"]
        if len(sse) == len(ARGS.url) and sorted(counts) == [1] * len(ARGS.url) and len(acks) == 2:
            break
        check(time.time() < deadline, f"answers {node.responses}")
        time.sleep(0.05)
    check(all(m["data"]["packet"] is None for m in sse), f"server-side emit answers {sse}")
    sio.ARGS.url = ARGS.url[0]
    st, body = sio.api("GET", "/api/v1/sockets")
    check(st == 200 and StreamsNode.SOCKET_ID in {s["id"] for s in body["sockets"]}, f"Chorus's fetch {st} {body}")
    node.close()
    for c in (alice, bob):
        c.close()


SCENARIOS = {name[2:]: fn for name, fn in globals().items() if name.startswith("s_")}


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--url", action="append", required=True)
    p.add_argument("--redis", required=True)
    p.add_argument("--key", default="socket.io")
    p.add_argument("--secret", default="test-secret")
    p.add_argument("--api-token", default="test-api-token")
    p.add_argument("--timeout-ms", type=int, default=5000)
    p.add_argument("--publish-queue", type=int, default=10000)
    p.add_argument("--subscription", choices=["pattern", "rooms"], default="pattern",
                   help="the nodes' --redis-subscription (rooms: wait for a room's channel before publishing into it)")
    ARGS = p.parse_args()
    sio.ARGS = argparse.Namespace(url=ARGS.url[0], secret=ARGS.secret, api_token=ARGS.api_token, scenario=ARGS.scenario)
    SCENARIOS[ARGS.scenario]()
    print(f"OK {ARGS.scenario}")


if __name__ == "__main__":
    main()
