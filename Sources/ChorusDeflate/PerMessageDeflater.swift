// RFC 7692 §7.2.1: compressing messages with a reusable raw-deflate stream.
import CZlib

#if canImport(ChorusWebSocket)
// scripts/fuzz.sh compiles the deflate files with the frame reader into one module.
import ChorusWebSocket
#endif

/// Raw-deflate compressor; `compressMessage` produces one RFC 7692 §7.2.1 message payload
/// (Z_SYNC_FLUSH, trailing 00 00 FF FF removed). With noContextTakeover it deflateReset()s after
/// each message (never re-allocates).
///
/// In `shared` mode one deflater (per thread) compresses a broadcast message once for all recipients;
/// in `dedicated` mode with context takeover each connection owns one.
/// Not thread-safe.
public final class PerMessageDeflater {
    private let stream: UnsafeMutablePointer<z_stream>
    /// zlib windowBits in use (9...15).
    public let windowBits: Int
    public let memLevel: Int
    public let level: Int
    public let noContextTakeover: Bool

    /// `windowBits` 8...15: 8 is compressed with 9 (zlib cannot do raw deflate with 8; the output of
    /// a 512-byte window never uses distances beyond 250, so it is valid for a 256-byte window).
    /// `level` outside `PerMessageDeflateConfig.levels` is clamped into it.
    public convenience init(
        windowBits: Int, memLevel: Int, noContextTakeover: Bool, level: Int = PerMessageDeflateConfig.defaultLevel
    ) {
        self.init(
            windowBits: windowBits, memLevel: memLevel, noContextTakeover: noContextTakeover, level: level,
            allocator: nil)
    }

    init(windowBits: Int, memLevel: Int, noContextTakeover: Bool, level: Int, allocator: ZlibAllocator?) {
        self.windowBits = min(max(windowBits, 9), 15)
        self.memLevel = min(max(memLevel, 1), 9)
        self.level = min(
            max(level, PerMessageDeflateConfig.levels.lowerBound), PerMessageDeflateConfig.levels.upperBound)
        self.noContextTakeover = noContextTakeover
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        allocator?.install(on: stream)
        let rc = deflateInit2_(
            stream, Int32(self.level), Z_DEFLATED, -Int32(self.windowBits), Int32(self.memLevel),
            Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        precondition(rc == Z_OK, "deflateInit2 failed: \(rc)")
    }

    deinit {
        deflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Appends the compressed payload of one whole message (send it with RSV1 set on the first frame).
    public func compressMessage(_ input: UnsafeRawBufferPointer, into output: inout [UInt8]) {
        let s = stream
        let messageStart = output.count
        s.pointee.next_in = input.baseAddress.map {
            UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: Bytef.self))
        }
        s.pointee.avail_in = uInt(input.count)
        // Deflate straight into `output`'s spare capacity, reserving deflateBound (+ the sync-flush
        // marker) so one zlib call normally does the whole message: no temporary buffer, no copy, and
        // no allocation when the caller reuses `output` with its capacity.
        var reserve = Int(deflateBound(s, uLong(input.count))) + 16
        while true {
            var rc: Int32 = Z_OK
            output.append(addingCapacity: reserve) { span in
                span.withUnsafeMutableBufferPointer { buf, initialized in
                    let avail = min(buf.count - initialized, Int(UInt32.max))
                    s.pointee.next_out = buf.baseAddress! + initialized
                    s.pointee.avail_out = uInt(avail)
                    rc = deflate(s, Z_SYNC_FLUSH)
                    s.pointee.next_out = nil
                    initialized += avail - Int(s.pointee.avail_out)
                }
            }
            // Z_BUF_ERROR: nothing left to do (a repeated call after everything was flushed).
            precondition(rc == Z_OK || rc == Z_BUF_ERROR, "deflate failed: \(rc)")
            // Done when zlib stopped with room to spare: then the flush is complete. (If avail_out hit 0
            // exactly, zlib may add one more empty stored block on the next call: harmless.)
            if s.pointee.avail_out > 0 && s.pointee.avail_in == 0 { break }
            reserve = max(reserve, 4096)
        }
        s.pointee.next_in = nil
        s.pointee.avail_in = 0
        // §7.2.1: remove the 00 00 ff ff of the final empty stored block.
        let produced = output.count - messageStart
        if produced >= 4 && output[output.count - 4] == 0 && output[output.count - 3] == 0
            && output[output.count - 2] == 0xFF && output[output.count - 1] == 0xFF
        {
            output.removeLast(4)
        }
        if noContextTakeover { deflateReset(s) }
    }

    public func compressMessage(_ input: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        input.withUnsafeBytes { compressMessage($0, into: &out) }
        return out
    }

    /// Forgets the LZ77 context (only needed with context takeover, e.g. after a send was dropped).
    public func reset() { deflateReset(stream) }
}
