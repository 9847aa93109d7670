import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOPosix

/// How the proxies reach the backend (`--proxy-*` flags).
public struct ProxyConfiguration: Sendable {
    /// Seconds a call has, from the hand-over to the last byte of the answer (`--proxy-timeout`).
    public var timeout = 3.0
    /// Calls in flight per endpoint at most (`--proxy-max-in-flight`); beyond, a call fails at once
    /// with `.overload` instead of waiting in an unbounded queue.
    public var maxInFlight = 1000
    /// Kept-alive connections per backend host at most (`--proxy-connections`); calls beyond it wait
    /// for a free connection inside AsyncHTTPClient's pool (still within `timeout` and `maxInFlight`).
    public var connections = 8
    /// Sent as `Authorization: Bearer <token>` when set (`--proxy-token`).
    public var token: String?
    /// Largest answer body in bytes; a larger one fails as `.invalid`.
    public var maxResponseSize = 1_000_000

    public init() {}
}

/// Why a call produced no usable answer (each is counted; the app maps them all to "unavailable").
public enum ProxyFailure: String, Sendable, CaseIterable {
    /// The deadline passed (connect, send or the answer).
    case timeout
    /// No connection (refused, reset, closed before answering).
    case refused
    /// More calls in flight than `maxInFlight`: not attempted.
    case overload
    /// An answer the contract has no meaning for: a status other than 2xx/4xx/5xx, a body over
    /// `maxResponseSize`, or (reported by the caller) a body that is not the expected JSON.
    case invalid
}

/// What a call produced.
public enum ProxyOutcome: Sendable, Equatable {
    case answered(status: Int, body: [UInt8])
    case failed(ProxyFailure)
}

/// The HTTP client the proxies share: one AsyncHTTPClient with keep-alive and a bounded pool per
/// backend host, on one NIO thread of its own (the proxy's work is a few syscalls per call; the
/// Chorus loops never run NIO code).
public final class ProxyClient: Sendable {
    public let configuration: ProxyConfiguration
    let http: HTTPClient
    private let group: MultiThreadedEventLoopGroup

    public init(configuration: ProxyConfiguration) {
        self.configuration = configuration
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var c = HTTPClient.Configuration()
        c.redirectConfiguration = .disallow
        c.decompression = .disabled
        c.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, configuration.connections))
        // A backend that is down fails a call at once ("refused") rather than after `timeout` of
        // connect retries: the sender learns "unavailable" without waiting, and the next call tries again.
        c.connectionPool.retryConnectionEstablishment = false
        c.timeout = .init(connect: Self.amount(configuration.timeout), read: Self.amount(configuration.timeout))
        http = HTTPClient(eventLoopGroup: group, configuration: c)
    }

    /// Closes the pooled connections and stops the client's thread (blocks; not from a task).
    public func syncShutdown() {
        try? http.syncShutdown()
        try? group.syncShutdownGracefully()
    }

    /// An endpoint of this client: `name` labels its counters.
    public func endpoint(_ name: String, url: String) -> ProxyEndpoint {
        ProxyEndpoint(name: name, url: url, client: self)
    }

    static func amount(_ seconds: Double) -> TimeAmount { .nanoseconds(Int64(max(seconds, 0.001) * 1e9)) }

    /// One POST of a JSON body; never throws: every failure is an outcome.
    func post(_ url: String, body: [UInt8], extraHeaders: [(String, String)]) async -> ProxyOutcome {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let token = configuration.token { request.headers.add(name: "Authorization", value: "Bearer " + token) }
        for (name, value) in extraHeaders { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await http.execute(request, timeout: Self.amount(configuration.timeout))
            let buffer = try await response.body.collect(upTo: configuration.maxResponseSize)
            return .answered(status: Int(response.status.code), body: Array(buffer.readableBytesView))
        } catch let error as HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout, .getConnectionFromPoolTimeout:
                return .failed(.timeout)
            default: return .failed(.refused)
            }
        } catch is NIOTooManyBytesError {
            return .failed(.invalid)
        } catch {
            // Connection refused/reset (NIOConnectionError, IOError, ChannelError) and the like.
            return .failed(.refused)
        }
    }
}
