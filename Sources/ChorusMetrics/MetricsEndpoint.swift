import ChorusLoop
import ChorusServer
import ChorusWebSocket

/// The application of the `--metrics-port` listener: `GET /metrics` without a token, for
/// scrapers that cannot send a header (bind it to a private address: `--metrics-host`, default
/// 127.0.0.1). It runs on a `WebSocketServer` of its own with one loop, so it reuses the server's
/// HTTP parsing, limits and timeouts; it refuses every upgrade.
public final class MetricsEndpoint: ServerApplication {
    public let collector: MetricsCollector

    public init(collector: MetricsCollector) { self.collector = collector }

    public func handleHTTP(_ request: HTTPRequest, server: WebSocketServer) -> HTTPResponse? {
        guard request.head.path == OperatorRoutes.metricsPath else {
            return .text(404, "not found: only /metrics here\n")
        }
        guard request.head.method == "GET" else { return OperatorRoutes.methodNotAllowed }
        return OperatorRoutes.metricsResponse(collector)
    }

    public func shouldUpgrade(_ head: HTTPRequestHead, remoteAddress: SocketAddress) -> UpgradeDecision {
        .reject(.text(404, "not found: only /metrics here\n"))
    }

    public func connection(_ connection: Connection, received message: WebSocketMessage) {}
}
