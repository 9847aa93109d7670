"use strict";
// Connection state recovery driven by the official socket.io-client v4 (the client the product's
// web and React Native apps use, and the only one that implements recovery), under Node:
//
//   CHORUS_SIO_JS=.venv-test/js/socket.io.min.js node --experimental-websocket Tests/clients/recovery.js \
//       SCENARIO --url http://127.0.0.1:PORT --secret S --api-token T
//
// The transport is dropped the way a lost network drops it (`socket.io.engine.close()`); the
// client then reconnects by itself and sends its session id and last offset. Prints
// "OK <scenario>" and exits 0, or "FAIL <scenario>: why" and exits 1.

const crypto = require("crypto");
const net = require("net");

if (typeof globalThis.WebSocket === "undefined") {
  globalThis.WebSocket = require("/usr/share/nodejs/ws"); // Debian's node-ws, for a Node without the flag
}
const io = require(process.env.CHORUS_SIO_JS);

const ARGS = (() => {
  const out = { scenario: process.argv[2], url: "", url2: "", secret: "test-secret", apiToken: "test-api-token" };
  for (let i = 3; i < process.argv.length; i += 2) {
    const key = process.argv[i].replace(/^--/, "").replace(/-(.)/g, (_, c) => c.toUpperCase());
    out[key] = process.argv[i + 1];
  }
  return out;
})();

class Failure extends Error {}
function check(condition, why) {
  if (!condition) throw new Failure(why);
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(predicate, why, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Failure(`timed out: ${why}`);
    await sleep(10);
  }
}

function token(sub, expiresIn = 3600) {
  const now = Math.floor(Date.now() / 1000);
  const part = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const signing = `${part({ alg: "HS256", typ: "JWT" })}.${part({
    sub, iat: now, exp: now + expiresIn, projects: ["*"], conversations: ["*"],
  })}`;
  return `${signing}.${crypto.createHmac("sha256", ARGS.secret).update(signing).digest("base64url")}`;
}

async function api(method, path, body) {
  const response = await fetch(ARGS.url + path, {
    method,
    headers: { Authorization: `Bearer ${ARGS.apiToken}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function post(path, body) {
  const { status } = await api("POST", path, body);
  check(status === 202, `POST ${path}: ${status}`);
}

const stats = async () => (await api("GET", "/api/v1/stats")).body;
const recoveryStats = async () => (await stats()).recovery;

/// A client as an app creates it; `log` has every event received, `[name, ...args]`, in order.
function client(sub, { delay = 1500, expiresIn = 3600 } = {}) {
  const socket = io(ARGS.url, {
    transports: ["websocket"],
    auth: { token: token(sub, expiresIn) },
    reconnectionDelay: delay,
    reconnectionDelayMax: delay,
    randomizationFactor: 0,
  });
  const log = [];
  socket.onAny((event, ...args) => log.push([event, ...args]));
  return { socket, log, name: sub };
}

function next(socket, event, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Failure(`no ${event} within ${ms} ms`)), ms);
    socket.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

async function call(socket, event, data) {
  const reply = await socket.timeout(10000).emitWithAck(event, data);
  check(reply && reply.ok, `${event}: ${JSON.stringify(reply)}`);
  return reply;
}

async function connected(...clients) {
  await Promise.all(clients.map((c) => (c.socket.connected ? null : next(c.socket, "connect"))));
  for (const c of clients) check(!c.socket.recovered, `${c.name}: recovered on its first connection`);
}

async function joinAll(c) {
  await call(c.socket, "join:project", { projectId: "1" });
  await call(c.socket, "join:conversation", { conversationId: "c1" });
}

/// Drops the transport as a lost network does, and waits until the server has kept the session.
async function dropTransport(c, persistedBefore) {
  c.socket.io.engine.close();
  await waitFor(() => !c.socket.connected, "client sees the drop");
  const deadline = Date.now() + 10000;
  while ((await recoveryStats()).persisted <= persistedBefore) {
    check(Date.now() < deadline, "the server did not keep the session");
    await sleep(20);
  }
}

/// A connected client in project 1 and conversation c1 that has seen one event (so that it has an
/// offset to come back with): its id and the recovery counters before anything else happens.
async function settled(c) {
  await connected(c);
  await joinAll(c);
  await post("/api/v1/projects/1/updates", { n: 0 });
  await waitFor(() => c.log.length === 1, "the first update");
  return { id: c.socket.id, before: await recoveryStats() };
}

/// Drops the transport, listening for `event` ("connect" or "connect_error") before the drop: the
/// reconnect may come while the caller is still sending the gap's events. `{ back }`: its promise
/// (wrapped, so that awaiting `away` does not wait for the reconnect too).
async function away(c, before, event = "connect") {
  const back = next(c.socket, event, 30000);
  await dropTransport(c, before.persisted);
  return { back };
}

/// An offset as a comparable number: one node's log numbers events ("17"), the Redis Streams
/// adapter uses the stream entry id ("1733232000000-3"). A BigInt: as a double, ms * 1e6 is past
/// 2^53 and entries added within one millisecond compared equal (a loaded machine does that).
/// JSON for messages, with BigInt offsets as their digits.
function show(value) {
  return JSON.stringify(value, (_, v) => (typeof v === "bigint" ? v.toString() : v));
}

function offsetValue(offset) {
  const [ms, seq] = offset.split("-");
  return seq === undefined ? BigInt(ms) : BigInt(ms) * 1000000n + BigInt(seq);
}

/// The events after the first `skip` in `log`: [name, payload] with the offset checked and removed.
function payloads(log, skip) {
  return log.slice(skip).map(([event, ...args]) => {
    const offset = args[args.length - 1];
    check(typeof offset === "string" && /^[0-9]+(-[0-9]+)?$/.test(offset), `${event}: no offset in ${JSON.stringify(args)}`);
    return [event, args[0], offsetValue(offset)];
  });
}

/// Everything a member of project 1 and conversation c1 (alice) misses while away, and one event
/// she must not get (project 2). Returns the names in order.
async function emitDuringTheGap(bob) {
  await call(bob.socket, "message:send", { conversationId: "c1", message: { content: "m1", type: "text" } });
  await post("/api/v1/projects/1/updates", { n: 1 });
  await post("/api/v1/projects/1/stages/completed", { stage: "s1" });
  await post("/api/v1/users/alice/notifications", { title: "t1" });
  await post("/api/v1/projects/2/updates", { n: 99 });
  await call(bob.socket, "message:send", { conversationId: "c1", message: { content: "m2", type: "text" } });
  return ["message:new", "project:update", "stage:completed", "notification:new", "message:new"];
}

/// A load balancer in front of the nodes: a loopback TCP proxy whose target can be switched, so
/// that a client that reconnects lands on another node (as behind a real balancer).
async function balancer(urls) {
  const targets = urls.map((u) => new URL(u));
  const lb = { target: 0, sockets: new Set() };
  const server = net.createServer((downstream) => {
    const { hostname, port } = targets[lb.target];
    const upstream = net.connect(Number(port), hostname);
    for (const s of [downstream, upstream]) {
      lb.sockets.add(s);
      s.on("close", () => lb.sockets.delete(s));
      s.on("error", () => {});
    }
    downstream.pipe(upstream);
    upstream.pipe(downstream);
    downstream.on("close", () => upstream.destroy());
    upstream.on("close", () => downstream.destroy());
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  lb.url = `http://127.0.0.1:${server.address().port}`;
  lb.close = () => { server.close(); for (const s of lb.sockets) s.destroy(); };
  return lb;
}

/// A client as an app creates it, behind `lb`.
function clientVia(lb, sub) {
  const saved = ARGS.url;
  ARGS.url = lb.url;
  try { return client(sub); } finally { ARGS.url = saved; }
}

/// Every node's cluster adapter ready (a Redis Streams node: its reader placed at the stream's
/// end, so that nothing added from now on is missed); nothing to wait for without one.
async function nodesReady() {
  const saved = ARGS.url;
  try {
    for (const url of [ARGS.url, ARGS.url2].filter((u) => u)) {
      ARGS.url = url;
      const deadline = Date.now() + 10000;
      for (;;) {
        const cluster = (await stats()).cluster;
        if (!cluster || cluster.readerReady !== false) break;
        check(Date.now() < deadline, `${url}: the cluster adapter is not ready`);
        await sleep(20);
      }
    }
  } finally {
    ARGS.url = saved;
  }
}

// ---------------------------------------------------------------------------------- scenarios

const scenarios = {
  /// Same id, same rooms, every missed event once and in order, before the "connect" event.
  async recovered() {
    const alice = client("alice");
    const bob = client("bob");
    await connected(bob);
    await joinAll(bob);
    const { id, before } = await settled(alice);
    let seenAtConnect = -1;
    alice.socket.once("connect", () => { seenAtConnect = alice.log.length; });
    const { back: reconnected } = await away(alice, before);
    const expected = await emitDuringTheGap(bob);
    await reconnected;
    check(alice.socket.recovered === true, "socket.recovered is false");
    check(alice.socket.id === id, `id ${alice.socket.id}, was ${id}`);
    check(seenAtConnect === 1 + expected.length, `at "connect" the client had ${seenAtConnect} events, wanted ${1 + expected.length}`);
    const missed = payloads(alice.log, 1);
    check(JSON.stringify(missed.map((e) => e[0])) === JSON.stringify(expected), `missed ${show(missed)}`);
    check(missed[0][1].content === "m1" && missed[4][1].content === "m2", "chat messages in order");
    check(missed[1][1].n === 1 && missed[2][1].stage === "s1" && missed[3][1].title === "t1", "updates");
    const first = offsetValue(alice.log[0][alice.log[0].length - 1]);
    check(missed.every((e, i) => e[2] > (i === 0 ? first : missed[i - 1][2])), "offsets increase");
    // Its rooms are back: live events for the project, the conversation and the user arrive.
    await post("/api/v1/projects/1/updates", { n: 2 });
    await call(bob.socket, "message:send", { conversationId: "c1", message: { content: "m3", type: "text" } });
    await post("/api/v1/users/alice/notifications", { title: "t2" });
    await waitFor(() => alice.log.length === 1 + expected.length + 3, "live events after the recovery");
    const live = payloads(alice.log, 1 + expected.length).map((e) => e[0]);
    check(JSON.stringify(live) === JSON.stringify(["project:update", "message:new", "notification:new"]), `live ${live}`);
    // And it still talks: a chat message from alice reaches bob.
    await call(alice.socket, "message:send", { conversationId: "c1", message: { content: "back", type: "text" } });
    await waitFor(() => bob.log.some(([e, m]) => e === "message:new" && m.content === "back"), "alice's message at bob");
    // Nothing twice: bob's log has each chat message once too.
    const contents = bob.log.filter(([e]) => e === "message:new").map(([, m]) => m.content);
    check(JSON.stringify(contents) === JSON.stringify(["m1", "m2", "m3", "back"]), `bob's messages ${contents}`);
    const after = await recoveryStats();
    check(after.recovered === before.recovered + 1 && after.replayed === before.replayed + expected.length,
      `counters ${JSON.stringify(after)}`);
    alice.socket.disconnect();
    bob.socket.disconnect();
  },

  /// Two nodes on one Redis with --adapter redis-streams: alice is on node 1 (--url) behind a
  /// balancer, bob on node 2 (--url2). Alice's transport drops and she comes back through the
  /// balancer to node 2: the same socket, its rooms, every event sent meanwhile from either node
  /// once and in order (offsets are stream entry ids), then live events and chat from node 2.
  async otherNode() {
    check(ARGS.url2, "--url2 is needed");
    const node1 = ARGS.url;
    const lb = await balancer([node1, ARGS.url2]);
    const alice = clientVia(lb, "alice");
    const bob2 = (() => { ARGS.url = ARGS.url2; try { return client("bob"); } finally { ARGS.url = node1; } })();
    await connected(bob2);
    await joinAll(bob2);
    const { id, before } = await settled(alice);
    ARGS.url = ARGS.url2;
    const before2 = await recoveryStats();
    ARGS.url = node1;
    let seenAtConnect = -1;
    alice.socket.once("connect", () => { seenAtConnect = alice.log.length; });
    const back = next(alice.socket, "connect", 30000);
    lb.target = 1;
    await dropTransport(alice, before.persisted);
    // The gap: chat through node 2, updates through node 1's API and node 2's.
    const expected = await emitDuringTheGap(bob2);
    ARGS.url = ARGS.url2;
    await post("/api/v1/projects/1/updates", { n: 7 });
    ARGS.url = node1;
    expected.push("project:update");
    await back;
    check(alice.socket.recovered === true, "socket.recovered is false on the other node");
    check(alice.socket.id === id, `id ${alice.socket.id}, was ${id}`);
    check(seenAtConnect === 1 + expected.length, `at "connect" the client had ${seenAtConnect} events, wanted ${1 + expected.length}: ${JSON.stringify(alice.log)}`);
    const missed = payloads(alice.log, 1);
    check(JSON.stringify(missed.map((e) => e[0])) === JSON.stringify(expected), `missed ${show(missed)}`);
    check(missed[0][1].content === "m1" && missed[4][1].content === "m2" && missed[5][1].n === 7, "chat and updates in order");
    const first = offsetValue(alice.log[0][alice.log[0].length - 1]);
    check(missed.every((e, i) => e[2] > (i === 0 ? first : missed[i - 1][2])), "offsets increase");
    // Live on node 2 now: its rooms are back there, and node 1's emits still reach it.
    await post("/api/v1/projects/1/updates", { n: 8 });
    await call(bob2.socket, "message:send", { conversationId: "c1", message: { content: "m3", type: "text" } });
    await post("/api/v1/users/alice/notifications", { title: "t2" });
    await waitFor(() => alice.log.length === 1 + expected.length + 3, "live events after the recovery");
    const live = payloads(alice.log, 1 + expected.length).map((e) => e[0]);
    check(JSON.stringify(live.slice().sort()) === JSON.stringify(["message:new", "notification:new", "project:update"]), `live ${live}`);
    await call(alice.socket, "message:send", { conversationId: "c1", message: { content: "back", type: "text" } });
    await waitFor(() => bob2.log.some(([e, m]) => e === "message:new" && m.content === "back"), "alice's message at bob");
    const contents = bob2.log.filter(([e]) => e === "message:new").map(([, m]) => m.content);
    check(JSON.stringify(contents) === JSON.stringify(["m1", "m2", "m3", "back"]), `bob's messages ${contents}`);
    ARGS.url = ARGS.url2;
    const after2 = await recoveryStats();
    ARGS.url = node1;
    check(after2.recovered === before2.recovered + 1 && after2.replayed === before2.replayed + expected.length,
      `node 2's counters ${JSON.stringify(after2)}`);
    alice.socket.disconnect();
    bob2.socket.disconnect();
    lb.close();
  },

  /// Several drops in a row, events each time; then the window: run with --recovery-window 2.
  async expired() {
    const alice = client("alice", { delay: 3000 });
    const { id, before } = await settled(alice);
    const { back: reconnected } = await away(alice, before);
    await post("/api/v1/projects/1/updates", { n: 1 });
    await reconnected;
    check(alice.socket.recovered === false, "recovered after the window");
    check(alice.socket.id !== id, "same id after the window");
    check(alice.log.length === 1, `events replayed after the window: ${JSON.stringify(alice.log)}`);
    const after = await recoveryStats();
    // One node knows the session expired; a Redis store (--adapter redis-streams) forgot it.
    const refusal = ARGS.refusal || "expired";
    check(after[refusal] === before[refusal] + 1, `counters ${JSON.stringify(after)}`);
    alice.socket.disconnect();
  },

  /// The log holds fewer bytes than were sent during the gap: run with a small --recovery-buffer.
  async overflow() {
    const alice = client("alice", { delay: Number(ARGS.delay || 1500) });
    const { id, before } = await settled(alice);
    const { back: reconnected } = await away(alice, before);
    // `--posts N`: a Redis stream trimmed with MAXLEN ~ drops whole nodes of 100 entries.
    const posts = Number(ARGS.posts || 40);
    for (let i = 1; i <= posts; i++) await post("/api/v1/projects/1/updates", { n: i, filler: "x".repeat(200) });
    await reconnected;
    check(alice.socket.recovered === false, "recovered though its offset fell out of the buffer");
    check(alice.socket.id !== id, "same id");
    const after = await recoveryStats();
    // One node's log counts its evictions; a stream's trimming is Redis's own.
    check(after.offsetGone === before.offsetGone + 1 && (ARGS.stream || after.entriesEvicted > before.entriesEvicted),
      `counters ${JSON.stringify(after)}`);
    // A fresh session works as usual.
    await joinAll(alice);
    await post("/api/v1/projects/1/updates", { n: posts + 1 });
    await waitFor(() => alice.log.some(([e, d]) => e === "project:update" && d.n === posts + 1), "live update");
    alice.socket.disconnect();
  },

  /// A deliberate disconnect keeps nothing: the next connection is a new socket.
  async deliberate() {
    const alice = client("alice");
    const { id, before } = await settled(alice);
    alice.socket.disconnect();
    await post("/api/v1/projects/1/updates", { n: 1 });
    alice.socket.connect();
    await next(alice.socket, "connect");
    check(alice.socket.recovered === false && alice.socket.id !== id, "recovered after a deliberate disconnect");
    await sleep(200);
    check(alice.log.length === 1, `events replayed: ${JSON.stringify(alice.log)}`);
    const after = await recoveryStats();
    check(after.persisted === before.persisted && after.unknownSession === before.unknownSession + 1,
      `counters ${JSON.stringify(after)}`);
    alice.socket.disconnect();
  },

  /// The token expires while the client is away. With --recovery-skip-middlewares (the default)
  /// the session comes back without the JWT check; with --no-recovery-skip-middlewares the
  /// middleware runs again and refuses it. `--expect recovered|refused`.
  async middlewares() {
    const alice = client("alice", { delay: 2500, expiresIn: 2 });
    const { before } = await settled(alice);
    const { back: reconnected } = await away(alice, before, ARGS.expect === "recovered" ? "connect" : "connect_error");
    await post("/api/v1/projects/1/updates", { n: 1 });
    if (ARGS.expect === "recovered") {
      await reconnected;
      check(alice.socket.recovered === true, "not recovered");
      check(payloads(alice.log, 1).length === 1, `missed ${JSON.stringify(alice.log)}`);
    } else {
      const [error] = await reconnected;
      check(error.message === "unauthorized", `connect_error ${error.message}`);
      check(!alice.socket.connected, "connected with an expired token");
    }
    alice.socket.disconnect();
  },
};

(async () => {
  const run = scenarios[ARGS.scenario];
  if (!run) {
    console.log(`FAIL ${ARGS.scenario}: no such scenario (${Object.keys(scenarios).join(", ")})`);
    process.exit(2);
  }
  const timer = setTimeout(() => {
    console.log(`FAIL ${ARGS.scenario}: timed out`);
    process.exit(1);
  }, 60000);
  try {
    await nodesReady();
    await run();
    clearTimeout(timer);
    console.log(`OK ${ARGS.scenario}`);
    process.exit(0);
  } catch (error) {
    console.log(`FAIL ${ARGS.scenario}: ${error instanceof Failure ? error.message : error.stack}`);
    process.exit(1);
  }
})();
