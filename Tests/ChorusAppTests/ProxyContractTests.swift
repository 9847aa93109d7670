import ChorusJSON
import ChorusProxy
import ChorusSocketIO
import Testing

@testable import ChorusApp

/// The proxy contract on values (README, "Backend proxies"): what is posted, what each answer means.
@Suite("backend proxy contract")
struct ProxyContractTests {
    static let send = MessageSend(conversationId: "c1", conversationIdValue: "c1", content: "hi", type: "text")

    static func answer(_ status: Int, _ body: String) -> ProxyOutcome {
        .answered(status: status, body: Array(body.utf8))
    }

    static func decide(_ outcome: ProxyOutcome) -> (BackendContract.MessageDecision, Bool) {
        BackendContract.messageDecision(outcome, userId: "u1", send, id: { "generated" }, now: { "now" })
    }

    @Test("message request: userId, conversationId as sent (a number stays a number), message {content, type}")
    func messageRequest() {
        let numbered = MessageSend(conversationId: "7", conversationIdValue: 7, content: "x", type: "note")
        #expect(
            BackendContract.messageRequest(userId: "u1", numbered)
                == ["userId": "u1", "conversationId": 7, "message": ["content": "x", "type": "note"]])
    }

    @Test(
        "2xx: the stored message as the backend wrote it; only id, conversationId, senderId, createdAt filled when absent"
    )
    func stored() {
        let full =
            #"{"message":{"id":"m1","conversationId":"c1","senderId":"u9","content":"edited","createdAt":"t","x":1}}"#
        #expect(
            Self.decide(Self.answer(201, full)).0
                == .stored([
                    "id": "m1", "conversationId": "c1", "senderId": "u9", "content": "edited", "createdAt": "t", "x": 1,
                ]))
        let partial = #"{"message":{"content":"hi","type":"text"}}"#
        guard case .stored(let m) = Self.decide(Self.answer(200, partial)).0 else { Issue.record("not stored"); return }
        #expect(
            m["id"] == "generated" && m["conversationId"] == "c1" && m["senderId"] == "u1" && m["createdAt"] == "now")
        #expect(m["content"] == "hi" && m["type"] == "text")
    }

    @Test("2xx without a message object, or not JSON: unavailable, counted as invalid")
    func invalid() {
        for body in ["", "not json", "{}", #"{"message":"text"}"#, "[1]"] {
            let (decision, invalid) = Self.decide(Self.answer(200, body))
            #expect(decision == .unavailable && invalid, "\(body)")
        }
    }

    @Test("4xx: refused with the backend's error (or a default); 5xx, 3xx and failures: unavailable")
    func refusals() {
        #expect(Self.decide(Self.answer(422, #"{"error":"too rude"}"#)).0 == .refused("too rude"))
        #expect(Self.decide(Self.answer(403, "")).0 == .refused("forbidden"))
        #expect(Self.decide(Self.answer(400, "nope")).0 == .refused("refused"))
        let long = String(repeating: "é", count: 300)
        guard case .refused(let cut) = Self.decide(Self.answer(400, #"{"error":"\#(long)"}"#)).0 else {
            Issue.record(); return
        }
        #expect(cut.utf8.count <= 256 && long.hasPrefix(cut.prefix(10)))
        for outcome in [
            Self.answer(500, "{}"), Self.answer(503, ""), Self.answer(302, ""), .failed(.timeout),
            .failed(.refused), .failed(.overload),
        ] {
            #expect(Self.decide(outcome) == (.unavailable, false), "\(outcome)")
        }
    }

    @Test("join: request fields; 2xx allowed, 403 forbidden, anything else unavailable")
    func join() {
        #expect(
            BackendContract.joinRequest(userId: "u1", room: "project:p1", kind: "project", id: "p1")
                == ["userId": "u1", "room": "project:p1", "kind": "project", "id": "p1"])
        #expect(BackendContract.joinDecision(Self.answer(200, "")) == .allowed)
        #expect(BackendContract.joinDecision(Self.answer(204, "")) == .allowed)
        #expect(BackendContract.joinDecision(Self.answer(403, "")) == .forbidden)
        for outcome in [
            Self.answer(401, ""), Self.answer(404, ""), Self.answer(500, ""), .failed(.timeout), .failed(.overload),
        ] {
            #expect(BackendContract.joinDecision(outcome) == .unavailable, "\(outcome)")
        }
    }

    @Test("connect alone: 2xx names the user (string or number) with data; 401/403 refuse; no userId is invalid")
    func connectAlone() {
        let decide = { (o: ProxyOutcome) in BackendContract.connectDecision(o, verifiedUserId: nil) }
        #expect(
            decide(Self.answer(200, #"{"userId":"u7","data":{"plan":"pro"}}"#)).decision
                == .accepted(userId: "u7", data: ["plan": "pro"]))
        #expect(decide(Self.answer(200, #"{"userId":42}"#)).decision == .accepted(userId: "42", data: nil))
        #expect(decide(Self.answer(401, #"{"error":"bad session"}"#)).decision == .refused("bad session"))
        #expect(decide(Self.answer(401, "")).decision == .refused("unauthorized"))
        #expect(decide(Self.answer(403, "")).decision == .refused("forbidden"))
        #expect(decide(Self.answer(200, "{}")) == (.unavailable, true))
        #expect(decide(Self.answer(200, #"{"userId":""}"#)) == (.unavailable, true))
        #expect(decide(Self.answer(404, "")) == (.unavailable, false))
        #expect(decide(.failed(.refused)) == (.unavailable, false))
    }

    @Test("connect after JWT: the answer may omit or repeat the token's subject, never name another user")
    func connectAfterJWT() {
        let decide = { (o: ProxyOutcome) in BackendContract.connectDecision(o, verifiedUserId: "u1").decision }
        #expect(decide(Self.answer(200, "{}")) == .accepted(userId: "u1", data: nil))
        #expect(decide(Self.answer(200, #"{"userId":"u1","data":[1]}"#)) == .accepted(userId: "u1", data: [1]))
        #expect(decide(Self.answer(200, #"{"userId":"u2"}"#)) == .refused("unauthorized"))
        #expect(decide(Self.answer(403, #"{"error":"banned"}"#)) == .refused("banned"))
    }
}

@Suite("send order per sender")
struct SendOrderTests {
    @Test("answers released in ticket order, whatever order they arrive in")
    func reorders() {
        var order = SendOrder<String>(limit: 8)
        let a = order.take("a")!
        let b = order.take("b")!
        let c = order.take("c")!
        #expect(order.answer(c) { $0 += "!" } == [])
        #expect(order.answer(b) { $0 += "!" } == [])
        #expect(order.answer(a) { $0 += "!" } == ["a!", "b!", "c!"])
        #expect(order.outstanding == 0)
        let d = order.take("d")!
        #expect(order.answer(d) { _ in } == ["d"])
    }

    @Test("an answer in order is released at once; a duplicate or unknown ticket releases nothing")
    func immediate() {
        var order = SendOrder<Int>(limit: 4)
        let t = order.take(1)!
        let u = order.take(2)!
        #expect(order.answer(t) { _ in } == [1])
        #expect(order.answer(t) { _ in } == [])
        #expect(order.answer(99) { _ in } == [])
        #expect(order.answer(u) { _ in } == [2])
    }

    @Test("at most limit calls outstanding, released ones free their place")
    func bounded() {
        var order = SendOrder<Int>(limit: 2)
        let t0 = order.take(0)!
        let t1 = order.take(1)!
        #expect(order.take(2) == nil)
        #expect(order.answer(t1) { _ in } == [])
        #expect(order.take(2) == nil, "an answered call waiting behind an earlier one still counts")
        #expect(order.answer(t0) { _ in } == [0, 1])
        #expect(order.take(2) != nil)
    }
}

@Suite("join decision cache")
struct JoinDecisionCacheTests {
    let key = JoinDecisionCache.Key(userId: "u1", room: "project:p1")

    @Test("a decision is reused until its time-to-live passes; unavailable is never kept")
    func ttl() {
        let cache = JoinDecisionCache(ttl: 2, capacity: 10)
        #expect(cache.lookup(key, now: 0) == nil)
        cache.store(key, .forbidden, now: 0)
        #expect(cache.lookup(key, now: 1_999_999_999) == .forbidden)
        #expect(cache.lookup(key, now: 2_000_000_000) == nil)
        cache.store(key, .unavailable, now: 0)
        #expect(cache.lookup(key, now: 1) == nil)
        #expect(cache.hits == 1 && cache.misses == 3)
    }

    @Test("ttl 0 keeps nothing")
    func disabled() {
        let cache = JoinDecisionCache(ttl: 0, capacity: 10)
        cache.store(key, .allowed, now: 0)
        #expect(cache.lookup(key, now: 0) == nil && cache.count == 0)
    }

    @Test("at capacity: expired entries are swept first, then everything")
    func capacity() {
        let cache = JoinDecisionCache(ttl: 1, capacity: 2)
        let k = (0..<4).map { JoinDecisionCache.Key(userId: "u\($0)", room: "r") }
        cache.store(k[0], .allowed, now: 0)
        cache.store(k[1], .allowed, now: 900_000_000)
        cache.store(k[2], .allowed, now: 1_500_000_000)  // k0 expired: swept
        #expect(cache.count == 2 && cache.lookup(k[1], now: 1_500_000_000) == .allowed)
        cache.store(k[3], .allowed, now: 1_600_000_000)  // none expired (k1: 1.9 s, k2: 2.5 s): all dropped
        #expect(cache.count == 1 && cache.lookup(k[3], now: 1_600_000_000) == .allowed)
    }
}
