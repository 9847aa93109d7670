import ChorusJSON
import ChorusSocketIO
import ChorusTestSupport
import Testing

private func encoded(_ p: SocketIOPacket) -> String { text(p.encode().text) }

private func decodeOne(_ s: String) throws -> SocketIOPacket {
    var d = SocketIODecoder()
    guard let p = try d.decode(text: s) else {
        Issue.record("packet unexpectedly awaits attachments")
        throw SocketIOProtocolError.emptyPacket
    }
    return p
}

private let placeholder0: JSONValue = ["_placeholder": true, "num": 0]

@Suite("Socket.IO v5 encoding (protocol README examples)")
struct SocketIOEncodingTests {
    @Test func connectMainNamespace() {
        #expect(encoded(.connect()) == "0")
    }

    @Test func connectWithNamespaceAndAuth() {
        #expect(encoded(.connect(namespace: "/admin", auth: ["token": "123"])) == #"0/admin,{"token":"123"}"#)
    }

    @Test func connectReply() {
        #expect(encoded(.connected(sid: "oSO0OpakMV_3jnilAAAA")) == #"0{"sid":"oSO0OpakMV_3jnilAAAA"}"#)
    }

    @Test func connectError() {
        #expect(encoded(.connectError(message: "Not authorized")) == #"4{"message":"Not authorized"}"#)
        #expect(
            encoded(.connectError(namespace: "/admin", message: "no", data: ["code": 3]))
                == #"4/admin,{"message":"no","data":{"code":3}}"#)
    }

    @Test func disconnectNamespace() {
        #expect(encoded(.disconnect(namespace: "/admin")) == "1/admin,")
        #expect(encoded(.disconnect()) == "1")
    }

    @Test func eventMainNamespace() {
        #expect(encoded(.event("foo")) == #"2["foo"]"#)
    }

    @Test func eventWithNamespace() {
        #expect(encoded(.event(namespace: "/admin", "bar")) == #"2/admin,["bar"]"#)
    }

    @Test func eventWithAckId() {
        #expect(encoded(.event("foo", ackId: 12)) == #"212["foo"]"#)
    }

    @Test func ack() {
        #expect(encoded(.ack(id: 1, ["bar"])) == #"31["bar"]"#)
        #expect(encoded(.ack(namespace: "/admin", id: 13, ["bar"])) == #"3/admin,13["bar"]"#)
    }

    @Test func binaryEvent() {
        let (t, atts) = SocketIOPacket.event("baz", [.binary([1, 2, 3])]).encode()
        #expect(text(t) == #"51-["baz",{"_placeholder":true,"num":0}]"#)
        #expect(atts == [[1, 2, 3]])
    }

    @Test func binaryEventWithNamespaceAndAckId() {
        let (t, atts) = SocketIOPacket.event(namespace: "/admin", "baz", [.binary([9])], ackId: 456).encode()
        #expect(text(t) == #"51-/admin,456["baz",{"_placeholder":true,"num":0}]"#)
        #expect(atts == [[9]])
    }

    @Test func binaryAck() {
        let (t, atts) = SocketIOPacket.ack(namespace: "/admin", id: 456, [.binary([7, 7])]).encode()
        #expect(text(t) == #"61-/admin,456[{"_placeholder":true,"num":0}]"#)
        #expect(atts == [[7, 7]])
    }

    @Test func multipleAttachmentsAreNumberedDepthFirst() {
        let p = SocketIOPacket.event("up", [["a": .binary([1]), "b": [.binary([2])]], .binary([3])])
        let (t, atts) = p.encode()
        #expect(
            text(t)
                == #"53-["up",{"a":{"_placeholder":true,"num":0},"b":[{"_placeholder":true,"num":1}]},{"_placeholder":true,"num":2}]"#
        )
        #expect(atts == [[1], [2], [3]])
        #expect(p.attachments == atts)
        #expect(p.data?.binaryCount == 3)
    }

    @Test func engineIOPrefix() {
        #expect(text(SocketIOPacket.event("foo").encode(engineIOPrefix: true).text) == #"42["foo"]"#)
        let (t, attachments) = SocketIOPacket.event("b", [.binary([5])]).encode(engineIOPrefix: true)
        #expect(text(t) == #"451-["b",{"_placeholder":true,"num":0}]"#)
        #expect(attachments == [[5]])
    }
}

@Suite("Socket.IO v5 decoding (protocol README examples)")
struct SocketIODecodingTests {
    @Test func connectMainNamespace() throws {
        #expect(try decodeOne("0") == SocketIOPacket(type: .connect))
    }

    @Test func connectWithNamespaceAndAuth() throws {
        let p = try decodeOne(#"0/admin,{"token":"123"}"#)
        #expect(p == .connect(namespace: "/admin", auth: ["token": "123"]))
    }

    @Test func connectReply() throws {
        #expect(try decodeOne(#"0{"sid":"oSO0OpakMV_3jnilAAAA"}"#) == .connected(sid: "oSO0OpakMV_3jnilAAAA"))
    }

    @Test func connectError() throws {
        #expect(try decodeOne(#"4{"message":"Not authorized"}"#) == .connectError(message: "Not authorized"))
        #expect(try decodeOne(#"4"legacy string""#).data == "legacy string")
    }

    @Test func disconnectNamespace() throws {
        #expect(try decodeOne("1/admin,") == .disconnect(namespace: "/admin"))
        #expect(try decodeOne("1/admin") == .disconnect(namespace: "/admin"))
        #expect(try decodeOne("1") == .disconnect())
    }

    @Test func eventMainNamespace() throws {
        let p = try decodeOne(#"2["foo"]"#)
        #expect(p == .event("foo"))
        #expect(p.event?.name == "foo")
        #expect(p.event?.args.isEmpty == true)
    }

    @Test func eventWithNamespace() throws {
        #expect(try decodeOne(#"2/admin,["bar"]"#) == .event(namespace: "/admin", "bar"))
    }

    @Test func eventWithAckId() throws {
        let p = try decodeOne(#"212["foo"]"#)
        #expect(p.ackId == 12)
        #expect(p == .event("foo", ackId: 12))
    }

    @Test func eventArguments() throws {
        let p = try decodeOne(#"2["chat",{"text":"hi"},3]"#)
        #expect(p.event?.name == "chat")
        #expect(Array(p.event!.args) == [["text": "hi"], 3])
    }

    @Test func ack() throws {
        #expect(try decodeOne(#"31["bar"]"#) == .ack(id: 1, ["bar"]))
        #expect(try decodeOne(#"3/admin,13["bar"]"#) == .ack(namespace: "/admin", id: 13, ["bar"]))
    }

    @Test func binaryEventWaitsForAttachment() throws {
        var d = SocketIODecoder()
        #expect(try d.decode(text: #"51-["baz",{"_placeholder":true,"num":0}]"#) == nil)
        #expect(d.isAwaitingAttachments)
        let p = try d.decode(binary: [1, 2, 3])
        #expect(p == SocketIOPacket(type: .binaryEvent, data: ["baz", .binary([1, 2, 3])]))
        #expect(!d.isAwaitingAttachments)
    }

    @Test func binaryEventWithNamespaceAndAckId() throws {
        var d = SocketIODecoder()
        #expect(try d.decode(text: #"51-/admin,456["baz",{"_placeholder":true,"num":0}]"#) == nil)
        let p = try #require(try d.decode(binary: [4]))
        #expect(p.type == .binaryEvent)
        #expect(p.namespace == "/admin")
        #expect(p.ackId == 456)
        #expect(p.data == ["baz", .binary([4])])
    }

    @Test func binaryAck() throws {
        var d = SocketIODecoder()
        #expect(try d.decode(text: #"61-/admin,456[{"_placeholder":true,"num":0}]"#) == nil)
        let p = try #require(try d.decode(binary: [0xFF]))
        #expect(p == SocketIOPacket(type: .binaryAck, namespace: "/admin", ackId: 456, data: [.binary([0xFF])]))
    }

    @Test func multipleAttachmentsInOrder() throws {
        var d = SocketIODecoder()
        #expect(try d.decode(text: #"52-["x",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]"#) == nil)
        #expect(try d.decode(binary: [0]) == nil)
        let p = try #require(try d.decode(binary: [1]))
        #expect(p.data == ["x", .binary([1]), .binary([0])])
    }

    @Test func binaryPacketWithZeroAttachmentsCompletesImmediately() throws {
        #expect(try decodeOne(#"50-["x",1]"#).data == ["x", 1])
    }

    @Test func placeholderInPlainEventStaysAnObject() throws {
        #expect(try decodeOne(#"2["x",{"_placeholder":true,"num":0}]"#).data == ["x", placeholder0])
    }

    @Test func decoderIsReusableAcrossPackets() throws {
        var d = SocketIODecoder()
        #expect(try d.decode(text: #"2["a"]"#) == .event("a"))
        #expect(try d.decode(text: #"51-["b",{"_placeholder":true,"num":0}]"#) == nil)
        #expect(try d.decode(binary: [1])?.event?.name == "b")
        #expect(try d.decode(text: #"2["c"]"#) == .event("c"))
    }
}

@Suite("Socket.IO v5 validation")
struct SocketIOValidationTests {
    @Test func emptyPacketRejected() {
        #expect(sioError("") == .emptyPacket)
    }

    @Test func badTypeRejected() {
        #expect(sioError("7") == .unknownPacketType(UInt8(ascii: "7")))
        #expect(sioError(#"x["a"]"#) == .unknownPacketType(UInt8(ascii: "x")))
    }

    @Test func badAttachmentCountRejected() {
        #expect(sioError(#"5["a"]"#) == .invalidAttachmentCount)
        #expect(sioError(#"5-["a"]"#) == .invalidAttachmentCount)
        #expect(sioError(#"51["a"]"#) == .invalidAttachmentCount)
        #expect(sioError("51") == .invalidAttachmentCount)
        #expect(sioError(#"59999999999-["a"]"#) == .invalidAttachmentCount)
    }

    @Test func tooManyAttachmentsRejected() {
        #expect(sioError(#"511-["a"]"#) == .tooManyAttachments(count: 11, limit: 10))
        #expect(sioError(#"53-["a"]"#, options: .init(maxAttachments: 2)) == .tooManyAttachments(count: 3, limit: 2))
    }

    @Test func namespaceNotStartingWithSlashRejected() {
        #expect(sioError(#"2admin,["a"]"#) == .invalidNamespace)
        #expect(sioError(#"0admin,{}"#) == .invalidNamespace)
    }

    @Test func ackIdOverflowRejected() {
        #expect(sioError(#"299999999999999999999["a"]"#) == .ackIdOverflow)
        #expect(sioError(#"29007199254740992["a"]"#) == .ackIdOverflow)
        #expect(sioError(#"3100["a"]"#, options: .init(maxAckId: 99)) == .ackIdOverflow)
        #expect(sioError(#"29007199254740991["a"]"#) == nil)
    }

    @Test func ackIdOnConnectOrDisconnectRejected() {
        #expect(sioError("01") == .unexpectedAckId)
        #expect(sioError("1/a,3") == .unexpectedAckId)
    }

    @Test func ackWithoutIdRejected() {
        #expect(sioError(#"3["a"]"#) == .missingAckId)
    }

    @Test func payloadNotJSONRejected() {
        #expect(sioError(#"2["a""#) == .invalidJSON(JSONError(.unexpectedEnd, at: 4)))
        #expect(sioError(#"2["a"]x"#) == .invalidJSON(JSONError(.trailingData, at: 5)))
        if case .invalidJSON = sioError("2{'a':1}") {} else { Issue.record("expected invalidJSON") }
    }

    @Test func nonArrayEventPayloadRejected() {
        #expect(sioError(#"2{"a":1}"#) == .eventPayloadNotArray)
        #expect(sioError(#"2"foo""#) == .eventPayloadNotArray)
        #expect(sioError("2") == .missingPayload)
    }

    @Test func emptyEventArrayRejected() {
        #expect(sioError("2[]") == .emptyEventPayload)
    }

    @Test func eventNameNotStringRejected() {
        #expect(sioError("2[1]") == .eventNameNotString)
        #expect(sioError("2[null]") == .eventNameNotString)
        #expect(sioError(#"2[{"a":1}]"#) == .eventNameNotString)
    }

    @Test func reservedEventNamesRejected() {
        for name in ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"] {
            #expect(sioError("2[\"\(name)\"]") == .reservedEventName(name))
        }
        #expect(sioError(#"2["connected"]"#) == nil)
    }

    @Test func connectPayloadMustBeObject() {
        #expect(sioError(#"0["a"]"#) == .invalidPayload(.connect))
        #expect(sioError(#"0"a""#) == .invalidPayload(.connect))
    }

    @Test func disconnectMustHaveNoPayload() {
        #expect(sioError("1{}") == .invalidPayload(.disconnect))
    }

    @Test func connectErrorPayloadMustBeObjectOrString() {
        #expect(sioError("4[1]") == .invalidPayload(.connectError))
        #expect(sioError("4") == .missingPayload)
    }

    @Test func ackPayloadMustBeArray() {
        #expect(sioError(#"31{"a":1}"#) == .invalidPayload(.ack))
    }

    @Test func placeholderOutOfRangeRejected() throws {
        var d = SocketIODecoder()
        #expect(try d.decode(text: #"51-["x",{"_placeholder":true,"num":1}]"#) == nil)
        #expect(throws: SocketIOProtocolError.invalidPlaceholder) { try d.decode(binary: [1]) }
        #expect(sioError(#"50-["x",{"_placeholder":true,"num":0}]"#) == .invalidPlaceholder)
        var e = SocketIODecoder()
        _ = try e.decode(text: #"51-["x",{"_placeholder":true,"num":"0"}]"#)
        #expect(throws: SocketIOProtocolError.invalidPlaceholder) { try e.decode(binary: [1]) }
    }

    @Test func binaryFrameWithoutPendingPacketRejected() {
        var d = SocketIODecoder()
        #expect(throws: SocketIOProtocolError.unexpectedBinaryFrame) { try d.decode(binary: [1]) }
    }

    @Test func textFrameWhileAwaitingAttachmentsRejected() throws {
        var d = SocketIODecoder()
        _ = try d.decode(text: #"51-["x",{"_placeholder":true,"num":0}]"#)
        #expect(throws: SocketIOProtocolError.unexpectedTextFrame) { try d.decode(text: #"2["y"]"#) }
        #expect(!d.isAwaitingAttachments)  // reset after the error
    }

    @Test func invalidUTF8NamespaceRejected() {
        var d = SocketIODecoder()
        #expect(throws: SocketIOProtocolError.invalidUTF8) {
            try d.decode(text: [UInt8(ascii: "0"), 0x2F, 0xFF, 0x2C])
        }
    }

    @Test func jsonDepthLimitApplies() {
        let deep = "2[\"a\"," + String(repeating: "[", count: 70) + String(repeating: "]", count: 71)
        if case .invalidJSON(let e) = sioError(deep) {
            #expect(e.kind == .depthLimitExceeded)
        } else {
            Issue.record("expected depth error")
        }
    }
}

@Suite("Socket.IO property-style round trips")
struct SocketIORoundTripTests {
    @Test func randomBinaryPacketsRoundTrip() throws {
        var rng = SplitMix64(seed: 2024)
        var d = SocketIODecoder(options: .init(maxAttachments: 1000))
        for i in 0..<500 {
            let ns = Bool.random(using: &rng) ? "/" : "/ns\(i % 7)"
            let ack: Int? = Bool.random(using: &rng) ? Int.random(in: 0...1_000_000, using: &rng) : nil
            let args = (0..<Int.random(in: 0...4, using: &rng)).map { _ in RandomJSON.value(&rng, binary: true) }
            let isAck = Bool.random(using: &rng)
            let packet: SocketIOPacket =
                isAck
                ? .ack(namespace: ns, id: ack ?? 1, args)
                : .event(namespace: ns, "evt", args, ackId: ack)
            let (t, atts) = packet.encode()
            var result = try d.decode(text: t)
            for a in atts {
                #expect(result == nil)
                result = try d.decode(binary: a)
            }
            let back = try #require(result)
            #expect(back.namespace == packet.namespace)
            #expect(back.ackId == packet.ackId)
            #expect(back.data == packet.data)
            #expect(back.attachments == atts)
            let expectedType: SocketIOPacketType =
                atts.isEmpty
                ? packet.type : (packet.type == .event ? .binaryEvent : .binaryAck)
            #expect(back.type == expectedType)
        }
    }
}
