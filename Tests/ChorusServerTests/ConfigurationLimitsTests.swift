import ChorusServer
import ChorusTestSupport
import ChorusWebSocket
import Testing

/// `ServerConfiguration.validate()`: the limits are the configuration's, so a program embedding the
/// server is refused the same way as `chorus serve`; each limit at its edge.
@Suite("Server configuration limits")
struct ConfigurationLimitsTests {
    static func problems(_ change: (inout ServerConfiguration) -> Void) -> [String] {
        var c = ServerConfiguration()
        change(&c)
        do throws(ServerConfigurationError) {
            try c.validate()
            return []
        } catch {
            return error.problems
        }
    }

    @Test("the defaults are valid")
    func defaults() { #expect(Self.problems { _ in }.isEmpty) }

    @Test("the loop cap: 1 and 256 threads are valid, 0 and 257 are not")
    func loopCap() {
        #expect(Self.problems { $0.threads = 1 }.isEmpty)
        #expect(Self.problems { $0.threads = ServerConfiguration.maxThreads }.isEmpty)
        #expect(Self.problems { $0.threads = 0 } == ["threads must be 1...256 (is 0)"])
        #expect(Self.problems { $0.threads = 257 } == ["threads must be 1...256 (is 257)"])
    }

    /// A limit, set just inside (`valid`) or just outside its range.
    enum Edge: String, CaseIterable, Sendable {
        case readBufferSize, maxHeaderSize, closeTimeout, maxBodySize, idleTimeout, maxLoopQueue, threshold, windowBits,
            port

        func set(_ c: inout ServerConfiguration, valid: Bool) {
            switch self {
            case .readBufferSize: c.readBufferSize = valid ? 4096 : 4095
            case .maxHeaderSize: c.maxHeaderSize = valid ? 256 : 255
            case .closeTimeout: c.closeTimeout = valid ? 0.001 : 0
            case .maxBodySize: c.maxBodySize = valid ? 0 : -1
            case .idleTimeout: c.idleTimeout = valid ? 0 : -1
            case .maxLoopQueue: c.maxLoopQueue = valid ? 0 : -1
            case .threshold: c.deflate.threshold = valid ? 0 : -1
            case .windowBits: c.deflate.serverMaxWindowBits = valid ? 9 : 8
            case .port: c.port = valid ? 65535 : 65536
            }
        }

        /// A word the refusal names.
        var word: String {
            switch self {
            case .windowBits: "window bits"
            default: rawValue
            }
        }
    }

    @Test("each limit at its edge", arguments: Edge.allCases)
    func edges(_ edge: Edge) {
        #expect(Self.problems { edge.set(&$0, valid: true) }.isEmpty, "\(edge): valid edge refused")
        let refused = Self.problems { edge.set(&$0, valid: false) }
        #expect(refused.count == 1 && refused[0].contains(edge.word), "\(edge): \(refused)")
    }

    @Test("start() refuses an invalid configuration before binding anything")
    func startRefuses() throws {
        var c = ServerConfiguration()
        c.host = "127.0.0.1"
        c.port = 0
        c.threads = 257
        c.readBufferSize = 100
        let server = WebSocketServer(configuration: c, application: EchoApplication())
        #expect(throws: ServerConfigurationError.self) { try server.start() }
        #expect(server.port == 0)
    }

    @Test("a read buffer of 4 KiB still reads frames far larger than it, whole")
    func smallReadBuffer() throws {
        let server = try startServer(EchoApplication(), threads: 1) {
            $0.readBufferSize = ServerConfiguration.minReadBufferSize
        }
        defer { server.shutdown() }
        let client = try BlockingWebSocketClient(port: server.port)
        let big = String(repeating: "0123456789abcdef", count: 4096)  // 64 KiB
        try client.send(text: big)
        #expect(try client.receiveText() == big)
        try client.send(text: "small")
        #expect(try client.receiveText() == "small")
    }
}
