#if canImport(Glibc)
import Glibc
#endif

/// The process metrics Prometheus clients export by convention, read from /proc (Linux).
public struct ProcessMetrics: Sendable, Equatable {
    public var residentMemoryBytes = 0
    public var virtualMemoryBytes = 0
    public var openFDs = 0
    public var maxFDs = 0
    public var cpuSeconds = 0.0
    public var startTimeSeconds = 0.0

    public init() {}

    /// The current values; fields that cannot be read stay 0.
    public static func read() -> ProcessMetrics {
        var m = ProcessMetrics()
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let pageSize = sysconf(Int32(_SC_PAGESIZE))
        // /proc/self/stat: the command name is in parentheses and may hold spaces; fields after it.
        if let stat = readFile("/proc/self/stat"), let close = stat.lastIndex(of: UInt8(ascii: ")")) {
            let fields = stat[(close + 1)...].split(separator: UInt8(ascii: " ")).map {
                String(decoding: $0, as: UTF8.self)
            }
            // fields[0] is field 3 (state): utime 14, stime 15, starttime 22, vsize 23, rss 24.
            func field(_ n: Int) -> Double { fields.count > n - 3 ? Double(fields[n - 3].trimmingNewline) ?? 0 : 0 }
            if ticks > 0 {
                m.cpuSeconds = (field(14) + field(15)) / ticks
                m.startTimeSeconds = bootTime() + field(22) / ticks
            }
            m.virtualMemoryBytes = Int(field(23))
            m.residentMemoryBytes = Int(field(24)) * pageSize
        }
        m.openFDs = countOpenFDs()
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            m.maxFDs = limit.rlim_cur >= rlim_t(Int.max) ? Int.max : Int(limit.rlim_cur)
        }
        return m
    }

    /// User and system CPU seconds of one thread of this process (0 if it cannot be read).
    public static func threadCPUSeconds(_ threadID: Int32) -> Double {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        guard threadID > 0, ticks > 0, let stat = readFile("/proc/self/task/\(threadID)/stat"),
            let close = stat.lastIndex(of: UInt8(ascii: ")"))
        else { return 0 }
        let fields = stat[(close + 1)...].split(separator: UInt8(ascii: " ")).map {
            String(decoding: $0, as: UTF8.self)
        }
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / ticks
    }

    /// Seconds since the epoch at boot (`btime` in /proc/stat).
    static func bootTime() -> Double {
        guard let stat = readFile("/proc/stat") else { return 0 }
        for line in stat.split(separator: UInt8(ascii: "\n")) where line.starts(with: Array("btime ".utf8)) {
            return Double(String(decoding: line.dropFirst(6), as: UTF8.self)) ?? 0
        }
        return 0
    }

    static func countOpenFDs() -> Int {
        guard let dir = opendir("/proc/self/fd") else { return 0 }
        defer { closedir(dir) }
        var count = 0
        while let entry = readdir(dir) {
            if entry.pointee.d_name.0 != 46 /* "." and ".." */ { count += 1 }
        }
        // The directory stream itself holds one descriptor while we count.
        return max(count - 1, 0)
    }

    static func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return bytes
    }
}

extension String {
    var trimmingNewline: String {
        var s = self
        while s.last == "\n" { s.removeLast() }
        return s
    }
}
