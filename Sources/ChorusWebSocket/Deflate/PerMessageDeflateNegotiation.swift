// RFC 7692 §5 and §7.1: parsing Sec-WebSocket-Extensions offers and building the response.

public enum PerMessageDeflateNegotiation {
    /// Parses the full Sec-WebSocket-Extensions value (comma-separated offers, possibly several
    /// permessage-deflate offers in preference order, other extensions ignored; params with quoted and
    /// unquoted values; whitespace). Accepts the first valid permessage-deflate offer; an offer with an
    /// unknown parameter, a repeated parameter, a bad value (window bits outside 8...15, a value on a
    /// no_context_takeover param, client_max_window_bits with or without a value) is declined and the
    /// next one considered. Never answers with a parameter the client did not allow (e.g.
    /// client_max_window_bits only if offered). Returns nil when mode is .off or nothing is acceptable.
    ///
    /// If several Sec-WebSocket-Extensions header lines were received, join them with ", " first.
    public static func negotiate(offers: String, config: PerMessageDeflateConfig) -> PerMessageDeflateAgreement? {
        if config.mode == .off { return nil }
        for ext in ExtensionHeaderParser.parse(offers) {
            guard let ext, ext.name == "permessage-deflate" else { continue }
            guard let offer = Offer(ext.params) else { continue }  // declined: try the next offer
            return agreement(for: offer, config: config)
        }
        return nil
    }

    /// A syntactically and semantically valid permessage-deflate offer (RFC 7692 §7.1).
    struct Offer: Equatable {
        var serverNoContextTakeover = false
        var clientNoContextTakeover = false
        /// nil: not offered.
        var serverMaxWindowBits: Int?
        /// nil: not offered; .some(nil): offered without a value; .some(n): offered with value n.
        var clientMaxWindowBits: Int??

        init?(_ params: [(name: String, value: String?)]) {
            var seen: Set<String> = []
            for (name, value) in params {
                guard seen.insert(name).inserted else { return nil }  // §7.1: repeated parameter → decline
                switch name {
                case "server_no_context_takeover":
                    guard value == nil else { return nil }  // §7.1.1.1: no value
                    serverNoContextTakeover = true
                case "client_no_context_takeover":
                    guard value == nil else { return nil }  // §7.1.1.2: no value
                    clientNoContextTakeover = true
                case "server_max_window_bits":
                    // §7.1.2.1: a value is required.
                    guard let value, let bits = Offer.windowBits(value) else { return nil }
                    serverMaxWindowBits = bits
                case "client_max_window_bits":
                    // §7.1.2.2: the value is optional.
                    if let value {
                        guard let bits = Offer.windowBits(value) else { return nil }
                        clientMaxWindowBits = .some(bits)
                    } else {
                        clientMaxWindowBits = .some(nil)
                    }
                default:
                    return nil  // §7.1: unknown parameter → decline
                }
            }
        }

        /// "A decimal integer value without leading zeroes between 8 to 15, inclusive" (§7.1.2.1).
        static func windowBits(_ s: String) -> Int? {
            let u = Array(s.utf8)
            guard !u.isEmpty, u.count <= 2, u[0] != UInt8(ascii: "0"),
                u.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
            else { return nil }
            let n = u.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
            return (8...15).contains(n) ? n : nil
        }
    }

    static func agreement(for offer: Offer, config: PerMessageDeflateConfig) -> PerMessageDeflateAgreement {
        // §7.1.1.1: must be answered when offered; the server may add it on its own (shared mode: always,
        // so one compressed frame serves every recipient).
        let serverNoContextTakeover = offer.serverNoContextTakeover || config.mode == .shared
        // §7.1.1.2: the server may always include it; we echo the client's hint so both sides agree that
        // the inflater can reset after every message.
        let clientNoContextTakeover = offer.clientNoContextTakeover

        // §7.1.2.1: answer with the same or a smaller value than offered. When not offered, the server may
        // still include it (a smaller window than 15 lets the client save memory).
        let serverBits: Int
        let includeServerBits: Bool
        if let offered = offer.serverMaxWindowBits {
            serverBits = min(offered, config.serverMaxWindowBits)  // 8 allowed: see the 8 → 9 quirk
            includeServerBits = true
        } else {
            serverBits = config.serverMaxWindowBits
            includeServerBits = serverBits < 15
        }

        // §7.1.2.2: only if the client offered client_max_window_bits may the server include it,
        // with a value no larger than the client's (if it gave one).
        let clientBits: Int
        let includeClientBits: Bool
        switch offer.clientMaxWindowBits {
        case .none:
            clientBits = 15
            includeClientBits = false
        case .some(.none):
            clientBits = config.clientMaxWindowBits
            includeClientBits = true
        case .some(.some(let offered)):
            clientBits = min(offered, config.clientMaxWindowBits)
            includeClientBits = true
        }

        var header = "permessage-deflate"
        if serverNoContextTakeover { header += "; server_no_context_takeover" }
        if clientNoContextTakeover { header += "; client_no_context_takeover" }
        if includeServerBits { header += "; server_max_window_bits=\(serverBits)" }
        if includeClientBits { header += "; client_max_window_bits=\(clientBits)" }
        return PerMessageDeflateAgreement(
            serverNoContextTakeover: serverNoContextTakeover, clientNoContextTakeover: clientNoContextTakeover,
            serverMaxWindowBits: serverBits, clientMaxWindowBits: clientBits, responseHeaderValue: header)
    }
}

/// RFC 6455 §9.1 grammar for Sec-WebSocket-Extensions:
///   extension-list = 1#extension
///   extension = extension-token *( ";" extension-param )
///   extension-param = token [ "=" (token | quoted-string) ]
/// Names are compared lowercased. A quoted value is unescaped and must itself be a token (§9.1).
enum ExtensionHeaderParser {
    struct Extension { var name: String; var params: [(name: String, value: String?)] }

    /// One entry per non-empty list element; nil for an element that is malformed (it is declined,
    /// the others are still considered).
    static func parse(_ header: String) -> [Extension?] {
        var result: [Extension?] = []
        let bytes = Array(header.utf8)
        for element in split(bytes[...], on: UInt8(ascii: ",")) {
            let trimmed = trim(element)
            if trimmed.isEmpty { continue }  // "#rule" allows empty elements
            result.append(parseExtension(trimmed))
        }
        return result
    }

    private static func parseExtension(_ bytes: ArraySlice<UInt8>) -> Extension? {
        let parts = split(bytes, on: UInt8(ascii: ";"))
        guard let first = parts.first else { return nil }
        let nameBytes = trim(first)
        guard !nameBytes.isEmpty, nameBytes.allSatisfy(isTokenChar) else { return nil }
        var ext = Extension(name: lowercased(nameBytes), params: [])
        for part in parts.dropFirst() {
            let p = trim(part)
            guard !p.isEmpty else { return nil }
            if let eq = p.firstIndex(of: UInt8(ascii: "=")) {
                let name = trim(p[p.startIndex..<eq])
                let rawValue = trim(p[(eq + 1)...])
                guard !name.isEmpty, name.allSatisfy(isTokenChar), let value = unquote(rawValue) else { return nil }
                ext.params.append((lowercased(name), value))
            } else {
                guard p.allSatisfy(isTokenChar) else { return nil }
                ext.params.append((lowercased(p), nil))
            }
        }
        return ext
    }

    /// A token, or a quoted-string whose unescaped content is a token.
    private static func unquote(_ v: ArraySlice<UInt8>) -> String? {
        guard !v.isEmpty else { return nil }
        if v.first == UInt8(ascii: "\"") {
            guard v.count >= 2, v.last == UInt8(ascii: "\"") else { return nil }
            var out: [UInt8] = []
            var i = v.startIndex + 1
            let end = v.endIndex - 1
            while i < end {
                var c = v[i]
                if c == UInt8(ascii: "\\") {
                    i += 1
                    guard i < end else { return nil }
                    c = v[i]
                } else if c == UInt8(ascii: "\"") {
                    return nil
                }
                out.append(c)
                i += 1
            }
            guard !out.isEmpty, out.allSatisfy(isTokenChar) else { return nil }
            return String(decoding: out, as: UTF8.self)
        }
        guard v.allSatisfy(isTokenChar) else { return nil }
        return String(decoding: v, as: UTF8.self)
    }

    /// Splits on `separator` outside quoted-strings (a backslash escapes the next byte inside quotes).
    private static func split(_ bytes: ArraySlice<UInt8>, on separator: UInt8) -> [ArraySlice<UInt8>] {
        var parts: [ArraySlice<UInt8>] = []
        var start = bytes.startIndex
        var inQuotes = false
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let c = bytes[i]
            if inQuotes {
                if c == UInt8(ascii: "\\") { i += 1 } else if c == UInt8(ascii: "\"") { inQuotes = false }
            } else if c == UInt8(ascii: "\"") {
                inQuotes = true
            } else if c == separator {
                parts.append(bytes[start..<i])
                start = i + 1
            }
            i += 1
        }
        parts.append(bytes[start..<bytes.endIndex])
        return parts
    }

    private static func trim(_ s: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var s = s
        while let f = s.first, f == 0x20 || f == 0x09 { s.removeFirst() }
        while let l = s.last, l == 0x20 || l == 0x09 { s.removeLast() }
        return s
    }

    private static func lowercased(_ s: ArraySlice<UInt8>) -> String {
        String(decoding: s.map { ($0 >= 0x41 && $0 <= 0x5A) ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    /// RFC 7230 tchar.
    private static func isTokenChar(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(c)
        }
    }
}
