import ChorusDeflate
import ChorusLoop
import ChorusWebSocket

#if canImport(Glibc)
import Glibc
#endif

/// One client. Owned by exactly one loop and touched only on that loop's thread.
///
/// Its stored properties are `@exclusivity(unchecked)`: a broadcast reads and writes several of them
/// per recipient, the dynamic exclusivity checks cost about a quarter of that path's instructions
/// (BENCHMARKS.md, callgrind), and one thread with no overlapping `inout` access to them cannot
/// conflict. The same holds for the loop's own state (ServerLoop, EventLoop, FrameArena).
public final class Connection {
    // The stored properties are what every connection costs, idle or not (BENCHMARKS.md, memory
    // per idle connection): what only the HTTP phase needs lives in `http`, flags are grouped at
    // the end so that they share bytes, and none holds a heap block of its own while idle.
    unowned let loop: ServerLoop
    public let id: ConnectionID
    let fd: Int32

    // MARK: Fan-out (touched per recipient of every broadcast)

    @exclusivity(unchecked) var outbound = OutboundQueue()
    /// Emit epoch stamp: dedupes recipients across several rooms of one emit.
    @exclusivity(unchecked) var emitMark: UInt64 = 0
    /// What the kernel's send queue held when last asked (SIOCOUTQ), counted toward the
    /// backpressure limit. Asked only when the socket is or was recently full (a flush that could
    /// not write everything, an EPOLLOUT, then each tick until it reads 0), never per message.
    @exclusivity(unchecked) var kernelQueued = 0
    /// Per-connection compressor in `dedicated` mode.
    @exclusivity(unchecked) var dedicatedDeflater: PerMessageDeflater?

    // MARK: Reading

    /// The HTTP phase's parser and body (nil from the upgrade on).
    @exclusivity(unchecked) var http: HTTPExchange?
    @exclusivity(unchecked) var reader: WebSocketMessageReader?
    @exclusivity(unchecked) var inbound = InboundBuffer()
    @exclusivity(unchecked) var lastActivity: UInt64
    @exclusivity(unchecked) var deadline: UInt64 = 0
    /// When the first byte of the message now partly received arrived (0: none partial).
    @exclusivity(unchecked) var messageStartedAt: UInt64 = 0
    /// The largest message this connection may send now (`incomingMessageLimit`).
    @exclusivity(unchecked) var messageLimit: Int
    /// The connection's rate limits; nil when the server sets none (the default).
    @exclusivity(unchecked) var rateLimits: ConnectionRateLimits?

    // MARK: Rooms and the application

    /// Rooms this connection is in, with its index in each room's member array.
    @exclusivity(unchecked) var memberships = Memberships()
    /// Position in the loop's list of open connections.
    @exclusivity(unchecked) var openIndex: Int32 = -1
    /// Whatever the application wants to keep per connection (for example the authenticated user).
    @exclusivity(unchecked) public var userData: AnyObject?
    @exclusivity(unchecked) public private(set) var subprotocol: String?
    public let remoteAddress: SocketAddress

    // MARK: State and flags (small fields together, so that they share words)

    /// HTTP, open, closing, closed, and the close handshake (ConnectionLifecycle.swift).
    @exclusivity(unchecked) var lifecycle = ConnectionLifecycle()
    var state: ConnectionLifecycle.State { lifecycle.state }

    /// In the loop's flush list this iteration.
    @exclusivity(unchecked) var isDirty = false
    /// EPOLLOUT registered because the socket buffer was full.
    @exclusivity(unchecked) var awaitingWritable = false
    /// Complete frames wait in `inbound` (the last read passed `maxMessagesPerRead`).
    @exclusivity(unchecked) var hasBacklog = false
    @exclusivity(unchecked) var pingOutstanding = false
    /// Queued for a backpressure close at the end of the emit that found it over its limit.
    @exclusivity(unchecked) var backpressureClosePending = false
    @exclusivity(unchecked) var opened = false
    /// The queue holds only the handshake's answer (and what the application sent on open): its
    /// storage goes back once that is written, so an idle connection keeps no queue block.
    @exclusivity(unchecked) var releaseQueueWhenDrained = false
    /// permessage-deflate was agreed with this client, and whether its agreement says the server
    /// takes no context over between messages.
    @exclusivity(unchecked) private(set) var compressionAgreed = false
    @exclusivity(unchecked) private(set) var serverNoContextTakeover = false
    /// Whether shared (compress-once) frames suit this client's window.
    @exclusivity(unchecked) var acceptsSharedCompression = false
    /// A shared frame went into this client's inflate stream: the dedicated compressor's history no
    /// longer matches the client's window, so it must start afresh before its next message.
    @exclusivity(unchecked) var dedicatedDeflaterNeedsReset = false

    /// After a protocol error or a written HTTP answer: read and discard until the peer's FIN.
    var discardInput: Bool { lifecycle.discardInput }
    /// The code of a close the server started (application, idle timeout, backpressure, protocol
    /// error, shutdown); nil when the peer closed first or vanished. Read it in `connectionClosed`.
    public var serverCloseCode: WebSocketCloseCode? { lifecycle.serverCloseCode }

    init(loop: ServerLoop, id: ConnectionID, fd: Int32, remoteAddress: SocketAddress, now: UInt64) {
        self.loop = loop
        self.id = id
        self.fd = fd
        self.remoteAddress = remoteAddress
        self.http = HTTPExchange(maxHeaderSize: loop.configuration.maxHeaderSize)
        self.lastActivity = now
        self.messageLimit = loop.configuration.maxMessageSize
        let configuration = loop.configuration
        if !configuration.messageRate.isUnlimited || !configuration.byteRate.isUnlimited {
            self.rateLimits = ConnectionRateLimits(
                messages: configuration.messageRate, bytes: configuration.byteRate, now: now)
        }
    }

    deinit {
        inbound.release()
    }

    public var server: WebSocketServer { loop.server }
    /// The loop that owns this connection (its callbacks and `tick` run on that loop's thread).
    public var loopIndex: Int { loop.index }

    public var isOpen: Bool { lifecycle.isOpen }

    // MARK: Application API (loop thread only)

    /// Sends one message to this client (compressed if negotiated and worth it).
    public func send(_ opcode: WebSocketOpcode, _ payload: UnsafeRawBufferPointer) {
        guard isOpen else { return }
        loop.sendDirect(self, opcode, payload)
    }

    public func send(text: String) {
        var text = text
        text.withUTF8 { send(.text, UnsafeRawBufferPointer($0)) }
    }

    public func send(binary: [UInt8]) {
        binary.withUnsafeBytes { send(.binary, $0) }
    }

    /// Queues an already-encoded frame (shared with other recipients).
    public func send(_ frame: OutgoingFrame) {
        guard isOpen else { return }
        loop.fanout.enqueue(frame, to: self)
    }

    /// Queues frames whatever the backpressure limit, in order: bytes the caller holds anyway and
    /// must deliver whole (a recovered Socket.IO socket's missed events, which the recovery log
    /// keeps; each costs the queue an entry, not a copy).
    public func sendPastLimit(_ frames: [OutgoingFrame]) {
        guard isOpen else { return }
        for frame in frames { loop.fanout.enqueue(frame, to: self, withinLimit: true) }
    }

    /// Queues frames that only make sense together (a Socket.IO binary packet and its attachments):
    /// all of them, or none when they would pass this connection's backpressure limit.
    public func send(group frames: [OutgoingFrame]) {
        loop.fanout.enqueueGroup(frames, to: self)
    }

    /// Starts the close handshake (RFC 6455 §7.1.2).
    public func close(code: WebSocketCloseCode = .normalClosure, reason: String = "") {
        loop.beginClose(self, code: code, reason: reason)
    }

    public func join(_ room: String) {
        guard isOpen else { return }
        loop.rooms.join(self, room)
    }

    public func leave(_ room: String) {
        loop.rooms.leave(self, room)
    }

    public var rooms: [String] { memberships.roomNames }

    /// The first of its rooms that `predicate` accepts (in join order), found without building a list.
    public func firstRoom(where predicate: (String) -> Bool) -> String? { memberships.first(where: predicate) }

    public func isMember(of room: String) -> Bool { memberships.contains(roomNamed: room) }

    /// The largest message this client may send now, at most the server's `maxMessageSize`
    /// (beyond it: 1009). An application lowers it until the client has authenticated, so that an
    /// unknown client cannot make the server assemble a large message; nil restores the server's.
    public var incomingMessageLimit: Int? {
        get { messageLimit }
        set { messageLimit = min(newValue ?? loop.configuration.maxMessageSize, loop.configuration.maxMessageSize) }
    }

    /// Bytes waiting in this connection's outbound queue.
    public var bufferedAmount: Int { outbound.byteCount }

    func upgraded(subprotocol: String?, agreement: PerMessageDeflateAgreement?) {
        self.subprotocol = subprotocol
        self.http = nil
        self.compressionAgreed = agreement != nil
        self.serverNoContextTakeover = agreement?.serverNoContextTakeover ?? false
        let config = loop.configuration
        reader = WebSocketMessageReader(
            maxMessageSize: config.maxMessageSize,
            inflater: agreement.map { PerMessageInflater(agreement: $0) })
        if let agreement {
            // A shared frame is compressed with the configured window: the client's must be as large.
            acceptsSharedCompression = agreement.serverMaxWindowBits >= config.deflate.serverMaxWindowBits
            if config.deflate.mode == .dedicated {
                dedicatedDeflater = config.deflate.makeDeflater(for: agreement)
            }
        }
        releaseQueueWhenDrained = true
        lifecycle.upgraded()
    }
}
