// libFuzzer harness: WebSocketMessageReader with the permessage-deflate inflater
// (scripts/fuzz.sh FrameReader SECONDS).
//
// Property: a stream of client frames fed whole and fed in random pieces, the way the server
// loop feeds it (the unconsumed tail of one read, as the reader left it, first in the next
// buffer), gives the same events and the same close code. Byte 0 picks compression and seeds
// the split; the rest is the stream.

struct Pieces {
    var state: UInt64
    mutating func next(max: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return 1 + Int((z ^ (z >> 31)) % UInt64(max))
    }
}

enum Event: Equatable {
    case text([UInt8]), binary([UInt8]), ping([UInt8]), pong([UInt8]), close(UInt16?, [UInt8])
    case failed(UInt16)
}

let maxMessageSize = 64 * 1024

/// One inflater per (window bits, no-context-takeover) pair, made on first use and reset before
/// each run, as a connection's inflater is reused between messages: the run starts from a fresh
/// stream without a new inflateInit2 and a new window per input.
nonisolated(unsafe) var inflaters: [Int: PerMessageInflater] = [:]

func makeReader(_ mode: UInt8) -> WebSocketMessageReader {
    guard mode & 1 != 0 else { return WebSocketMessageReader(maxMessageSize: maxMessageSize, inflater: nil) }
    let windowBits = 9 + Int(mode >> 1) % 7
    let noContextTakeover = mode & 0x80 != 0
    let key = windowBits << 1 | (noContextTakeover ? 1 : 0)
    let inflater: PerMessageInflater
    if let reused = inflaters[key] {
        reused.reset()
        inflater = reused
    } else {
        inflater = PerMessageInflater(windowBits: windowBits, noContextTakeover: noContextTakeover)
        inflaters[key] = inflater
    }
    return WebSocketMessageReader(maxMessageSize: maxMessageSize, inflater: inflater)
}

/// The bytes received and not yet consumed, kept with their capacity between runs.
nonisolated(unsafe) var pending: [UInt8] = []

/// Reads `stream` in pieces (nil: whole); the events until a close or an error.
func run(_ stream: [UInt8], mode: UInt8, pieces: inout Pieces?) -> [Event] {
    var reader = makeReader(mode)
    var events: [Event] = []
    pending.removeAll(keepingCapacity: true)
    var received = 0
    var stopped = false
    while received < stream.count && !stopped {
        let take = pieces == nil ? stream.count - received : min(stream.count - received, pieces!.next(max: 300))
        pending += stream[received..<(received + take)]
        received += take
        do {
            let consumed = try pending.withUnsafeMutableBytes { buffer in
                try reader.read(buffer) { event in
                    switch event {
                    case .text(let b): events.append(.text(Array(b)))
                    case .binary(let b): events.append(.binary(Array(b)))
                    case .ping(let b): events.append(.ping(Array(b)))
                    case .pong(let b): events.append(.pong(Array(b)))
                    case .close(let code, let reason):
                        events.append(.close(code?.rawValue, Array(reason)))
                        stopped = true
                        return false
                    }
                    return true
                }
            }
            pending.removeSubrange(..<consumed)
        } catch {
            events.append(.failed((error as? WebSocketProtocolError)?.closeCode.rawValue ?? 0))
            return events
        }
    }
    return events
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 1 else { return 0 }
    let mode = data[0]
    let stream = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    var none: Pieces? = nil
    var some: Pieces? = Pieces(state: UInt64(mode) &* 31 &+ UInt64(size))
    let whole = run(stream, mode: mode, pieces: &none)
    let split = run(stream, mode: mode, pieces: &some)
    if whole != split {
        // A stream cut short can end whole on an error the split run has not reached yet only if
        // it is the same error: compare everything.
        preconditionFailure("whole \(whole) != split \(split)")
    }
    for case .text(let t) in whole { precondition(String(validating: t, as: UTF8.self) != nil, "text not UTF-8") }
    for e in whole {
        switch e {
        case .text(let b), .binary(let b): precondition(b.count <= maxMessageSize)
        default: break
        }
    }
    return 0
}
