import ChorusJSON
import ChorusWebSocket
import Testing

@testable import ChorusSocketIO

@Suite("Socket.IO session state machine")
struct SessionCoreTests {
    @Test func connectEventAckDisconnect() {
        var core = SessionCore()
        #expect(core.receive(text: "40") == .connect(namespace: "/", auth: nil))
        #expect(core.receive(text: #"40/admin,{"token":"t"}"#) == .connect(namespace: "/admin", auth: ["token": "t"]))
        #expect(
            core.receive(text: #"42["hi",1,{"a":true}]"#)
                == .event(namespace: "/", name: "hi", args: [1, ["a": true]], ackId: nil))
        #expect(core.receive(text: #"42/admin,7["x"]"#) == .event(namespace: "/admin", name: "x", args: [], ackId: 7))
        #expect(core.receive(text: #"433["ok"]"#) == .ack(namespace: "/", id: 3, args: ["ok"]))
        #expect(core.receive(text: "41/admin,") == .disconnect(namespace: "/admin"))
    }

    @Test func engineIOPackets() {
        var core = SessionCore()
        #expect(core.receive(text: "3") == .pong)
        #expect(core.receive(text: "2probe") == .ping(Array("probe".utf8)))
        #expect(core.receive(text: "1") == .close)
        #expect(core.receive(text: "6") == .none)
        if case .invalid = core.receive(text: "5") {} else { Issue.record("upgrade must be refused") }
        if case .invalid = core.receive(text: "0{}") {} else { Issue.record("open from client must be refused") }
    }

    @Test func binaryEventWithAttachments() {
        var core = SessionCore()
        #expect(core.receive(text: #"452-["up",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#) == .none)
        #expect(core.receive(binary: [1, 2]) == .none)
        #expect(
            core.receive(binary: [3])
                == .event(namespace: "/", name: "up", args: [.binary([1, 2]), .binary([3])], ackId: nil))
        // a binary ack
        #expect(core.receive(text: #"461-5[{"_placeholder":true,"num":0}]"#) == .none)
        #expect(core.receive(binary: [9]) == .ack(namespace: "/", id: 5, args: [.binary([9])]))
    }

    @Test(arguments: [
        "42garbage", "4", "47", "4[", #"42{"a":1}"#, #"42[1]"#, #"42["connect"]"#, "9", "", #"43["x"]"#,
        #"44{"message":"x"}"#, "45-[]", "41234567890123456789[\"x\"]", #"452-["x"]"#,
    ])
    func malformedTextIsInvalid(_ text: String) {
        var core = SessionCore()
        let input = core.receive(text: text)
        if text == #"452-["x"]"# {
            // Announces attachments: awaits them; a text frame now is a violation.
            #expect(input == .none)
            // Engine.IO packets may interleave; a Socket.IO packet may not.
            #expect(core.receive(text: "3") == .pong)
            if case .invalid = core.receive(text: #"42["y"]"#) {
            } else {
                Issue.record("text while awaiting attachments")
            }
            return
        }
        if case .invalid = input {} else { Issue.record("\(text) gave \(input)") }
    }

    @Test func unexpectedBinaryIsInvalid() {
        var core = SessionCore()
        if case .invalid = core.receive(binary: [1]) {} else { Issue.record("stray attachment accepted") }
    }

    @Test func tooManyAttachments() {
        var core = SessionCore(maxPayload: 1000, maxAttachments: 2)
        if case .invalid = core.receive(text: #"453-["x"]"#) {} else { Issue.record("3 attachments over a limit of 2") }
    }

    @Test func maxPayload() {
        var core = SessionCore(maxPayload: 10)
        #expect(core.receive(text: #"42["abcdefgh"]"#) == .tooLarge)
        #expect(core.receive(text: #"42["a"]"#) == .event(namespace: "/", name: "a", args: [], ackId: nil))
        #expect(core.receive(binary: [UInt8](repeating: 0, count: 11)) == .tooLarge)
    }

    private let timing = Heartbeat.Timing(interval: 100, timeout: 50)

    @Test func heartbeatPingThenTimeout() {
        var hb = Heartbeat(timing, now: 0)
        #expect(hb.tick(now: 99, timing) == .none)
        #expect(hb.tick(now: 100, timing) == .sendPing)
        #expect(hb.awaitingPong)
        #expect(hb.tick(now: 149, timing) == .none)
        #expect(hb.tick(now: 150, timing) == .timeout)
    }

    @Test func heartbeatPongReschedules() {
        var hb = Heartbeat(timing, now: 0)
        #expect(hb.tick(now: 100, timing) == .sendPing)
        hb.pongReceived(now: 120, timing)
        #expect(!hb.awaitingPong)
        #expect(hb.tick(now: 219, timing) == .none)
        #expect(hb.tick(now: 220, timing) == .sendPing)
        // an unsolicited pong changes nothing
        var idle = Heartbeat(timing, now: 0)
        idle.pongReceived(now: 10, timing)
        #expect(idle.deadline == 100)
    }

    @Test func engineIOErrorsMatchSocketIO() {
        func body(_ r: HTTPResponse?) -> String? { r.map { String(decoding: $0.body, as: UTF8.self) } }
        let polling = HTTPRequestHead(method: "GET", target: "/socket.io/?EIO=4&transport=polling")
        #expect(body(SocketIOServer.verify(polling, isUpgrade: false)) == #"{"code":0,"message":"Transport unknown"}"#)
        let v3 = HTTPRequestHead(method: "GET", target: "/socket.io/?EIO=3&transport=websocket")
        #expect(
            body(SocketIOServer.verify(v3, isUpgrade: true)) == #"{"code":5,"message":"Unsupported protocol version"}"#)
        let sid = HTTPRequestHead(method: "GET", target: "/socket.io/?EIO=4&transport=websocket&sid=abc")
        #expect(body(SocketIOServer.verify(sid, isUpgrade: true)) == #"{"code":1,"message":"Session ID unknown"}"#)
        let noUpgrade = HTTPRequestHead(method: "GET", target: "/socket.io/?EIO=4&transport=websocket")
        #expect(body(SocketIOServer.verify(noUpgrade, isUpgrade: false)) == #"{"code":3,"message":"Bad request"}"#)
        let post = HTTPRequestHead(method: "POST", target: "/socket.io/?EIO=4&transport=websocket")
        #expect(body(SocketIOServer.verify(post, isUpgrade: false)) == #"{"code":2,"message":"Bad handshake method"}"#)
        #expect(SocketIOServer.verify(noUpgrade, isUpgrade: true) == nil)
        #expect(SocketIOServer.verify(polling, isUpgrade: false)?.status == 400)
    }
}
