// Microbenchmarks for the pure protocol layer (ChorusWebSocket) and the encode-once frame
// (ChorusServer.OutgoingFrame). One "op" is named in each benchmark; every benchmark runs
// `scalingFactor` ops per iteration, so the scaled (`*`) figures are per op.
import Benchmark
import ChorusDeflate
import ChorusServer
import ChorusUTF8
import ChorusWebSocket

// MARK: - Inputs

/// Deterministic filler (no Foundation, no randomness between runs).
func bytes(count: Int, seed: UInt32 = 0x9E37_79B9) -> [UInt8] {
    var x = seed
    return (0..<count).map { _ in
        x ^= x << 13; x ^= x >> 17; x ^= x << 5
        return UInt8(truncatingIfNeeded: x)
    }
}

func asciiText(count: Int) -> [UInt8] {
    let alphabet = Array("The quick brown fox jumps over the lazy dog. 0123456789 {\"id\":42}\n".utf8)
    return (0..<count).map { alphabet[$0 % alphabet.count] }
}

/// Greek, CJK, emoji and ASCII mixed (1-, 2-, 3- and 4-byte sequences), cut on a character boundary.
func multiByteText(count: Int) -> [UInt8] {
    let sample = Array("Καλημέρα κόσμε 你好，世界 こんにちは 🎉🚀😀 chat ok; ".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(count + sample.count)
    while out.count < count { out.append(contentsOf: sample) }
    // Trim back to a character boundary at or below `count`.
    var n = count
    while n > 0 && (out[n] & 0xC0) == 0x80 { n -= 1 }
    return Array(out[..<n])
}

/// A buffer of `frames` masked client frames (binary, FIN, distinct keys) of `payload` bytes each.
func maskedFrames(opcode: WebSocketOpcode = .binary, payload: [UInt8], frames: Int) -> [UInt8] {
    var out: [UInt8] = []
    for i in 0..<frames {
        let key = UInt32(truncatingIfNeeded: 0x3795_1A2B &* UInt32(i &+ 1))
        out += WebSocketFrameEncoder.maskedFrame(opcode: opcode, payload: payload, maskKey: key)
    }
    return out
}

/// A typical ~1 KiB chat message as JSON (what a client sends / the server fans out).
let chatJSON: [UInt8] = {
    var s = #"{"type":"message:new","room":"project-4711","message":{"id":"01HZX3K8Q9V7C2M5N8P4R6T1YB","#
    s += #""author":{"id":"u_18233","name":"Ana Lúcia Ferreira","avatar":"https://cdn.example.com/a/18233.png"},"#
    s += #""createdAt":"2025-11-25T13:17:42.123Z","text":"#
    s += #""Morning all! Quick update on the release: the websocket gateway passed the soak test overnight "#
    s += #"(10k connections, p99 fan-out under 4 ms). I've pushed the config change for the deflate threshold "#
    s += #"and bumped the backpressure limit to 1 MiB per client. Remaining items: rotate the TLS certs on the "#
    s += #"edge boxes, update the runbook, and double-check the room membership cleanup on reconnect. "#
    s += #"Ping me if you see anything odd in the dashboards today.","#
    s += #""clientId":"c-7f3a9e0b41d2","replyTo":{"id":"01HZX3JZ5M2QK8W4T6Y8B0C2D4","author":"u_1002","#
    s += #""excerpt":"Is the gateway ready for tomorrow's demo?"},"#
    s += #""mentions":["u_1002","u_20931"],"attachments":[],"reactions":{"👍":3,"🎉":1},"#
    s += #""thread":{"parentId":null,"replyCount":0},"edited":false,"flags":{"pinned":false,"system":false}}}"#
    precondition((1000...1024).contains(s.utf8.count), "chat JSON is \(s.utf8.count) bytes")
    return Array(s.utf8)
}()

let upgradeRequest: [UInt8] = Array(
    ("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n" + "Host: chat.example.com\r\n" + "Connection: Upgrade\r\n"
        + "Pragma: no-cache\r\n" + "Cache-Control: no-cache\r\n"
        + "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n"
        + "Upgrade: websocket\r\n" + "Origin: https://chat.example.com\r\n" + "Sec-WebSocket-Version: 13\r\n"
        + "Accept-Encoding: gzip, deflate, br, zstd\r\n" + "Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n"
        + "Cookie: session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1XzE4MjMzIn0.c2lnbmF0dXJl; theme=dark\r\n"
        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        + "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" + "\r\n").utf8)

// MARK: - Benchmarks

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 100_000)

    // 1. Frame parse + unmask. One op = one frame.
    //
    // Unmasking is an XOR with the frame's key, so parsing the same buffer again re-masks it: every
    // pass does the full header parse + unmask work with no setup in between. Binary frames, so the
    // (alternately masked/plain) payload content does not matter. The reader is reused: the steady
    // state must allocate nothing.
    for (label, size, framesInBuffer) in [("16 B", 16, 1000), ("1 KiB", 1024, 1000), ("64 KiB", 64 * 1024, 8)] {
        // Built once; the buffer and the reader live across iterations.
        let state = FrameState(
            buffer: maskedFrames(payload: bytes(count: size), frames: framesInBuffer),
            reader: WebSocketMessageReader(maxMessageSize: 1 << 20))
        Benchmark("Frame parse+unmask binary \(label)") { benchmark in
            let passes = benchmark.configuration.scalingFactor.rawValue / framesInBuffer
            var total = 0
            benchmark.startMeasurement()
            for _ in 0..<passes {
                let consumed = try state.buffer.withUnsafeMutableBytes { raw in
                    try state.reader.read(raw) { event in
                        if case .binary(let p) = event { total &+= p.count }
                        return true
                    }
                }
                precondition(consumed == state.buffer.count)
            }
            benchmark.stopMeasurement()
            precondition(total == passes * framesInBuffer * size)
            blackHole(total)
        }
    }

    // Text frames add UTF-8 validation (§8.1); the masked bytes are restored outside the measurement.
    do {
        let pristine = maskedFrames(opcode: .text, payload: asciiText(count: 1024), frames: 1000)
        textFramesBenchmark(
            "Frame parse+unmask+UTF-8 text 1 KiB", pristine: pristine,
            reader: WebSocketMessageReader(maxMessageSize: 1 << 20), expectedTotal: 1000 * 1024)
    }

    // 2. Frame encode. One op = one frame.
    for (label, size) in [("16 B", 16), ("1 KiB", 1024)] {
        Benchmark("Frame encode writeHeader+memcpy \(label)") { benchmark in
            let payload = bytes(count: size)
            let out = UnsafeMutableRawBufferPointer.allocate(
                byteCount: WebSocketFrameEncoder.maxHeaderSize + size, alignment: 16)
            defer { out.deallocate() }
            benchmark.startMeasurement()
            payload.withUnsafeBytes { src in
                for _ in benchmark.scaledIterations {
                    let h = WebSocketFrameEncoder.writeHeader(
                        to: out.baseAddress!, opcode: .text, payloadLength: src.count)
                    (out.baseAddress! + h).copyMemory(from: src.baseAddress!, byteCount: src.count)
                    blackHole(out.baseAddress!)
                }
            }
        }

        // One allocation per frame by design: that buffer is what every recipient's queue shares.
        Benchmark("OutgoingFrame.encode \(label)") { benchmark in
            let payload = bytes(count: size)
            benchmark.startMeasurement()
            payload.withUnsafeBytes { src in
                for _ in benchmark.scaledIterations {
                    blackHole(OutgoingFrame.encode(.text, src))
                }
            }
        }
    }

    // 3. UTF-8 validation. One op = one whole-message validation.
    let utf8Inputs: [(String, [UInt8])] = [
        ("ASCII 1 KiB", asciiText(count: 1024)),
        ("ASCII 64 KiB", asciiText(count: 64 * 1024)),
        ("multi-byte 1 KiB", multiByteText(count: 1024)),
        ("multi-byte 64 KiB", multiByteText(count: 64 * 1024)),
    ]
    for (label, input) in utf8Inputs {
        precondition(input.withUnsafeBytes { UTF8Validator.validate($0) }, "test input must be valid UTF-8")
        Benchmark("UTF-8 validate \(label)") { benchmark in
            input.withUnsafeBytes { raw in
                for _ in benchmark.scaledIterations {
                    blackHole(UTF8Validator.validate(raw))
                }
            }
        }
    }

    // 4. Opening handshake. One op = one request.
    Benchmark("Handshake parse+validate+101") { benchmark in
        var parser = HTTPRequestParser(maxHeaderSize: 8192)
        upgradeRequest.withUnsafeBytes { raw in
            for _ in benchmark.scaledIterations {
                guard case .complete(let head, _) = parser.parse(raw) else { fatalError("parse") }
                guard case .success(let request) = WebSocketHandshake.validate(head, subprotocols: []) else {
                    fatalError("validate")
                }
                blackHole(
                    WebSocketHandshake.switchingProtocolsResponse(
                        request, extensions: "permessage-deflate; server_no_context_takeover"))
            }
        }
    }

    // The three steps separately, to see where time and allocations go.
    Benchmark("Handshake HTTPRequestParser.parse") { benchmark in
        var parser = HTTPRequestParser(maxHeaderSize: 8192)
        upgradeRequest.withUnsafeBytes { raw in
            for _ in benchmark.scaledIterations {
                guard case .complete(let head, _) = parser.parse(raw) else { fatalError("parse") }
                blackHole(head)
            }
        }
    }

    Benchmark("Handshake validate (SHA-1 accept)") { benchmark in
        var parser = HTTPRequestParser(maxHeaderSize: 8192)
        guard case .complete(let head, _) = upgradeRequest.withUnsafeBytes({ parser.parse($0) }) else {
            fatalError("parse")
        }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            guard case .success(let request) = WebSocketHandshake.validate(head, subprotocols: []) else {
                fatalError("validate")
            }
            blackHole(request)
        }
    }

    Benchmark("Handshake switchingProtocolsResponse") { benchmark in
        var parser = HTTPRequestParser(maxHeaderSize: 8192)
        guard case .complete(let head, _) = upgradeRequest.withUnsafeBytes({ parser.parse($0) }),
            case .success(let request) = WebSocketHandshake.validate(head, subprotocols: [])
        else { fatalError("handshake") }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(
                WebSocketHandshake.switchingProtocolsResponse(
                    request, extensions: "permessage-deflate; server_no_context_takeover"))
        }
    }

    // 6. permessage-deflate of a ~1 KiB chat JSON. One op = one message. Streams and output
    // buffers are reused (the output keeps its capacity), as the server does.
    let deflater = PerMessageDeflater(windowBits: 15, memLevel: 8, noContextTakeover: true)
    Benchmark("Deflate 1 KiB chat JSON (no context takeover)") { benchmark in
        var out: [UInt8] = []
        out.reserveCapacity(4096)
        chatJSON.withUnsafeBytes { input in
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                out.removeAll(keepingCapacity: true)
                deflater.compressMessage(input, into: &out)
                blackHole(out.count)
            }
        }
    }

    let compressedChat = deflater.compressMessage(chatJSON)
    let inflater = PerMessageInflater(windowBits: 15, noContextTakeover: true)
    Benchmark("Inflate 1 KiB chat JSON (no context takeover)") { benchmark in
        var out: [UInt8] = []
        out.reserveCapacity(4096)
        try compressedChat.withUnsafeBytes { input in
            // The first one allocates the window.
            try inflater.inflate(input, isFinal: true, into: &out, limit: 1 << 20)
            precondition(out == chatJSON)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                out.removeAll(keepingCapacity: true)
                try inflater.inflate(input, isFinal: true, into: &out, limit: 1 << 20)
                blackHole(out.count)
            }
        }
    }

    // The server's receive path for a compressed message: reader + inflater + assembly buffer
    // (each frame is one whole compressed message, RSV1 set). One op = one message.
    do {
        let compressed = PerMessageDeflater(windowBits: 15, memLevel: 8, noContextTakeover: true).compressMessage(
            chatJSON)
        var pristine = maskedFrames(opcode: .text, payload: compressed, frames: 1000)
        let frameLength = pristine.count / 1000
        for f in 0..<1000 { pristine[f * frameLength] |= 0x40 }
        textFramesBenchmark(
            "Frame parse+inflate+UTF-8 compressed text 1 KiB", pristine: pristine,
            reader: WebSocketMessageReader(
                maxMessageSize: 1 << 20,
                inflater: PerMessageInflater(windowBits: 15, noContextTakeover: true)),
            expectedTotal: 1000 * chatJSON.count)
    }
}

/// Parses 1,000 masked text frames per iteration; the masked bytes are restored outside the measurement.
func textFramesBenchmark(_ name: String, pristine: [UInt8], reader: WebSocketMessageReader, expectedTotal: Int) {
    let state = FrameState(buffer: pristine, reader: reader)
    Benchmark(name) { benchmark in
        state.restore(from: pristine)
        var total = 0
        benchmark.startMeasurement()
        _ = try state.buffer.withUnsafeMutableBytes { raw in
            try state.reader.read(raw) { event in
                if case .text(let p) = event { total &+= p.count }
                return true
            }
        }
        benchmark.stopMeasurement()
        precondition(total == expectedTotal, "\(total)")
        blackHole(total)
    }
}

/// A read buffer and its reader, shared by all iterations of one benchmark (the reader is reused,
/// as on a connection).
final class FrameState {
    var buffer: [UInt8]
    var reader: WebSocketMessageReader
    init(buffer: [UInt8], reader: WebSocketMessageReader) {
        self.buffer = buffer
        self.reader = reader
    }

    /// Copies the masked frames back in place (no allocation: the buffer is uniquely referenced).
    func restore(from pristine: [UInt8]) {
        buffer.withUnsafeMutableBytes { dst in pristine.withUnsafeBytes { dst.copyMemory(from: $0) } }
    }
}
