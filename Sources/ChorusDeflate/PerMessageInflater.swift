// RFC 7692 §7.2.2: decompressing messages with one reusable raw-inflate stream per connection.
import CZlib

#if canImport(ChorusWebSocket)
// scripts/fuzz.sh compiles the deflate files with the frame reader into one module.
import ChorusWebSocket
#endif

/// One zlib inflate stream per connection, reused (inflateReset, never re-allocated).
///
/// Not thread-safe: use it from the connection's thread only. After it throws, the connection is
/// to be failed (1009 for .messageTooBig, 1007/1002 for .corrupt); the stream is reset so the object
/// stays valid, but any LZ77 context the client relies on is gone.
public final class PerMessageInflater: WebSocketInflater {
    private let stream: UnsafeMutablePointer<z_stream>
    /// zlib windowBits in use (9...15).
    public let windowBits: Int
    /// Reset after every message (client_no_context_takeover).
    public let noContextTakeover: Bool
    /// When `output` has no spare capacity, it grows to at least this many bytes (then geometrically).
    static let minimumGrowth = 1024
    /// The current deflate stream hit a block with BFINAL=1 (RFC 7692 §7.2.3.4).
    @exclusivity(unchecked) private var streamEnded = false
    /// Some payload byte of the current message was fed to zlib.
    @exclusivity(unchecked) private var messageHasData = false
    /// BFINAL restarts in the current message. Each one copies the window twice, so a stream of
    /// 2-byte final blocks would cost ~64 KiB of memcpy per 2 input bytes: cap it.
    @exclusivity(unchecked) private var restartsInMessage = 0
    /// A well-behaved sender ends a message with at most one BFINAL block (RFC 7692 §7.2.3.4).
    static let maxRestartsPerMessage = 4

    public convenience init(agreement: PerMessageDeflateAgreement) {
        self.init(windowBits: agreement.inflateWindowBits, noContextTakeover: agreement.clientNoContextTakeover)
    }

    /// `windowBits` 8...15; values below 9 are raised to 9 (a 512-byte window also decodes anything
    /// produced for a 256-byte one, and old zlib clients that asked for 8 really used 9).
    public convenience init(windowBits: Int, noContextTakeover: Bool) {
        self.init(windowBits: windowBits, noContextTakeover: noContextTakeover, allocator: nil)
    }

    init(windowBits: Int, noContextTakeover: Bool, allocator: ZlibAllocator?) {
        self.windowBits = min(max(windowBits, 9), 15)
        self.noContextTakeover = noContextTakeover
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        allocator?.install(on: stream)
        let rc = inflateInit2_(stream, -Int32(self.windowBits), ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        precondition(rc == Z_OK, "inflateInit2 failed: \(rc)")
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    public func inflate(_ input: UnsafeRawBufferPointer, isFinal: Bool, into output: inout [UInt8], limit: Int)
        throws(WebSocketInflateError)
    {
        do throws(WebSocketInflateError) {
            if input.count > 0 { messageHasData = true }
            try feed(input, isTail: false, into: &output, limit: limit)
            if isFinal && !messageHasData {
                // An empty payload (no bytes at all) is taken as an empty message. Strictly, "" + 00 00 ff ff
                // is an incomplete stored block; senders should use 0x00 (§7.2.3.6), but tolerate it.
                return
            }
            if isFinal {
                messageHasData = false
                // §7.2.2: append 0x00 0x00 0xff 0xff to the payload, then decompress.
                var tail: (UInt8, UInt8, UInt8, UInt8) = (0x00, 0x00, 0xFF, 0xFF)
                try withUnsafeBytes(of: &tail) { (t) throws(WebSocketInflateError) in
                    try feed(t, isTail: true, into: &output, limit: limit)
                }
                // The tail is an empty stored block, so a complete message ends on a block boundary
                // (data_type bit 128). Anything else means a truncated message.
                if !streamEnded && stream.pointee.data_type & 128 == 0 { throw .corrupt }
                endMessage()
            }
        } catch {
            reset()
            throw error
        }
    }

    /// Drops any partial message and the LZ77 context (e.g. after an error).
    public func reset() {
        inflateReset(stream)
        streamEnded = false
        messageHasData = false
        restartsInMessage = 0
        stream.pointee.next_in = nil
        stream.pointee.avail_in = 0
    }

    private func endMessage() {
        restartsInMessage = 0
        if noContextTakeover {
            reset()
        } else if streamEnded {
            restartKeepingWindow()
        }
        stream.pointee.next_in = nil
        stream.pointee.avail_in = 0
    }

    /// After a BFINAL block the zlib stream is finished, but the next data (in this message or the
    /// next one, with context takeover) still refers to the same LZ77 window: start a new raw stream
    /// primed with the old window.
    private func restartKeepingWindow() {
        let window = UnsafeMutablePointer<UInt8>.allocate(capacity: 1 << windowBits)
        defer { window.deallocate() }
        var length: uInt = 0
        inflateGetDictionary(stream, window, &length)
        inflateReset(stream)
        if length > 0 { inflateSetDictionary(stream, window, length) }
        streamEnded = false
    }

    private func feed(_ input: UnsafeRawBufferPointer, isTail: Bool, into output: inout [UInt8], limit: Int)
        throws(WebSocketInflateError)
    {
        guard let base = input.baseAddress, input.count > 0 else { return }
        let s = stream
        s.pointee.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
        s.pointee.avail_in = uInt(input.count)
        defer { s.pointee.next_in = nil; s.pointee.avail_in = 0 }
        var outputFull = false  // the last call used all of avail_out: more output may be pending
        while s.pointee.avail_in > 0 || outputFull {
            if streamEnded {
                // Only the 00 00 ff ff tail may follow a final block without a new block header; it carries
                // no data, so it is dropped. Real payload bytes start a new stream on the same window.
                if isTail || s.pointee.avail_in == 0 { return }
                restartsInMessage += 1
                if restartsInMessage > Self.maxRestartsPerMessage { throw .corrupt }
                restartKeepingWindow()
            }
            let room = limit - output.count
            var rc: Int32 = Z_OK
            if room <= 0 {
                // At the limit: probe whether the stream has even one more byte to give.
                var probe: UInt8 = 0
                rc = withUnsafeMutablePointer(to: &probe) { p in
                    s.pointee.next_out = p
                    s.pointee.avail_out = 1
                    let rc = CZlib.inflate(s, Z_SYNC_FLUSH)
                    s.pointee.next_out = nil
                    return rc
                }
                if s.pointee.avail_out == 0 { throw .messageTooBig }
                outputFull = false
            } else {
                // Inflate straight into `output`'s spare capacity: no temporary buffer, no copy, and no
                // allocation at all when the caller reuses `output` with its capacity. When there is no
                // spare capacity, grow geometrically, bounded by the limit.
                var spare = output.capacity - output.count
                if spare == 0 {
                    let grown = max(output.capacity * 2, output.count + Self.minimumGrowth)
                    output.reserveCapacity(min(grown, limit))
                    spare = output.capacity - output.count
                }
                let chunk = min(spare, room, Int(UInt32.max))
                output.append(addingCapacity: chunk) { span in
                    span.withUnsafeMutableBufferPointer { buf, initialized in
                        let avail = buf.count - initialized  // == chunk
                        s.pointee.next_out = buf.baseAddress! + initialized
                        s.pointee.avail_out = uInt(avail)
                        rc = CZlib.inflate(s, Z_SYNC_FLUSH)
                        s.pointee.next_out = nil
                        initialized += avail - Int(s.pointee.avail_out)
                    }
                }
                outputFull = s.pointee.avail_out == 0
            }
            switch rc {
            case Z_OK:
                continue
            case Z_STREAM_END:
                streamEnded = true
            case Z_BUF_ERROR:
                // No progress possible: all input consumed and no pending output.
                if s.pointee.avail_in == 0 { return }
                throw .corrupt
            default:  // Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR, Z_MEM_ERROR
                throw .corrupt
            }
        }
    }
}
