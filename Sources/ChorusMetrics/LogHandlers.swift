import ChorusJSON
import ChorusSocketIO
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `--log-format`: text (swift-log's stream format) or JSON (one object per line).
public enum LogFormat: String, Sendable, CaseIterable {
    case text, json
}

/// One JSON object per line on standard error:
/// `{"timestamp":"2026-12-03T09:32:05.123Z","level":"info","label":"chorus","message":"...","metadata":{...}}`.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public let label: String
    private let write: @Sendable ([UInt8]) -> Void

    public init(
        label: String, metadataProvider: Logger.MetadataProvider? = nil,
        write: @escaping @Sendable ([UInt8]) -> Void = JSONLogHandler.standardError
    ) {
        self.label = label
        self.metadataProvider = metadataProvider
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let explicit = event.metadata
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let explicit { all.merge(explicit) { _, new in new } }
        var fields = JSONObject()
        for (key, value) in all.sorted(by: { $0.key < $1.key }) { fields[key] = Self.json(value) }
        let object: JSONObject = [
            "timestamp": .string(Self.timestamp()),
            "level": .string(event.level.rawValue),
            "label": .string(label),
            "message": .string(event.message.description),
            "metadata": .object(fields),
        ]
        write(JSONValue.object(object).serialized + [UInt8(ascii: "\n")])
    }

    static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let s): .string(s)
        case .stringConvertible(let c): .string(c.description)
        case .array(let a): .array(a.map(json))
        case .dictionary(let d): .object(JSONObject(d.sorted { $0.key < $1.key }.map { ($0.key, json($0.value)) }))
        }
    }

    /// UTC, milliseconds, RFC 3339.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var seconds = ts.tv_sec
        var t = tm()
        gmtime_r(&seconds, &t)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return
            "\(pad(t.tm_year + 1900, 4))-\(pad(t.tm_mon + 1, 2))-\(pad(t.tm_mday, 2))T\(pad(t.tm_hour, 2)):\(pad(t.tm_min, 2)):\(pad(t.tm_sec, 2)).\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
    }

    public static let standardError: @Sendable ([UInt8]) -> Void = { bytes in
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
    }
}

/// Lets a log line through at most `burst` times per `interval` per (label, level, message); the
/// ones held back are counted, and the next line let through with that message carries
/// `suppressed=<count>`. Messages that repeat under load (a bad client, a refused token) are
/// constant strings with the details in metadata, so they share one key: a misbehaving client
/// cannot flood the log, and the count says how much was held back.
public final class LogRateLimiter: Sendable {
    public let burst: Int
    public let intervalNanoseconds: UInt64
    private let windows = Mutex<[String: Window]>([:])
    static let maxKeys = 4096

    struct Window {
        var start: UInt64
        var passed: Int
        var suppressed: Int
    }

    public init(burst: Int = 10, intervalSeconds: Double = 10) {
        self.burst = burst
        intervalNanoseconds = UInt64(intervalSeconds * 1e9)
    }

    /// nil: suppress the line; else the number of lines suppressed since the last one let through.
    public func admit(_ key: String, now: UInt64 = monotonicNow()) -> Int? {
        windows.withLock { windows in
            if windows.count >= Self.maxKeys && windows[key] == nil {
                // Bounded memory: forget the windows that have ended (or all of them).
                windows = windows.filter { now &- $0.value.start < intervalNanoseconds }
                if windows.count >= Self.maxKeys { windows.removeAll() }
            }
            var w = windows[key] ?? Window(start: now, passed: 0, suppressed: 0)
            if now &- w.start >= intervalNanoseconds {
                w.start = now
                w.passed = 0
            }
            guard w.passed < burst else {
                w.suppressed += 1
                windows[key] = w
                return nil
            }
            w.passed += 1
            let suppressed = w.suppressed
            w.suppressed = 0
            windows[key] = w
            return suppressed
        }
    }

    public static func monotonicNow() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// Wraps a handler with a `LogRateLimiter`.
public struct RateLimitedLogHandler: LogHandler {
    public var inner: any LogHandler
    public let limiter: LogRateLimiter

    public init(_ inner: any LogHandler, limiter: LogRateLimiter) {
        self.inner = inner
        self.limiter = limiter
    }

    public var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    public var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) {
        guard let suppressed = limiter.admit(event.level.rawValue + " " + event.message.description) else { return }
        var event = event
        if suppressed > 0 {
            event.metadata = (event.metadata ?? [:]).merging(["suppressed": "\(suppressed)"]) { _, new in new }
        }
        inner.log(event: event)
    }
}

extension LoggingSystem {
    /// `chorus serve`'s logging: `format` on standard error at `level`, rate-limited.
    public static func bootstrapChorus(
        format: LogFormat, level: Logger.Level, limiter: LogRateLimiter = LogRateLimiter()
    ) {
        bootstrap { label in
            var handler: any LogHandler
            switch format {
            case .text: handler = StreamLogHandler.standardError(label: label)
            case .json: handler = JSONLogHandler(label: label)
            }
            handler.logLevel = level
            return RateLimitedLogHandler(handler, limiter: limiter)
        }
    }
}
