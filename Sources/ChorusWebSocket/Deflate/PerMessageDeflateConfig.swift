// RFC 7692 permessage-deflate: server configuration and the negotiated agreement.

/// How the server uses permessage-deflate.
public enum DeflateMode: String, Sendable, CaseIterable {
    /// Never negotiate permessage-deflate.
    case off
    /// Always answer `server_no_context_takeover`, so every server message is compressed from an empty
    /// window. One compressed frame can then be sent to every recipient of a broadcast (encode once),
    /// and the server needs no per-connection deflate stream. RFC 7692 §7.1.1.1 lets the server add
    /// `server_no_context_takeover` to its response even when the client did not offer it.
    case shared
    /// The server keeps its LZ77 window across messages (better ratio) unless the client demanded
    /// `server_no_context_takeover`. Costs one deflate stream per connection.
    case dedicated
}

public struct PerMessageDeflateConfig: Sendable {
    /// shared: server_no_context_takeover always answered; dedicated: server keeps context if client allows.
    public var mode: DeflateMode
    /// Largest LZ77 window the server compresses with, 9...15.
    ///
    /// The 8 → 9 quirk: RFC 7692 lets a client offer `server_max_window_bits=8` (a 256-byte window),
    /// but zlib ≥ 1.2.9 rejects `windowBits = -8` for raw deflate (`deflateInit2` returns
    /// Z_STREAM_ERROR). The server therefore *answers* 8 when the client asks for 8, and compresses
    /// with 9. That is safe: zlib limits match distances to `w_size - MIN_LOOKAHEAD`, i.e.
    /// 512 - 262 = 250 bytes for a 512-byte window, so the output never refers further back than a
    /// 256-byte window can hold. (Values below 9 here are raised to 9.)
    public var serverMaxWindowBits: Int
    /// zlib memLevel for the server's deflate streams, 1...9 (hash table and pending buffer size).
    public var memLevel: Int
    /// Payloads smaller than this are sent uncompressed (RSV1 clear).
    public var threshold: Int
    /// Largest client window the server asks for when the client offered `client_max_window_bits`
    /// (9...15). Smaller saves inflate memory per connection (1 << bits bytes). Default 15 (no limit).
    public var clientMaxWindowBits: Int
    /// zlib compression level for every deflate stream the server makes (`levels`; default
    /// `defaultLevel`). ChorusDeflate's `makeSharedDeflater()` / `makeDeflater(for:)` pass it on.
    public var level: Int

    /// Default zlib level: 1.
    ///
    /// Measured (zlib 1.2.13, -O build, window 15, memLevel 8, this 2-core box), per message:
    ///
    ///     payload                      level 1               level 6
    ///     chat JSON 241 B, no ctx      ratio 0.655, 25 µs    ratio 0.651, 24 µs
    ///     chat JSON 241 B, ctx         ratio 0.240, 10 µs    ratio 0.169, 25 µs
    ///     update JSON 12.9 KB, no ctx  ratio 0.115, 52 µs    ratio 0.111, 140 µs
    ///     update JSON 12.9 KB, ctx     ratio 0.042, 59 µs    ratio 0.015, 148 µs
    ///
    /// Small messages cost the same at either level (block/Huffman-tree setup dominates); larger ones
    /// cost ~2.7x more CPU at level 6 for ~4 % smaller output without context takeover, which is the
    /// broadcast (`shared`) case. So 1. `dedicated` connections with context takeover gain more from
    /// level 6 (0.240 → 0.169 on chat): set `level` (`--deflate-level`) if CPU allows.
    public static let defaultLevel = 1
    /// The levels zlib accepts: -1 (Z_DEFAULT_COMPRESSION, which zlib takes as 6), 0 (stored blocks:
    /// the framing of deflate without compression) ... 9.
    public static let levels = -1...9

    public init(mode: DeflateMode = .shared, serverMaxWindowBits: Int = 15, memLevel: Int = 8, threshold: Int = 64) {
        self.init(
            mode: mode, serverMaxWindowBits: serverMaxWindowBits, memLevel: memLevel, threshold: threshold,
            clientMaxWindowBits: 15, level: Self.defaultLevel)
    }

    public init(
        mode: DeflateMode, serverMaxWindowBits: Int, memLevel: Int, threshold: Int,
        clientMaxWindowBits: Int, level: Int
    ) {
        self.mode = mode
        self.serverMaxWindowBits = min(max(serverMaxWindowBits, 9), 15)
        self.memLevel = min(max(memLevel, 1), 9)
        self.threshold = max(threshold, 0)
        self.clientMaxWindowBits = min(max(clientMaxWindowBits, 9), 15)
        self.level = min(max(level, Self.levels.lowerBound), Self.levels.upperBound)
    }

    /// Whether a payload of `count` bytes should be compressed.
    @inlinable public func shouldCompress(count: Int) -> Bool { mode != .off && count >= threshold }
}

/// The parameters both sides agreed on for one connection (RFC 7692 §7.1).
public struct PerMessageDeflateAgreement: Sendable, Equatable {
    /// The server resets its compression context after every message.
    public var serverNoContextTakeover: Bool
    /// The client resets its compression context after every message (the server's inflater may reset too).
    public var clientNoContextTakeover: Bool
    /// The window the server promised not to exceed (8...15). The deflater uses max(this, 9), see
    /// `PerMessageDeflateConfig.serverMaxWindowBits`.
    public var serverMaxWindowBits: Int
    /// The window the client may use (8...15); 15 when not limited.
    public var clientMaxWindowBits: Int
    /// The Sec-WebSocket-Extensions response value, e.g. "permessage-deflate; server_no_context_takeover; client_max_window_bits=15"
    public var responseHeaderValue: String

    public init(
        serverNoContextTakeover: Bool, clientNoContextTakeover: Bool,
        serverMaxWindowBits: Int, clientMaxWindowBits: Int, responseHeaderValue: String
    ) {
        self.serverNoContextTakeover = serverNoContextTakeover
        self.clientNoContextTakeover = clientNoContextTakeover
        self.serverMaxWindowBits = serverMaxWindowBits
        self.clientMaxWindowBits = clientMaxWindowBits
        self.responseHeaderValue = responseHeaderValue
    }

    /// zlib windowBits the server compresses with (8 is not supported by zlib raw deflate → 9).
    public var deflateWindowBits: Int { max(serverMaxWindowBits, 9) }
    /// zlib windowBits the server inflates with: max(negotiated, 9), robust against old zlib
    /// clients that asked for 8 but really used a 512-byte window.
    public var inflateWindowBits: Int { max(clientMaxWindowBits, 9) }
}
