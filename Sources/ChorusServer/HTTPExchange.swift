import ChorusWebSocket

/// What a connection needs while it speaks HTTP: the request parser, the body being read and its
/// head, and how many requests it has had answered. It lives in a block of its own that the
/// connection drops at the upgrade, so an open WebSocket connection does not carry it (about 150
/// bytes of every idle connection; BENCHMARKS.md, memory per idle connection).
final class HTTPExchange {
    var parser: HTTPRequestParser
    /// The plain request whose body is being read (state `httpBody`): its head, and the body's
    /// reader (bounded by `maxBodySize`).
    var pendingBody: (head: HTTPRequestHead, reader: HTTPBodyReader)?
    /// Plain requests answered on this connection with it kept alive: an idle keep-alive
    /// connection is closed quietly at its deadline, a half-sent request gets 408.
    var requestsServed = 0

    init(maxHeaderSize: Int) {
        parser = HTTPRequestParser(maxHeaderSize: maxHeaderSize)
    }
}
