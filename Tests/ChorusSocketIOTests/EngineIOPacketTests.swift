import ChorusSocketIO
import ChorusTestSupport
import Testing

@Suite("Engine.IO v4 packets")
struct EngineIOPacketTests {
    func decode(_ s: String) throws -> EngineIOPacket { try EngineIOPacket.decode(text: s) }

    @Test func openPacketEncodesHandshakeInOrder() {
        let p = EngineIOPacket.open(EngineIOHandshake(sid: "lv_VI97HAXpY6yYWAAAC"))
        #expect(
            p.encode()
                == .text(
                    bytes(
                        #"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
                    )))
    }

    @Test func openPacketDecodes() throws {
        let p = try decode(
            #"0{"sid":"abc","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,"maxPayload":5}"#)
        #expect(
            p
                == .open(
                    EngineIOHandshake(
                        sid: "abc", upgrades: ["websocket"], pingInterval: 300, pingTimeout: 200, maxPayload: 5)))
    }

    @Test func openPacketWithBadJSONIsRejected() {
        #expect(throws: EngineIOError.invalidOpenPayload) { try decode("0{") }
        #expect(throws: EngineIOError.invalidOpenPayload) { try decode(#"0{"sid":1}"#) }
    }

    @Test func closePacket() throws {
        #expect(try decode("1") == .close)
        #expect(EngineIOPacket.close.encode() == .text(bytes("1")))
    }

    @Test func pingPacket() throws {
        #expect(try decode("2") == .ping([]))
        #expect(EngineIOPacket.ping([]).encode() == .text(bytes("2")))
        #expect(EngineIOPacket.pingFrame == bytes("2"))
    }

    @Test func pongPacket() throws {
        #expect(try decode("3") == .pong([]))
        #expect(EngineIOPacket.pong([]).encode() == .text(bytes("3")))
    }

    @Test func probePingDecodesWithItsData() throws {
        #expect(try decode("2probe") == .ping(bytes("probe")))
        #expect(EngineIOPacket.pong(bytes("probe")).encode() == .text(bytes("3probe")))
    }

    @Test func textMessagePacket() throws {
        #expect(try decode("4hello") == .message(bytes("hello")))
        #expect(EngineIOPacket.message("hello").encode() == .text(bytes("4hello")))
        #expect(try decode("4") == .message([]))
    }

    @Test func binaryMessageIsRawBinaryFrame() {
        let p = EngineIOPacket.decode(binary: [1, 2, 3, 4])
        #expect(p == .binaryMessage([1, 2, 3, 4]))
        #expect(p.type == .message)
        #expect(p.encode() == .binary([1, 2, 3, 4]))
    }

    @Test func upgradeAndNoopPackets() throws {
        #expect(try decode("5") == .upgrade)
        #expect(try decode("6") == .noop)
        #expect(EngineIOPacket.noop.encode() == .text(bytes("6")))
    }

    @Test func emptyFrameIsRejected() {
        #expect(throws: EngineIOError.emptyFrame) { try decode("") }
    }

    @Test func unknownPacketTypeIsRejected() {
        #expect(throws: EngineIOError.unknownPacketType(UInt8(ascii: "7"))) { try decode("7") }
        #expect(throws: EngineIOError.unknownPacketType(UInt8(ascii: "b"))) { try decode("bAQI=") }
        #expect(throws: EngineIOError.unknownPacketType(UInt8(ascii: "/"))) { try decode("/") }
    }

    @Test func dataOnDatalessPacketsIsRejected() {
        #expect(throws: EngineIOError.unexpectedData(.close)) { try decode("1x") }
        #expect(throws: EngineIOError.unexpectedData(.noop)) { try decode("6x") }
    }

    @Test func messagePayloadIsZeroCopySlice() {
        let frame = bytes(#"42["a"]"#)
        frame.withUnsafeBytes { raw in
            let payload = EngineIOPacket.messagePayload(ofText: raw)
            #expect(payload.map(Array.init) == bytes(#"2["a"]"#))
            #expect(payload?.baseAddress == raw.baseAddress! + 1)
        }
        bytes("2").withUnsafeBytes { #expect(EngineIOPacket.messagePayload(ofText: $0) == nil) }
    }

    @Test func encodeTextAppends() {
        var out = bytes("prefix:")
        EngineIOPacket.message("m").encodeText(into: &out)
        #expect(text(out) == "prefix:4m")
    }

    @Test func sessionIdShape() {
        let alphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        var ids = Set<String>()
        for _ in 0..<200 {
            let id = EngineIOSessionID.generate()
            #expect(id.utf8.count == 15)
            #expect(id.allSatisfy { alphabet.contains($0) })
            ids.insert(id)
            let secret = EngineIOSessionID.generateSecret()
            #expect(secret.utf8.count == 20)
            #expect(secret.allSatisfy { alphabet.contains($0) })
            ids.insert(secret)
        }
        #expect(ids.count == 400)
    }

    /// An id is a small string: stored inline, its bytes in the String value itself. A String's
    /// second word has its top nibble 0xE for an ASCII small string (0xF for any small string).
    @Test func sessionIdIsASmallString() {
        let id = EngineIOSessionID.generate()
        let words = unsafeBitCast(id, to: (UInt64, UInt64).self)
        #expect(words.1 >> 61 == 0b111)
        let secret = EngineIOSessionID.generateSecret()
        #expect(unsafeBitCast(secret, to: (UInt64, UInt64).self).1 >> 61 != 0b111)
        // A socket id's room key in the main namespace is small too; one in "/chat" is not.
        let socketID = EngineIOSessionID.generateSocketID()
        #expect(socketID.utf8.count == 13)
        #expect(unsafeBitCast("/" + "#" + socketID, to: (UInt64, UInt64).self).1 >> 61 == 0b111)
        #expect(unsafeBitCast("/chat" + "#" + socketID, to: (UInt64, UInt64).self).1 >> 61 != 0b111)
    }

    @Test func sessionIdIsBase64OfRandomBytes() {
        // Not empty: ThreadSanitizer crashes on an empty generator passed `inout` to unspecialized
        // generic code (its address is no real one), as the ids' own generator once did.
        struct Zero: RandomNumberGenerator {
            var calls = 0
            mutating func next() -> UInt64 {
                calls += 1
                return 0
            }
        }
        struct Ones: RandomNumberGenerator {
            var calls = 0
            mutating func next() -> UInt64 {
                calls += 1
                return .max
            }
        }
        var z = Zero()
        var o = Ones()
        #expect(EngineIOSessionID.generate(using: &z) == "AAAAAAAAAAAAAAA")
        #expect(EngineIOSessionID.generate(using: &o) == "_______________")
        #expect(EngineIOSessionID.generate(length: 13, using: &o) == "_____________")
        #expect(EngineIOSessionID.generate(length: 3, using: &z) == "AAA")
        #expect(EngineIOSessionID.generateSecret(using: &z) == "AAAAAAAAAAAAAAAAAAAA")
        #expect(EngineIOSessionID.generateSecret(using: &o) == "____________________")
        var r1 = SplitMix64(seed: 1)
        var r2 = SplitMix64(seed: 1)
        #expect(EngineIOSessionID.generate(using: &r1) == EngineIOSessionID.generate(using: &r2))
    }
}
