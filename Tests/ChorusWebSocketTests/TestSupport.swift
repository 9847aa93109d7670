@testable import ChorusWebSocket

/// A copy of a reader event that outlives the read buffer, for comparisons.
enum Ev: Equatable, CustomStringConvertible {
    case text([UInt8]), binary([UInt8]), ping([UInt8]), pong([UInt8]), close(UInt16?, [UInt8])

    init(_ e: WebSocketMessageReader.Event) {
        switch e {
        case .text(let b): self = .text(Array(b))
        case .binary(let b): self = .binary(Array(b))
        case .ping(let b): self = .ping(Array(b))
        case .pong(let b): self = .pong(Array(b))
        case .close(let code, let reason): self = .close(code?.rawValue, Array(reason))
        }
    }

    static func t(_ s: String) -> Ev { .text(Array(s.utf8)) }

    var description: String {
        switch self {
        case .text(let b): return "text(\(String(decoding: b, as: UTF8.self)))"
        case .binary(let b): return "binary(\(b.count) bytes)"
        case .ping(let b): return "ping(\(b))"
        case .pong(let b): return "pong(\(b))"
        case .close(let c, let r): return "close(\(String(describing: c)), \(String(decoding: r, as: UTF8.self)))"
        }
    }
}

/// The RFC 6455 §5.7 example mask key 37 fa 21 3d, as the wire bytes loaded little-endian.
let rfcKey: UInt32 = 0x3d21_fa37

/// A masked client frame.
func cf(_ op: WebSocketOpcode, _ payload: [UInt8], fin: Bool = true, rsv1: Bool = false, key: UInt32 = rfcKey)
    -> [UInt8]
{
    WebSocketFrameEncoder.maskedFrame(opcode: op, payload: payload, maskKey: key, fin: fin, rsv1: rsv1)
}

func cf(_ op: WebSocketOpcode, _ s: String, fin: Bool = true, rsv1: Bool = false, key: UInt32 = rfcKey) -> [UInt8] {
    cf(op, Array(s.utf8), fin: fin, rsv1: rsv1, key: key)
}

/// One `read` over a copy of `bytes` (the reader unmasks in place).
func readOnce(
    _ r: inout WebSocketMessageReader, _ bytes: [UInt8], stopAfter: Int = .max
) throws(WebSocketProtocolError) -> (events: [Ev], consumed: Int) {
    var buf = bytes
    var events: [Ev] = []
    var failure: WebSocketProtocolError?
    let n = buf.withUnsafeMutableBytes { p -> Int in
        do throws(WebSocketProtocolError) {
            return try r.read(p) { e in
                events.append(Ev(e))
                return events.count < stopAfter
            }
        } catch {
            failure = error
            return 0
        }
    }
    if let failure { throw failure }
    return (events, n)
}

/// A connection's read buffer, as the server keeps it: the unconsumed tail of one `read`
/// (a partial frame, byte for byte as the reader left it, so including bytes it unmasked in
/// place) comes first in the next buffer, then the new bytes. Each buffer is a fresh copy at a
/// shifted offset, so nothing can depend on the previous buffer's address or alignment.
struct ConnectionBuffer {
    var reader: WebSocketMessageReader
    var pending: [UInt8] = []
    var events: [Ev] = []
    var reads = 0

    init(_ reader: WebSocketMessageReader) { self.reader = reader }
    init(maxMessageSize: Int = 1 << 20, inflater: (any WebSocketInflater)? = nil) {
        reader = WebSocketMessageReader(maxMessageSize: maxMessageSize, inflater: inflater)
    }

    /// One `read` over the pending bytes plus `bytes`; `proceed` is what `onEvent` returns.
    mutating func feed(_ bytes: some Collection<UInt8>, proceed: (Ev) -> Bool = { _ in true })
        throws(WebSocketProtocolError)
    {
        reads += 1
        let shift = reads % 7
        var buf = [UInt8](repeating: 0xEE, count: shift) + pending + Array(bytes)
        var got: [Ev] = []
        var failure: WebSocketProtocolError?
        let consumed = buf.withUnsafeMutableBytes { raw -> Int in
            let p = UnsafeMutableRawBufferPointer(rebasing: raw[shift...])
            do throws(WebSocketProtocolError) {
                return try reader.read(p) { e in
                    let ev = Ev(e)
                    got.append(ev)
                    return proceed(ev)
                }
            } catch {
                failure = error
                return 0
            }
        }
        events += got
        if let failure { throw failure }
        pending = Array(buf[(shift + consumed)...])
    }
}

/// Feeds `bytes` `chunk` bytes at a time, keeping unconsumed bytes like a connection's read buffer.
func readIncrementally(
    _ r: inout WebSocketMessageReader, _ bytes: [UInt8], chunk: Int = 1
) throws(WebSocketProtocolError) -> (events: [Ev], leftover: Int) {
    var c = ConnectionBuffer(r)
    var i = 0
    while i < bytes.count {
        let end = min(i + chunk, bytes.count)
        try c.feed(bytes[i..<end])
        i = end
    }
    r = c.reader
    return (c.events, c.pending.count)
}

/// Feeds `bytes` in pieces cut at `cuts` (ascending offsets), one `read` per piece.
func readSplit(
    _ bytes: [UInt8], at cuts: [Int], maxMessageSize: Int = 1 << 20, inflater: (any WebSocketInflater)? = nil
)
    throws(WebSocketProtocolError) -> (events: [Ev], leftover: Int)
{
    var c = ConnectionBuffer(maxMessageSize: maxMessageSize, inflater: inflater)
    var start = 0
    for end in cuts + [bytes.count] {
        try c.feed(bytes[start..<end])
        start = end
    }
    return (c.events, c.pending.count)
}

func readAll(_ bytes: [UInt8], maxMessageSize: Int = 1 << 20, inflater: (any WebSocketInflater)? = nil)
    throws(WebSocketProtocolError) -> [Ev]
{
    var r = WebSocketMessageReader(maxMessageSize: maxMessageSize, inflater: inflater)
    let (events, consumed) = try readOnce(&r, bytes)
    precondition(consumed == bytes.count, "left \(bytes.count - consumed) bytes")
    return events
}

/// The close code `bytes` fail with, or nil if they parse.
func failureCode(_ bytes: [UInt8], maxMessageSize: Int = 1 << 20, inflater: (any WebSocketInflater)? = nil) -> UInt16? {
    var r = WebSocketMessageReader(maxMessageSize: maxMessageSize, inflater: inflater)
    do {
        _ = try readOnce(&r, bytes)
        return nil
    } catch {
        return error.closeCode.rawValue
    }
}

func withBytes<R>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) -> R) -> R {
    bytes.withUnsafeBytes(body)
}
