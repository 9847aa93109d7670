/// A request head kept for later as one block of bytes (the head written out again) instead of a
/// String per header and an array of pairs: what a Socket.IO session keeps of its handshake for as
/// long as the client stays (about 570 of its bytes were the parsed head; BENCHMARKS.md, memory per
/// idle connection). Reading it parses it again: it is read when a client connects to a namespace
/// and by `fetchSockets`, never per message.
public struct PackedRequestHead: Sendable {
    private let bytes: [UInt8]

    public init(_ head: HTTPRequestHead) {
        var count = head.method.utf8.count + head.target.utf8.count + 13
        for header in head.headers { count += header.name.utf8.count + header.value.utf8.count + 4 }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count + 2)
        bytes += head.method.utf8
        bytes.append(0x20)
        bytes += head.target.utf8
        bytes += " HTTP/1.".utf8
        bytes.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: head.versionMinor))
        bytes += "\r\n".utf8
        for header in head.headers {
            bytes += header.name.utf8
            bytes += ": ".utf8
            bytes += header.value.utf8
            bytes += "\r\n".utf8
        }
        bytes += "\r\n".utf8
        self.bytes = bytes
    }

    /// The head as it was parsed (a parsed head written out parses to itself; the tests check it).
    public var head: HTTPRequestHead {
        let parsed = bytes.withUnsafeBytes { HTTPRequestParser.parseHead($0) }
        switch parsed {
        case .success(let head): return head
        case .failure: return HTTPRequestHead(method: "GET", target: "/")
        }
    }

    /// Bytes held.
    public var byteCount: Int { bytes.count }
}
