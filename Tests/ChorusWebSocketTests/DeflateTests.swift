import CZlib
import ChorusTestSupport
import ChorusWebSocket
import Testing

@testable import ChorusDeflate

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Helpers

private let hello = Array("Hello".utf8)

/// Inflates one whole message given as frames (the last one final).
private func inflateFrames(_ inflater: PerMessageInflater, _ frames: [ArraySlice<UInt8>], limit: Int = 64 << 20) throws
    -> [UInt8]
{
    var out: [UInt8] = []
    for (i, frame) in frames.enumerated() {
        try frame.withUnsafeBytes { b in
            try inflater.inflate(b, isFinal: i == frames.count - 1, into: &out, limit: limit)
        }
    }
    return out
}

private func inflateMessage(_ inflater: PerMessageInflater, _ payload: [UInt8], limit: Int = 64 << 20) throws -> [UInt8]
{
    try inflateFrames(inflater, [payload[...]], limit: limit)
}

private func inflateError(_ inflater: PerMessageInflater, _ payload: [UInt8], limit: Int = 64 << 20)
    -> WebSocketInflateError?
{
    do { _ = try inflateMessage(inflater, payload, limit: limit); return nil } catch {
        return error as? WebSocketInflateError
    }
}

private func randomBytes(_ count: Int, _ rng: inout SplitMix64) -> [UInt8] {
    (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
}

private let words = [
    "hello", "world", "build", "green", "deploy", "ticket", "merged", "review", "the", "is", "ok", "now",
]
private func jsonMessage(_ i: Int, _ rng: inout SplitMix64) -> [UInt8] {
    let text = (0..<Int.random(in: 5...40, using: &rng)).map { _ in words.randomElement(using: &rng)! }.joined(
        separator: " ")
    let user = ["alice", "bob", "carol", "dave"].randomElement(using: &rng)!
    return Array(
        #"{"type":"message","room":"project-\#(i % 50)","user":{"id":\#(i &* 7919 % 100000),"name":"\#(user)"},"text":"\#(text)","ts":\#(1_700_000_000 + i),"tags":["chat","a"]}"#
            .utf8)
}
private func jsonUpdate(_ rows: Int) -> [UInt8] {
    Array(
        ("["
            + (0..<rows).map { #"{"id":\#($0),"status":"open","title":"Task \#($0)","assignee":"user\#($0 % 17)"}"# }
            .joined(separator: ",") + "]").utf8)
}

/// zlib allocator that tracks live allocations (to measure memory and prove streams are reused).
final class AllocCounter {
    var live: [UInt: Int] = [:]
    var allocations = 0
    var liveBytes: Int { live.values.reduce(0, +) }

    var allocator: ZlibAllocator {
        ZlibAllocator(
            zalloc: { opaque, items, size in
                let counter = Unmanaged<AllocCounter>.fromOpaque(opaque!).takeUnretainedValue()
                let n = Int(items) * Int(size)
                let p = malloc(n)
                counter.live[UInt(bitPattern: p)] = n
                counter.allocations += 1
                return p
            },
            zfree: { opaque, p in
                let counter = Unmanaged<AllocCounter>.fromOpaque(opaque!).takeUnretainedValue()
                counter.live[UInt(bitPattern: p)] = nil
                free(p)
            },
            opaque: Unmanaged.passUnretained(self).toOpaque())
    }
}

/// Reference raw inflate straight on zlib, producing one byte per call so that every match must be
/// served from the sliding window (not from the output buffer). nil on a zlib error.
private func referenceInflateByteAtATime(_ payload: [UInt8], windowBits: Int32) -> [UInt8]? {
    let s = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    s.initialize(to: z_stream())
    defer { inflateEnd(s); s.deallocate() }
    guard inflateInit2_(s, -windowBits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return nil }
    let input = payload + [0, 0, 0xFF, 0xFF]
    var out: [UInt8] = []
    return input.withUnsafeBufferPointer { inBuf -> [UInt8]? in
        s.pointee.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress!)
        s.pointee.avail_in = uInt(inBuf.count)
        var byte: UInt8 = 0
        while true {
            let rc = withUnsafeMutablePointer(to: &byte) { p -> Int32 in
                s.pointee.next_out = p
                s.pointee.avail_out = 1
                return CZlib.inflate(s, Z_SYNC_FLUSH)
            }
            if s.pointee.avail_out == 0 { out.append(byte) }
            if rc == Z_BUF_ERROR || (rc == Z_OK && s.pointee.avail_in == 0 && s.pointee.avail_out == 1) { return out }
            if rc != Z_OK { return nil }
        }
    }
}

extension Array {
    func repeated(_ n: Int) -> [Element] { (0..<n).flatMap { _ in self } }
}

// MARK: - RFC 7692 §7.2.3 examples

@Suite("permessage-deflate compression (RFC 7692 §7.2)")
struct DeflateTests {
    @Test("§7.2.3.1: f2 48 cd c9 c9 07 00 inflates to \"Hello\"")
    func rfcHelloInflate() throws {
        #expect(
            try inflateMessage(
                PerMessageInflater(windowBits: 15, noContextTakeover: false),
                [0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00]) == hello)
    }

    @Test(
        "§7.2.3.1: \"Hello\" deflates to exactly f2 48 cd c9 c9 07 00 (no context takeover, default level), every time")
    func rfcHelloDeflate() {
        let deflater = PerMessageDeflater(windowBits: 15, memLevel: 8, noContextTakeover: true)
        for _ in 0..<3 { #expect(deflater.compressMessage(hello) == [0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00]) }
    }

    @Test(
        "§7.2.3.2: with context takeover the second \"Hello\" is f2 00 11 00 00 and inflates back",
        arguments: [1, 6, 9])
    func rfcSharingWindow(level: Int) throws {
        let deflater = PerMessageDeflater(windowBits: 15, memLevel: 8, noContextTakeover: false, level: level)
        let first = deflater.compressMessage(hello)
        let second = deflater.compressMessage(hello)
        #expect(first == [0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
        #expect(second == [0xF2, 0x00, 0x11, 0x00, 0x00])
        let inflater = PerMessageInflater(windowBits: 15, noContextTakeover: false)
        #expect(try inflateMessage(inflater, first) == hello)
        #expect(try inflateMessage(inflater, second) == hello)
    }

    @Test("§7.2.3.2: a client_no_context_takeover inflater cannot decode a window reference")
    func noContextInflaterRejectsWindowReference() throws {
        let inflater = PerMessageInflater(windowBits: 15, noContextTakeover: true)
        #expect(try inflateMessage(inflater, [0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00]) == hello)
        #expect(inflateError(inflater, [0xF2, 0x00, 0x11, 0x00, 0x00]) == .corrupt)
    }

    @Test("§7.2.3.3: DEFLATE block with no compression / empty block in the middle")
    func rfcEmptyBlock() throws {
        let inflater = PerMessageInflater(windowBits: 15, noContextTakeover: false)
        #expect(
            try inflateMessage(
                inflater, [0xF2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xCA, 0xC9, 0xC9, 0x07, 0x00]) == hello)
        // §7.2.3.5 style: a stored (uncompressed) block.
        #expect(
            try inflateMessage(inflater, [0x00, 0x05, 0x00, 0xFA, 0xFF, 0x48, 0x65, 0x6C, 0x6C, 0x6F, 0x00]) == hello)
    }

    @Test("§7.2.3.4: DEFLATE block with BFINAL set, then a following message still shares the window")
    func rfcBFinal() throws {
        let inflater = PerMessageInflater(windowBits: 15, noContextTakeover: false)
        #expect(try inflateMessage(inflater, [0xF3, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00, 0x00]) == hello)
        // Without the trailing 0x00 octet too (the tail after the final block is ignored).
        #expect(try inflateMessage(inflater, [0xF3, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00]) == hello)
        // Context takeover across the finished stream: "Hello" by reference to the previous message.
        #expect(try inflateMessage(inflater, [0xF2, 0x00, 0x11, 0x00, 0x00]) == hello)
        // A BFINAL block in the middle of a message, followed by more compressed data.
        let inflater2 = PerMessageInflater(windowBits: 15, noContextTakeover: false)
        #expect(
            try inflateMessage(inflater2, [0xF3, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00, 0xF2, 0x00, 0x11, 0x00, 0x00])
                == hello + hello)
    }

    @Test("many BFINAL blocks in one message (window-copy amplification) → .corrupt")
    func manyFinalBlocks() throws {
        // 03 00: a fixed-Huffman block with BFINAL set holding only end-of-block.
        let inflater = PerMessageInflater(windowBits: 15, noContextTakeover: false)
        let few: [UInt8] = [0xF3, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00] + [0x03, 0x00, 0x03, 0x00, 0x00]
        #expect(try inflateMessage(inflater, few) == hello)
        let many = [UInt8]([0x03, 0x00]).repeated(1000)
        #expect(inflateError(inflater, many) == .corrupt)
    }

    @Test("§7.2.3.6: empty message is 0x00 and inflates to nothing")
    func emptyMessage() throws {
        let deflater = PerMessageDeflater(windowBits: 15, memLevel: 8, noContextTakeover: true)
        #expect(deflater.compressMessage([]) == [0x00])
        let inflater = PerMessageInflater(windowBits: 15, noContextTakeover: false)
        #expect(try inflateMessage(inflater, [0x00]).isEmpty)
        #expect(try inflateMessage(inflater, []).isEmpty)
    }

    // MARK: Fragmentation

    @Test("compressed payload split into two frames at every offset")
    func splitAtEveryOffset() throws {
        var rng = SplitMix64(seed: 1)
        let message = (0..<8).flatMap { jsonMessage($0, &rng) }
        let payload = PerMessageDeflater(windowBits: 15, memLevel: 8, noContextTakeover: true).compressMessage(message)
        let inflater = PerMessageInflater(windowBits: 15, noContextTakeover: true)
        for i in 0...payload.count {
            #expect(try inflateFrames(inflater, [payload[..<i], payload[i...]]) == message, "split at \(i)")
        }
    }

    @Test("byte-per-frame feeding with context takeover across messages")
    func bytePerFrameContextTakeover() throws {
        var rng = SplitMix64(seed: 2)
        let deflater = PerMessageDeflater(windowBits: 12, memLevel: 8, noContextTakeover: false)
        let inflater = PerMessageInflater(windowBits: 12, noContextTakeover: false)
        for i in 0..<30 {
            let message = jsonMessage(i, &rng)
            let payload = deflater.compressMessage(message)
            let frames = payload.indices.map { payload[$0..<($0 + 1)] } + [[][...]]
            #expect(try inflateFrames(inflater, frames) == message)
        }
    }

    // MARK: Limits

    @Test("decompression bomb: 10 MiB of zeros with a 1 MiB limit → messageTooBig, output never past the limit")
    func bomb() throws {
        let zeros = [UInt8](repeating: 0, count: 10 << 20)
        let payload = PerMessageDeflater(windowBits: 15, memLevel: 8, noContextTakeover: true, level: 9)
            .compressMessage(zeros)
        #expect(payload.count < 12 * 1024)
        let limit = 1 << 20
        let inflater = PerMessageInflater(windowBits: 15, noContextTakeover: false)
        var out: [UInt8] = []
        var thrown: WebSocketInflateError?
        do {
            // As two frames: the limit holds across frames of one message.
            let half = payload.count / 2
            try payload[..<half].withUnsafeBytes { try inflater.inflate($0, isFinal: false, into: &out, limit: limit) }
            try payload[half...].withUnsafeBytes { try inflater.inflate($0, isFinal: true, into: &out, limit: limit) }
        } catch { thrown = error as? WebSocketInflateError }
        #expect(thrown == .messageTooBig)
        #expect(out.count <= limit)
        #expect(out.capacity <= 2 * limit + 64 * 1024, "allocation stayed near the limit, not the bomb's size")
        #expect(
            out.capacity <= limit + 8192, "output grows geometrically but never past the limit (+ malloc page rounding)"
        )
        // The inflater was reset and works for a fresh message.
        #expect(try inflateMessage(inflater, [0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00]) == hello)
    }

    @Test("limit is exact: a message of exactly `limit` bytes passes, one more byte fails; prior output counts")
    func exactLimit() throws {
        var rng = SplitMix64(seed: 3)
        let message = randomBytes(40_000, &rng) + [UInt8](repeating: 7, count: 40_000)
        let payload = PerMessageDeflater(windowBits: 15, memLevel: 8, noContextTakeover: true).compressMessage(message)
        let inflater = PerMessageInflater(windowBits: 15, noContextTakeover: true)
        #expect(try inflateMessage(inflater, payload, limit: message.count) == message)
        #expect(inflateError(inflater, payload, limit: message.count - 1) == .messageTooBig)
        var out = [UInt8](repeating: 1, count: 100)
        #expect(throws: WebSocketInflateError.messageTooBig) {
            try payload.withUnsafeBytes {
                try inflater.inflate($0, isFinal: true, into: &out, limit: message.count + 99)
            }
        }
        #expect(out.count <= message.count + 99)
        out = [UInt8](repeating: 1, count: 100)
        try payload.withUnsafeBytes { try inflater.inflate($0, isFinal: true, into: &out, limit: message.count + 100) }
        #expect(out.count == message.count + 100)
        #expect(Array(out[100...]) == message)
    }

    // MARK: Corrupt data

    @Test(
        "corrupt data → .corrupt",
        arguments: [
            [0xFF, 0xFF, 0xFF],  // BTYPE 11 (reserved)
            [0x00, 0x05, 0x00, 0x00, 0x00, 0x48],  // stored block with bad NLEN
            [0xF2, 0x00, 0x11, 0x00, 0x00],  // distance beyond an empty window
            [0xF2, 0x48, 0xCD],  // truncated mid-block
            [0xF2, 0x48, 0xCD, 0xC9, 0xC9],  // truncated mid-block
            [0x01, 0x05, 0x00],  // truncated final stored block
        ] as [[UInt8]])
    func corrupt(payload: [UInt8]) throws {
        let inflater = PerMessageInflater(windowBits: 15, noContextTakeover: false)
        #expect(inflateError(inflater, payload) == .corrupt)
        // Reset after the error: the next (self-contained) message decodes.
        #expect(try inflateMessage(inflater, [0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00]) == hello)
    }

    @Test("random garbage never crashes and never exceeds the limit")
    func garbage() {
        var rng = SplitMix64(seed: 4)
        let inflater = PerMessageInflater(windowBits: 15, noContextTakeover: true)
        var corrupt = 0
        for _ in 0..<500 {
            let payload = randomBytes(Int.random(in: 1...300, using: &rng), &rng)
            var out: [UInt8] = []
            do {
                try payload.withUnsafeBytes { try inflater.inflate($0, isFinal: true, into: &out, limit: 4096) }
            } catch { if error as? WebSocketInflateError == .corrupt { corrupt += 1 } }
            #expect(out.count <= 4096)
        }
        #expect(corrupt > 400)
    }

    // MARK: Stream reuse and memory

    @Test("1,000 messages on no_context_takeover streams: reset, never re-allocated, nothing leaked")
    func reuseThousandMessages() throws {
        let dCounter = AllocCounter()
        let iCounter = AllocCounter()
        var rng = SplitMix64(seed: 5)
        do {
            let deflater = PerMessageDeflater(
                windowBits: 15, memLevel: 8, noContextTakeover: true, level: 1,
                allocator: dCounter.allocator)
            let inflater = PerMessageInflater(windowBits: 15, noContextTakeover: true, allocator: iCounter.allocator)
            var dAllocs = 0
            var iAllocs = 0
            var dBytes = 0
            var iBytes = 0
            for i in 0..<1000 {
                let message = jsonMessage(i, &rng)
                let payload = deflater.compressMessage(message)
                #expect(try inflateMessage(inflater, payload) == message)
                if i == 0 {
                    (dAllocs, iAllocs, dBytes, iBytes) = (
                        dCounter.allocations, iCounter.allocations, dCounter.liveBytes, iCounter.liveBytes
                    )
                }
            }
            #expect(dCounter.allocations == dAllocs)
            #expect(iCounter.allocations == iAllocs)
            #expect(dCounter.liveBytes == dBytes)
            #expect(iCounter.liveBytes == iBytes)
            #expect(dAllocs > 0 && iAllocs > 0)
        }
        #expect(dCounter.live.isEmpty, "deflateEnd freed everything")
        #expect(iCounter.live.isEmpty, "inflateEnd freed everything")
    }

    @Test("measured zlib heap matches ZlibMemory within the few KiB of state", arguments: 9...15)
    func measuredMemory(windowBits: Int) throws {
        for memLevel in [1, 8, 9] {
            let counter = AllocCounter()
            let deflater = PerMessageDeflater(
                windowBits: windowBits, memLevel: memLevel, noContextTakeover: true, level: 1,
                allocator: counter.allocator)
            let measured = counter.liveBytes
            let formula = ZlibMemory.deflateBytes(windowBits: windowBits, memLevel: memLevel)
            print("deflate windowBits=\(windowBits) memLevel=\(memLevel): measured \(measured) B, formula \(formula) B")
            #expect(measured >= formula && measured - formula < 8 * 1024)
            _ = deflater.compressMessage(hello)
            #expect(counter.liveBytes == measured)
        }
        let counter = AllocCounter()
        let inflater = PerMessageInflater(
            windowBits: windowBits, noContextTakeover: false, allocator: counter.allocator)
        let beforeOutput = counter.liveBytes
        _ = try inflateMessage(inflater, [0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
        let measured = counter.liveBytes
        let formula = ZlibMemory.inflateBytes(windowBits: windowBits)
        print(
            "inflate windowBits=\(windowBits): measured \(measured) B (\(beforeOutput) B before first output), formula \(formula) B"
        )
        #expect(abs(measured - formula) < 1024)
    }

    @Test("ZlibMemory formulas and per-connection figures")
    func memoryFormulas() throws {
        #expect(ZlibMemory.deflateBytes(windowBits: 15, memLevel: 8) == 256 * 1024)
        #expect(
            ZlibMemory.deflateBytes(windowBits: 8, memLevel: 8) == ZlibMemory.deflateBytes(windowBits: 9, memLevel: 8))
        #expect(ZlibMemory.deflateBytes(windowBits: 9, memLevel: 1) == 2048 + 1024)
        #expect(ZlibMemory.inflateBytes(windowBits: 15) == 32 * 1024 + 7 * 1024)
        #expect(ZlibMemory.inflateBytes(windowBits: 9) == 512 + 7 * 1024)
        let sharedConfig = PerMessageDeflateConfig(mode: .shared)
        let dedicatedConfig = PerMessageDeflateConfig(mode: .dedicated)
        let sharedAgreement = try #require(
            PerMessageDeflateNegotiation.negotiate(offers: "permessage-deflate", config: sharedConfig))
        let dedicatedAgreement = try #require(
            PerMessageDeflateNegotiation.negotiate(offers: "permessage-deflate", config: dedicatedConfig))
        #expect(ZlibMemory.perConnectionBytes(agreement: sharedAgreement, config: sharedConfig) == 39 * 1024)
        #expect(
            ZlibMemory.perConnectionBytes(agreement: dedicatedAgreement, config: dedicatedConfig) == (256 + 39) * 1024)
        for mode in [DeflateMode.shared, .dedicated] {
            for bits in 9...15 {
                let config = PerMessageDeflateConfig(mode: mode, serverMaxWindowBits: bits)
                let a = try #require(
                    PerMessageDeflateNegotiation.negotiate(
                        offers: "permessage-deflate; client_max_window_bits=\(bits)", config: config))
                print(
                    "per connection, mode=\(mode) server/client window=\(bits), memLevel 8: \(ZlibMemory.perConnectionBytes(agreement: a, config: config)) B"
                )
            }
        }
    }

    // MARK: Round trips

    @Test("round trip of random and JSON-like payloads, both context modes", arguments: 9...15)
    func roundTrip(windowBits: Int) throws {
        var rng = SplitMix64(seed: UInt64(windowBits))
        for noContext in [false, true] {
            let deflater = PerMessageDeflater(windowBits: windowBits, memLevel: 8, noContextTakeover: noContext)
            let inflater = PerMessageInflater(windowBits: windowBits, noContextTakeover: noContext)
            var messages: [[UInt8]] = [
                [], [42], randomBytes(63, &rng), randomBytes(1000, &rng), randomBytes(70_000, &rng),
                jsonUpdate(300), jsonUpdate(3),
            ]
            messages += (0..<40).map { jsonMessage($0, &rng) }
            for message in messages {
                let payload = deflater.compressMessage(message)
                #expect(try inflateMessage(inflater, payload) == message)
            }
            #expect(deflater.compressMessage(jsonUpdate(300)).count < jsonUpdate(300).count / 5)
        }
    }

    // MARK: Output buffers

    @Test(
        "inflate grows an empty output about as much as the message needs (no fixed 16 KiB chunk)",
        arguments: [0, 1, 100, 1000, 1024, 1025, 5000, 20_000, 100_000])
    func outputGrowthIsProportionate(size: Int) throws {
        var rng = SplitMix64(seed: UInt64(size))
        let message = randomBytes(size, &rng)
        let payload = PerMessageDeflater(windowBits: 15, memLevel: 8, noContextTakeover: true).compressMessage(message)
        let inflater = PerMessageInflater(windowBits: 15, noContextTakeover: true)
        var out: [UInt8] = []
        try payload.withUnsafeBytes { try inflater.inflate($0, isFinal: true, into: &out, limit: 1 << 20) }
        #expect(out == message)
        #expect(out.capacity <= max(2 * size, PerMessageInflater.minimumGrowth) + 64)
        // Bounded by the limit too (here the message size itself).
        var exact: [UInt8] = []
        try payload.withUnsafeBytes { try inflater.inflate($0, isFinal: true, into: &exact, limit: size) }
        #expect(exact == message)
        #expect(exact.capacity <= max(size, PerMessageInflater.minimumGrowth) + 64)
    }

    @Test("steady state: deflate and inflate write into the reused output's capacity, never reallocating it")
    func reusedOutputIsNotReallocated() throws {
        var rng = SplitMix64(seed: 11)
        let messages = (0..<200).map { jsonMessage($0, &rng) } + [jsonUpdate(40), randomBytes(3000, &rng)]
        for noContext in [true, false] {
            let deflater = PerMessageDeflater(windowBits: 15, memLevel: 8, noContextTakeover: noContext)
            let inflater = PerMessageInflater(windowBits: 15, noContextTakeover: noContext)
            var compressed: [UInt8] = []
            compressed.reserveCapacity(8192)
            var plain: [UInt8] = []
            plain.reserveCapacity(8192)
            let storage = (
                compressed.withUnsafeBufferPointer { $0.baseAddress }, plain.withUnsafeBufferPointer { $0.baseAddress }
            )
            let capacities = (compressed.capacity, plain.capacity)
            for message in messages {
                compressed.removeAll(keepingCapacity: true)
                message.withUnsafeBytes { deflater.compressMessage($0, into: &compressed) }
                plain.removeAll(keepingCapacity: true)
                try compressed.withUnsafeBytes { try inflater.inflate($0, isFinal: true, into: &plain, limit: 1 << 20) }
                #expect(plain == message)
            }
            #expect(compressed.withUnsafeBufferPointer { $0.baseAddress } == storage.0)
            #expect(plain.withUnsafeBufferPointer { $0.baseAddress } == storage.1)
            #expect((compressed.capacity, plain.capacity) == capacities)
        }
    }

    @Test("an output sharing its storage with another array is copied, not written through")
    func sharedOutputStorage() throws {
        let deflater = PerMessageDeflater(windowBits: 15, memLevel: 8, noContextTakeover: true)
        let inflater = PerMessageInflater(windowBits: 15, noContextTakeover: true)
        var out: [UInt8] = [1, 2, 3]
        out.reserveCapacity(4096)
        let copy = out
        hello.withUnsafeBytes { deflater.compressMessage($0, into: &out) }
        #expect(copy == [1, 2, 3] && out == [1, 2, 3, 0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
        var plain: [UInt8] = [9]
        plain.reserveCapacity(4096)
        let plainCopy = plain
        try out[3...].withUnsafeBytes { try inflater.inflate($0, isFinal: true, into: &plain, limit: 100) }
        #expect(plainCopy == [9] && plain == [9] + hello)
    }

    @Test("appending variant keeps existing output")
    func appendingCompress() throws {
        let deflater = PerMessageDeflater(windowBits: 15, memLevel: 8, noContextTakeover: true)
        var out: [UInt8] = [0x81, 0x07]  // e.g. a frame header written first
        hello.withUnsafeBytes { deflater.compressMessage($0, into: &out) }
        #expect(out == [0x81, 0x07, 0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
    }

    @Test("window 8 quirk: zlib compresses with 9, whose output a 256-byte window decodes")
    func window8Quirk() throws {
        var rng = SplitMix64(seed: 8)
        // A 300-byte random block repeated: a 512-byte window would like distance-300 matches.
        let block = randomBytes(300, &rng)
        let message = (0..<20).flatMap { _ in block } + Array(String(repeating: "abcdefgh", count: 100).utf8)
        let deflater = PerMessageDeflater(windowBits: 8, memLevel: 8, noContextTakeover: false)
        #expect(deflater.windowBits == 9)
        // With context takeover the second message also refers to the first one, still within 250 bytes.
        let first = deflater.compressMessage(message)
        let second = deflater.compressMessage(message)
        #expect(referenceInflateByteAtATime(first + [0, 0, 0xFF, 0xFF] + second, windowBits: 8) == message + message)
        let inflater = PerMessageInflater(windowBits: 8, noContextTakeover: false)
        #expect(inflater.windowBits == 9)
        #expect(try inflateMessage(inflater, first) == message)
        #expect(try inflateMessage(inflater, second) == message)
        let fresh = PerMessageDeflater(windowBits: 8, memLevel: 8, noContextTakeover: true).compressMessage(message)
        #expect(referenceInflateByteAtATime(fresh, windowBits: 8) == message)
        // Sanity: the check is sensitive — window 10 output does use distances a 256-byte window lacks.
        let wide = PerMessageDeflater(windowBits: 10, memLevel: 8, noContextTakeover: true).compressMessage(message)
        #expect(referenceInflateByteAtATime(wide, windowBits: 8) == nil)
        #expect(referenceInflateByteAtATime(wide, windowBits: 10) == message)
    }

    @Test("level 1 vs 6: ratio and time on chat and update JSON (printed; decides defaultLevel)")
    func levelComparison() throws {
        var rng = SplitMix64(seed: 9)
        let chat = (0..<2000).map { jsonMessage($0, &rng) }
        let updates = [[UInt8]](repeating: jsonUpdate(200), count: 100)
        for (name, messages) in [("chat", chat), ("updates", updates)] {
            let input = messages.reduce(0) { $0 + $1.count }
            for level in [1, 6] {
                let deflater = PerMessageDeflater(windowBits: 15, memLevel: 8, noContextTakeover: true, level: level)
                var out = 0
                let clock = ContinuousClock()
                let t = clock.measure { for m in messages { out += deflater.compressMessage(m).count } }
                let seconds = Double(t.components.seconds) + Double(t.components.attoseconds) / 1e18
                print(
                    "\(name) (\(input / messages.count) B/msg) level \(level): ratio \(Double(out) / Double(input)), \(Int(Double(input) / seconds / 1e6)) MB/s"
                )
            }
        }
        #expect(PerMessageDeflateConfig.defaultLevel == 1)
    }

    @Test("the factory passes the configured level to every compressor it makes")
    func factoryPassesLevel() throws {
        let config = PerMessageDeflateConfig(
            mode: .dedicated, serverMaxWindowBits: 12, memLevel: 3, threshold: 0,
            clientMaxWindowBits: 15, level: 7)
        let shared = try #require(config.makeSharedDeflater())
        #expect((shared.level, shared.windowBits, shared.memLevel, shared.noContextTakeover) == (7, 12, 3, true))
        let agreement = PerMessageDeflateAgreement(
            serverNoContextTakeover: false, clientNoContextTakeover: false,
            serverMaxWindowBits: 10, clientMaxWindowBits: 15, responseHeaderValue: "")
        let dedicated = config.makeDeflater(for: agreement)
        #expect(
            (dedicated.level, dedicated.windowBits, dedicated.memLevel, dedicated.noContextTakeover) == (
                7, 10, 3, false
            ))
        #expect(PerMessageDeflateConfig(mode: .off).makeSharedDeflater() == nil)
    }

    @Test("level edges: 0 writes stored blocks that still inflate; -1 is zlib's default; outside -1...9 is clamped")
    func levelEdges() throws {
        let message = [UInt8](repeating: UInt8(ascii: "a"), count: 300)
        func compressed(level: Int) throws -> [UInt8] {
            let config = PerMessageDeflateConfig(
                mode: .shared, serverMaxWindowBits: 15, memLevel: 8, threshold: 0,
                clientMaxWindowBits: 15, level: level)
            return try #require(config.makeSharedDeflater()).compressMessage(message)
        }
        // RFC 1951 §3.2.4: a stored block is the 3 header bits (BTYPE 00), padding to the byte, LEN, NLEN, then
        // the bytes as they are.
        let stored = try compressed(level: 0)
        #expect(stored[0] & 0x06 == 0, "BTYPE 00 (stored)")
        #expect(Int(stored[1]) | Int(stored[2]) << 8 == message.count)
        #expect(stored[3] == ~stored[1] && stored[4] == ~stored[2])
        #expect(Array(stored[5..<(5 + message.count)]) == message)
        #expect(try inflateMessage(PerMessageInflater(windowBits: 15, noContextTakeover: true), stored) == message)
        // Level 1 (the default) compresses the same run to a few bytes; -1 (zlib's 6) too.
        for level in [1, -1, 9] {
            let deflated = try compressed(level: level)
            #expect(deflated.count < 20, "level \(level): \(deflated.count) B")
            #expect(
                try inflateMessage(PerMessageInflater(windowBits: 15, noContextTakeover: true), deflated) == message)
        }
        #expect(
            PerMessageDeflateConfig(
                mode: .shared, serverMaxWindowBits: 15, memLevel: 8, threshold: 0,
                clientMaxWindowBits: 15, level: -2
            ).level == -1)
        #expect(
            PerMessageDeflateConfig(
                mode: .shared, serverMaxWindowBits: 15, memLevel: 8, threshold: 0,
                clientMaxWindowBits: 15, level: 10
            ).level == 9)
    }
}
