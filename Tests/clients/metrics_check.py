#!/usr/bin/env python3
"""Checks `GET /metrics` of a running `chorus --app realtime` with the Prometheus project's own
text parser (prometheus_client), and that the values move while Socket.IO clients connect and chat.

    metrics_check.py --url http://127.0.0.1:PORT --token T --secret S --metrics-url http://127.0.0.1:MPORT

Prints "OK metrics" and exits 0 on success; prints the failure and exits 1 otherwise.
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
    import websocket  # noqa: F401 (python-socketio's WebSocket transport)
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as e:  # the Swift test turns this into a clear failure
    print(f"MISSING python-socketio/websocket-client/prometheus_client: {e}", file=sys.stderr)
    sys.exit(3)

ARGS = None


def fail(msg):
    print(f"FAIL metrics: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(sub, conversations, secret):
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"sub": sub, "conversations": conversations, "iat": int(time.time()), "exp": int(time.time()) + 3600}
    signing = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    return signing + "." + b64(hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest())


def get(url, token=None):
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def post(url, token, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("Authorization", "Bearer " + token)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as r:
        return r.status


def scrape(url, token=None):
    """{(sample name, frozenset(labels)): value} and {family name: (type, help)}; fails on bad text."""
    status, content_type, text = get(url, token)
    check(status == 200, f"GET {url}: {status} {text[:200]}")
    check(content_type.startswith("text/plain; version=0.0.4"), f"content type {content_type}")
    samples, families = {}, {}
    try:
        for family in text_string_to_metric_families(text):
            families[family.name] = (family.type, family.documentation)
            for s in family.samples:
                samples[(s.name, frozenset(s.labels.items()))] = s.value
    except Exception as e:  # the parser raises ValueError on malformed lines
        fail(f"prometheus_client cannot parse /metrics: {e}\n{text[:2000]}")
    return samples, families


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def wait_for(what, predicate, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        samples, _ = scrape(ARGS.url + "/metrics", ARGS.token)
        if predicate(samples):
            return samples
        time.sleep(0.1)
    fail(f"timed out waiting for {what}; last scrape: " +
         ", ".join(f"{k[0]}{dict(k[1])}={v}" for k, v in sorted(samples.items(), key=lambda kv: kv[0][0]) if k[0].startswith("chorus_")))


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--metrics-url", required=True)
    ARGS = p.parse_args()

    # The main port wants the token.
    status, _, _ = get(ARGS.url + "/metrics")
    check(status == 401, f"/metrics without a token: {status}")
    status, _, _ = get(ARGS.url + "/metrics", "wrong-" + ARGS.token)
    check(status == 401, f"/metrics with a wrong token: {status}")

    before, families = scrape(ARGS.url + "/metrics", ARGS.token)
    for name, (kind, doc) in families.items():
        check(doc.strip() != "", f"{name} has no HELP")
        check(name.startswith("chorus_") or name.startswith("process_"), f"unexpected family {name}")
    for name, kind in [("chorus_connections", "gauge"), ("chorus_messages_received", "counter"),
                       ("chorus_deliveries", "counter"), ("chorus_loop_iteration_seconds", "histogram"),
                       ("process_resident_memory_bytes", "gauge"), ("process_cpu_seconds", "counter")]:
        check(families.get(name, (None,))[0] == kind, f"{name}: {families.get(name)}")
    sent0 = value(before, "chorus_socketio_events_sent_total", namespace="/", event="message:new") or 0
    other0 = value(before, "chorus_socketio_events_sent_total", namespace="/", event="other") or 0
    messages0 = value(before, "chorus_messages_received_total")
    deliveries0 = value(before, "chorus_deliveries_total")

    # Three chatting members of one conversation, and one client with a forged token.
    clients, got = [], threading.Semaphore(0)
    for i in range(3):
        c = socketio.Client(reconnection=False)
        c.on("message:new", lambda *args: got.release())  # args: data, then the recovery offset
        c.connect(ARGS.url, transports=["websocket"], auth={"token": jwt(f"u{i}", ["c1"], ARGS.secret)}, wait_timeout=10)
        ack = c.call("join:conversation", {"conversationId": "c1"}, timeout=10)
        check(ack and ack.get("ok"), f"join: {ack}")
        clients.append(c)
    bad = socketio.Client(reconnection=False)
    try:
        bad.connect(ARGS.url, transports=["websocket"], auth={"token": jwt("x", [], "not-the-secret")}, wait_timeout=5)
    except Exception:
        pass
    for n in range(5):
        ack = clients[0].call("message:send", {"conversationId": "c1", "message": {"content": f"hello {n}", "type": "text"}}, timeout=10)
        check(ack and ack.get("ok"), f"message:send: {ack}")
    for _ in range(15):
        check(got.acquire(timeout=10), "message:new did not reach every member")

    after = wait_for("the chat to show in the metrics", lambda s: (
        value(s, "chorus_connections") >= 3 + 1  # the three members and this scrape (HTTP counts too)
        and value(s, "chorus_messages_received_total") >= messages0 + 5
        and value(s, "chorus_deliveries_total") >= deliveries0 + 15
        and value(s, "chorus_socketio_sockets", namespace="/") == 3
        and (value(s, "chorus_socketio_events_received_total", namespace="/", event="message:send") or 0) >= 5
        and (value(s, "chorus_socketio_events_received_total", namespace="/", event="join:conversation") or 0) >= 3
        and (value(s, "chorus_socketio_acks_requested_total") or 0) >= 8
        and (value(s, "chorus_jwt_failures_total", reason="badSignature") or 0) >= 1
        and (value(s, "chorus_socketio_connect_errors_total", reason="unauthorized") or 0) >= 1))
    # Events out count emit calls: five broadcasts of message:new to three members are 5, not 15.
    # An API emit of a name the application does not know counts as "other" (bounded labels).
    check(post(ARGS.url + "/api/v1/emit", ARGS.token, {"rooms": ["conversation:c1"], "event": "made-up:42", "data": {}}) == 202, "emit API")
    after = wait_for("the emits to be counted", lambda s: (
        (value(s, "chorus_socketio_events_sent_total", namespace="/", event="message:new") or 0) >= sent0 + 5
        and (value(s, "chorus_socketio_events_sent_total", namespace="/", event="other") or 0) >= other0 + 1))
    time.sleep(1.2)  # one more tick: nothing else may come
    after, _ = scrape(ARGS.url + "/metrics", ARGS.token)
    check(value(after, "chorus_socketio_events_sent_total", namespace="/", event="message:new") == sent0 + 5,
          f"message:new sent: {value(after, 'chorus_socketio_events_sent_total', namespace='/', event='message:new')}")
    check(value(after, "chorus_socketio_events_sent_total", namespace="/", event="other") == other0 + 1, "other sent")
    check(value(after, "chorus_socketio_events_sent_total", namespace="/", event="made-up:42") is None, "unknown name became a label")
    check(value(after, "chorus_broadcast_recipients_count") >= 5, "broadcast histogram")
    check(value(after, "chorus_received_bytes_total") > value(before, "chorus_received_bytes_total"), "bytes in")
    check(value(after, "chorus_sent_bytes_total") > value(before, "chorus_sent_bytes_total"), "bytes out")
    # Connection state recovery is on by default: its log holds the chat's events, nobody recovered.
    check(value(after, "chorus_socketio_recovery_log_bytes", namespace="/") > 0, "recovery log bytes")
    check(value(after, "chorus_socketio_recovered_total", namespace="/") == 0, "recovered")
    check(value(after, "chorus_socketio_recovery_refused_total", namespace="/", reason="expired") == 0, "refused")
    check(value(after, "chorus_loop_queue_dropped_total") == 0, "loop queue")

    for c in clients:
        c.disconnect()
    try:
        bad.disconnect()
    except Exception:
        pass
    wait_for("the clients to leave", lambda s: value(s, "chorus_socketio_sockets", namespace="/") == 0
             and sum(v for k, v in s.items() if k[0] == "chorus_socketio_disconnects_total") >= 3)

    # The metrics port needs no token, and serves nothing else.
    samples, _ = scrape(ARGS.metrics_url + "/metrics")
    check(value(samples, "chorus_connections") is not None, "metrics port: no chorus_connections")
    status, _, _ = get(ARGS.metrics_url + "/dashboard")
    check(status == 404, f"metrics port /dashboard: {status}")
    print("OK metrics")


if __name__ == "__main__":
    main()
