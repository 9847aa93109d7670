// The limits a server configuration must stay within, checked where the configuration is used
// (`WebSocketServer.start()`), not only by the command line: a program embedding ChorusServer gets
// the same answer as `chorus serve`.
import ChorusWebSocket

/// Why `WebSocketServer.start()` refused a configuration: every problem found, each naming its field.
public struct ServerConfigurationError: Error, CustomStringConvertible, Sendable, Equatable {
    public let problems: [String]
    public var description: String { "invalid server configuration: " + problems.joined(separator: "; ") }
}

extension ServerConfiguration {
    /// Event loops one server runs at most: one thread each, and the server keeps per-loop tables
    /// sized by it (room membership, loop queues, statistics); more loops than cores only adds
    /// cross-loop traffic.
    public static let maxThreads = 256
    /// The smallest shared read buffer: one TCP segment's worth, so a read never has to stop
    /// inside a small frame's header.
    public static let minReadBufferSize = 4096

    /// Throws with every field outside its range.
    public func validate() throws(ServerConfigurationError) {
        var problems: [String] = []
        func require(_ ok: Bool, _ problem: @autoclosure () -> String) { if !ok { problems.append(problem()) } }
        require((1...Self.maxThreads).contains(threads), "threads must be 1...\(Self.maxThreads) (is \(threads))")
        require((0...65535).contains(port), "port must be 0...65535 (is \(port))")
        require(backlog > 0, "backlog must be positive")
        require(maxMessageSize > 0, "maxMessageSize must be positive")
        require(maxHeaderSize >= 256, "maxHeaderSize must be at least 256")
        require(maxBodySize >= 0, "maxBodySize must not be negative")
        require(handshakeTimeout > 0, "handshakeTimeout must be positive")
        require(closeTimeout > 0, "closeTimeout must be positive")
        for (name, value) in [
            ("idleTimeout", idleTimeout), ("messageTimeout", messageTimeout), ("pingInterval", pingInterval),
            ("shutdownDrain", shutdownDrain),
        ] {
            require(value >= 0 && value.isFinite, "\(name) must be 0 or more")
        }
        require(maxBackpressure > 0, "maxBackpressure must be positive")
        require(socketSendBuffer >= 0, "socketSendBuffer must not be negative")
        require(maxConnections >= 0 && maxConnectionsPerIP >= 0, "connection limits must not be negative")
        require(maxMessagesPerRead >= 0, "maxMessagesPerRead must not be negative")
        require(maxLoopQueue >= 0, "maxLoopQueue must not be negative")
        require(readBufferSize >= Self.minReadBufferSize, "readBufferSize must be at least \(Self.minReadBufferSize)")
        require((9...15).contains(deflate.serverMaxWindowBits), "deflate window bits must be 9...15")
        require((1...9).contains(deflate.memLevel), "deflate memLevel must be 1...9")
        require(deflate.threshold >= 0, "deflate threshold must not be negative")
        require((-1...9).contains(deflate.level), "deflate level must be -1...9")
        if !problems.isEmpty { throw ServerConfigurationError(problems: problems) }
    }
}
