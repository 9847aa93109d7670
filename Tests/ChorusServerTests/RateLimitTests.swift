import ChorusServer
import ChorusTestSupport
import Glibc
import Testing

@testable import ChorusServer

/// `bucket.take` outside the #expect macro (which cannot take a mutating call).
func spend(_ bucket: inout TokenBucket, _ cost: Double, limit: RateLimit, now: UInt64) -> Bool {
    bucket.take(cost, limit: limit, now: now)
}

@Suite("Token bucket")
struct TokenBucketTests {
    let second: UInt64 = 1_000_000_000

    @Test("starts full: the burst passes at once, one more does not")
    func burst() {
        let limit = RateLimit(perSecond: 10, burst: 5)
        var bucket = TokenBucket(limit, now: 0)
        for _ in 0..<5 { #expect(spend(&bucket, 1, limit: limit, now: 0)) }
        #expect(!spend(&bucket, 1, limit: limit, now: 0))
    }

    @Test("refills at the rate, never above the burst")
    func refill() {
        let limit = RateLimit(perSecond: 10, burst: 5)
        var bucket = TokenBucket(limit, now: 0)
        for _ in 0..<5 { _ = bucket.take(1, limit: limit, now: 0) }
        #expect(!spend(&bucket, 1, limit: limit, now: second / 20))  // 0.5 token
        #expect(spend(&bucket, 1, limit: limit, now: second / 10))  // 1 token
        #expect(!spend(&bucket, 1, limit: limit, now: second / 10))
        // An hour of silence refills to the burst only.
        for _ in 0..<5 { #expect(spend(&bucket, 1, limit: limit, now: 3600 * second)) }
        #expect(!spend(&bucket, 1, limit: limit, now: 3600 * second))
    }

    @Test("a cost larger than the burst never passes; a clock that does not move refills nothing")
    func costs() {
        let limit = RateLimit(perSecond: 1000, burst: 100)
        var bucket = TokenBucket(limit, now: 5)
        #expect(!spend(&bucket, 101, limit: limit, now: 10 * second))
        #expect(spend(&bucket, 100, limit: limit, now: 10 * second))
        #expect(!spend(&bucket, 1, limit: limit, now: 10 * second))
        #expect(!spend(&bucket, 1, limit: limit, now: 5))
    }
}

/// End to end on the echo app: a client over its rate gets its excess dropped (counted) or is
/// closed with 1008; within it, everything is echoed.
@Suite("Rate limits end-to-end", .serialized, .timeLimit(.minutes(1)))
struct RateLimitEndToEndTests {
    @Test("drop: a burst over the message limit loses exactly the excess; the connection stays")
    func dropPolicy() throws {
        let server = try startServer(EchoApplication(), threads: 1) {
            $0.messageRate = RateLimit(perSecond: 1, burst: 5)
        }
        defer { server.shutdown() }
        let c = try BlockingWebSocketClient(port: server.port)
        for i in 0..<8 { try c.send(text: "m\(i)") }
        for i in 0..<5 { #expect(try c.receiveText() == "m\(i)") }
        #expect(c.isQuiet(milliseconds: 300))
        #expect(eventually { server.stats.rateLimited == 3 })
        // After a second, one more token.
        usleep(1_100_000)
        try c.send(text: "later")
        #expect(try c.receiveText() == "later")
    }

    @Test("close: over the byte limit the connection is closed with 1008")
    func closePolicy() throws {
        let server = try startServer(EchoApplication(), threads: 1) {
            $0.byteRate = RateLimit(perSecond: 100, burst: 1000)
            $0.rateLimitPolicy = .close
        }
        defer { server.shutdown() }
        let c = try BlockingWebSocketClient(port: server.port)
        let piece = String(repeating: "x", count: 400)
        try c.send(text: piece)
        try c.send(text: piece)
        #expect(try c.receiveText() == piece)
        #expect(try c.receiveText() == piece)
        try c.send(text: piece)
        #expect(try c.receiveClose() == 1008)
    }
}

/// `maxMessagesPerRead`: a burst of tiny frames in one segment is handled a slice per turn, and
/// all of it, in order, even when nothing more arrives on the socket.
@Suite("Messages per read", .serialized, .timeLimit(.minutes(1)))
struct MessagesPerReadTests {
    @Test(
        "5000 frames in one write with a bound of 7 per read: every one echoed, in order; another client is served meanwhile"
    )
    func burstInOneWrite() throws {
        let server = try startServer(EchoApplication(), threads: 1) { $0.maxMessagesPerRead = 7 }
        defer { server.shutdown() }
        let flooder = try BlockingWebSocketClient(port: server.port)
        let other = try BlockingWebSocketClient(port: server.port)
        var burst: [UInt8] = []
        for i in 0..<5000 { burst += maskedTextFrame("\(i)") }
        try flooder.sendRaw(burst)
        try other.send(text: "me too")
        #expect(try other.receiveText() == "me too")
        for i in 0..<5000 {
            let text = try flooder.receiveText()
            if text != "\(i)" { Issue.record("frame \(i): got \(text)"); break }
        }
        #expect(flooder.isQuiet(milliseconds: 100))
    }

    func maskedTextFrame(_ text: String) -> [UInt8] {
        let payload = Array(text.utf8)
        let key: [UInt8] = [1, 2, 3, 4]
        return [0x81, 0x80 | UInt8(payload.count)] + key + payload.enumerated().map { $0.element ^ key[$0.offset % 4] }
    }
}
