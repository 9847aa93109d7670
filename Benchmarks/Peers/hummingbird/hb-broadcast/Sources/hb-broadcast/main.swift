// hb-broadcast: every text/binary message any client sends goes to every connection, the sender
// included. Usage: hb-broadcast [--host H] [--port P] [--deflate on|off]
// Prints "chorus: listening on HOST:PORT" when ready (same ready line as chorus and the node peer).
import Hummingbird
import HummingbirdWSCompression
import HummingbirdWebSocket
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

var host = "127.0.0.1"
var port = 0
var deflate = false
var args = CommandLine.arguments.dropFirst().makeIterator()
while let a = args.next() {
    switch a {
    case "--host": host = args.next() ?? host
    case "--port": port = Int(args.next() ?? "0") ?? 0
    case "--deflate": deflate = (args.next() ?? "off") != "off"
    default: break
    }
}

enum Outgoing: Sendable {
    case text(String)
    case binary(ByteBuffer)
}

/// Each connection's queue: the receiving task writes it to its socket, so one slow connection
/// never blocks the broadcasting sender.
final class Hub: Sendable {
    let members = Mutex<[Int: AsyncStream<Outgoing>.Continuation]>([:])
    let nextID = Atomic<Int>(0)

    func join() -> (Int, AsyncStream<Outgoing>) {
        let id = nextID.add(1, ordering: .relaxed).newValue
        let (stream, continuation) = AsyncStream<Outgoing>.makeStream(bufferingPolicy: .unbounded)
        members.withLock { $0[id] = continuation }
        return (id, stream)
    }

    func leave(_ id: Int) {
        let c = members.withLock { $0.removeValue(forKey: id) }
        c?.finish()
    }

    func broadcast(_ message: Outgoing) {
        let all = members.withLock { Array($0.values) }
        for c in all { c.yield(message) }
    }
}

let hub = Hub()
let listenHost = host
let listenPort = port
var logger = Logger(label: "hb-broadcast")
logger.logLevel = .error

let wsConfig = WebSocketServerConfiguration(
    maxFrameSize: 1 << 20,
    extensions: deflate
        ? [.perMessageDeflate(noContextTakeover: true, maxDecompressedFrameSize: 1 << 20, minFrameSizeToCompress: 0)]
        : [],
    autoPing: .disabled
)

let app = Application(
    router: Router(),
    server: .http1WebSocketUpgrade(configuration: wsConfig) { _, _, _ in
        .upgrade([:]) { inbound, outbound, _ in
            let (id, queue) = hub.join()
            defer { hub.leave(id) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await message in queue {
                        switch message {
                        case .text(let s): try await outbound.write(.text(s))
                        case .binary(let b): try await outbound.write(.binary(b))
                        }
                    }
                }
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    switch message {
                    case .text(let s): hub.broadcast(.text(s))
                    case .binary(let b): hub.broadcast(.binary(b))
                    }
                }
                hub.leave(id)
                try await group.waitForAll()
            }
        }
    },
    configuration: .init(address: .hostname(listenHost, port: listenPort), serverName: nil, backlog: 4096),
    onServerRunning: { channel in
        let p = channel.localAddress?.port ?? listenPort
        let line = "chorus: listening on \(listenHost):\(p)\n"
        _ = line.utf8CString.withUnsafeBufferPointer { write(1, $0.baseAddress, $0.count - 1) }
    },
    logger: logger
)
try await app.runService()
