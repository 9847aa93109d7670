// Where a Redis server is and how to log in: `redis://[[user]:password@]host[:port][/db]` or
// `unix:///path/to/socket[?db=N][&password=P]`, parsed once into a value with clear errors.

/// A parsed Redis address. `description` never shows the password.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    public var endpoint: Endpoint
    /// Redis 6 ACL user; nil sends the one-argument `AUTH password` (the `default` user).
    public var username: String?
    public var password: String?
    /// The logical database `SELECT`ed after connecting (commands only: pub/sub ignores databases).
    public var database: Int

    public static let defaultPort = 6379

    public init(endpoint: Endpoint, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
    }

    public init(parsing text: String) throws(RedisURLError) {
        if text.hasPrefix("redis://") {
            self = try Self.parseTCP(String(text.dropFirst("redis://".count)), original: text)
        } else if text.hasPrefix("unix://") {
            self = try Self.parseUnix(String(text.dropFirst("unix://".count)), original: text)
        } else if text.hasPrefix("rediss://") {
            throw RedisURLError(text, "TLS (rediss://) is not supported; use redis:// or unix://")
        } else {
            throw RedisURLError(text, "expected redis://[:password@]host:port[/db] or unix:///path/to/socket")
        }
    }

    public var description: String {
        var auth = ""
        if let username { auth = Self.percentEncode(username) }
        if password != nil { auth += ":***" }
        if !auth.isEmpty { auth += "@" }
        switch endpoint {
        case .tcp(let host, let port):
            let shownHost = host.contains(":") ? "[\(host)]" : host
            return "redis://\(auth)\(shownHost):\(port)" + (database != 0 ? "/\(database)" : "")
        case .unix(let path):
            var query: [String] = []
            if database != 0 { query.append("db=\(database)") }
            if password != nil { query.append("password=***") }
            return "unix://\(path)" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        }
    }

    private static func parseTCP(_ rest: String, original: String) throws(RedisURLError) -> RedisURL {
        var rest = Substring(rest)
        if let q = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) {
            throw RedisURLError(original, "unexpected '\(rest[q...])' (options in the query are only for unix://)")
        }
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            guard let colon = userinfo.firstIndex(of: ":") else {
                throw RedisURLError(
                    original, "credentials need a ':': redis://:PASSWORD@host or redis://USER:PASSWORD@host")
            }
            let user = try percentDecode(userinfo[..<colon], original)
            username = user.isEmpty ? nil : user
            password = try percentDecode(userinfo[userinfo.index(after: colon)...], original)
        }
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let db = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !db.isEmpty { database = try parseDatabase(db, original) }
        }
        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else {
                throw RedisURLError(original, "unclosed '[' in the IPv6 host")
            }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else {
                    throw RedisURLError(original, "unexpected '\(after)' after the IPv6 host")
                }
                portText = after.dropFirst()
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        guard !host.isEmpty else { throw RedisURLError(original, "the host is missing") }
        var port = defaultPort
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else {
                throw RedisURLError(original, "the port '\(portText)' is not a number from 1 to 65535")
            }
            port = p
        }
        return RedisURL(
            endpoint: .tcp(host: String(host), port: port), username: username, password: password, database: database)
    }

    private static func parseUnix(_ rest: String, original: String) throws(RedisURLError) -> RedisURL {
        var path = Substring(rest)
        var database = 0
        var password: String?
        if let q = path.firstIndex(of: "?") {
            let query = path[path.index(after: q)...]
            path = path[..<q]
            for pair in query.split(separator: "&") {
                guard let eq = pair.firstIndex(of: "=") else {
                    throw RedisURLError(original, "the option '\(pair)' has no value")
                }
                let key = pair[..<eq]
                let value = pair[pair.index(after: eq)...]
                switch key {
                case "db": database = try parseDatabase(value, original)
                case "password": password = try percentDecode(value, original)
                default: throw RedisURLError(original, "unknown option '\(key)' (known: db, password)")
                }
            }
        }
        guard path.hasPrefix("/") else {
            throw RedisURLError(original, "the socket path must be absolute: unix:///path/to/redis.sock")
        }
        return RedisURL(
            endpoint: .unix(path: try percentDecode(path, original)), password: password, database: database)
    }

    private static func parseDatabase(_ text: Substring, _ original: String) throws(RedisURLError) -> Int {
        guard let db = Int(text), db >= 0, db <= Int(Int32.max) else {
            throw RedisURLError(original, "the database '\(text)' is not a non-negative number")
        }
        return db
    }

    private static func percentDecode(_ text: Substring, _ original: String) throws(RedisURLError) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var utf8 = text.utf8.makeIterator()
        while let byte = utf8.next() {
            guard byte == UInt8(ascii: "%") else { bytes.append(byte); continue }
            guard let hi = utf8.next().flatMap(hexValue), let lo = utf8.next().flatMap(hexValue) else {
                throw RedisURLError(original, "a '%' is not followed by two hex digits")
            }
            bytes.append(hi << 4 | lo)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func percentEncode(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if scalar == "@" || scalar == ":" || scalar == "%" || scalar == "/" {
                out += "%" + String(scalar.value, radix: 16, uppercase: true)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

/// A Redis URL that could not be parsed: the text and what is wrong with it (the password is hidden).
public struct RedisURLError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    public let url: String

    init(_ url: String, _ reason: String) {
        self.url = Self.hidingPassword(url)
        self.reason = reason
    }

    public var description: String { "invalid Redis URL '\(url)': \(reason)" }

    /// `redis://user:secret@host` → `redis://user:***@host` and `?password=secret` →
    /// `?password=***`, so an error never prints a password.
    private static func hidingPassword(_ url: String) -> String {
        var text = Substring(url)
        if let query = text.firstIndex(of: "?") {
            let hidden = text[text.index(after: query)...].split(separator: "&", omittingEmptySubsequences: false).map {
                $0.hasPrefix("password=") ? "password=***" : String($0)
            }
            text = Substring(String(text[...query]) + hidden.joined(separator: "&"))
        }
        guard let schemeEnd = text.firstIndex(of: "/"),
            let at = text[schemeEnd...].prefix(while: { $0 != "?" }).lastIndex(of: "@"),
            let colon = text[schemeEnd..<at].firstIndex(of: ":")
        else { return String(text) }
        return String(text[...colon]) + "***" + String(text[at...])
    }
}
