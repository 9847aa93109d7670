import ChorusRedis
import Testing

@Suite("Redis URLs")
struct RedisURLTests {
    @Test func hostAndPort() throws {
        let url = try RedisURL(parsing: "redis://10.0.0.5:6380")
        #expect(url.endpoint == .tcp(host: "10.0.0.5", port: 6380))
        #expect(url.password == nil && url.username == nil && url.database == 0)
    }

    @Test func thePortDefaultsTo6379() throws {
        #expect(try RedisURL(parsing: "redis://localhost").endpoint == .tcp(host: "localhost", port: 6379))
        #expect(try RedisURL(parsing: "redis://localhost/").endpoint == .tcp(host: "localhost", port: 6379))
    }

    @Test func passwordOnlyAndDatabase() throws {
        let url = try RedisURL(parsing: "redis://:s3cret@127.0.0.1:6379/2")
        #expect(url.username == nil)
        #expect(url.password == "s3cret")
        #expect(url.database == 2)
    }

    @Test func userPasswordAndDatabase() throws {
        let url = try RedisURL(parsing: "redis://chorus:p%40ss:word@redis.internal:7000/15")
        #expect(url.username == "chorus")
        #expect(url.password == "p@ss:word")
        #expect(url.endpoint == .tcp(host: "redis.internal", port: 7000))
        #expect(url.database == 15)
    }

    @Test func bracketedIPv6Host() throws {
        #expect(try RedisURL(parsing: "redis://[::1]:6390").endpoint == .tcp(host: "::1", port: 6390))
        #expect(try RedisURL(parsing: "redis://[::1]").endpoint == .tcp(host: "::1", port: 6379))
    }

    @Test func unixSocketWithDatabaseAndPassword() throws {
        let url = try RedisURL(parsing: "unix:///run/redis/redis.sock?db=3&password=x%26y")
        #expect(url.endpoint == .unix(path: "/run/redis/redis.sock"))
        #expect(url.database == 3)
        #expect(url.password == "x&y")
        #expect(try RedisURL(parsing: "unix:///tmp/r.sock").database == 0)
    }

    @Test func theDescriptionHidesThePassword() throws {
        let url = try RedisURL(parsing: "redis://chorus:hunter2@127.0.0.1:6379/1")
        #expect(url.description == "redis://chorus:***@127.0.0.1:6379/1")
        #expect(!String(describing: try RedisURL(parsing: "unix:///s.sock?password=hunter2")).contains("hunter2"))
    }

    @Test(arguments: [
        ("http://127.0.0.1:6379", "expected redis://"),
        ("rediss://127.0.0.1:6379", "TLS"),
        ("redis://", "host is missing"),
        ("redis://:pw@:6379", "host is missing"),
        ("redis://127.0.0.1:0", "port '0'"),
        ("redis://127.0.0.1:65536", "port '65536'"),
        ("redis://127.0.0.1:abc", "port 'abc'"),
        ("redis://127.0.0.1:6379/x", "database 'x'"),
        ("redis://127.0.0.1:6379/-1", "database '-1'"),
        ("redis://justapassword@127.0.0.1", "need a ':'"),
        ("redis://127.0.0.1:6379?db=2", "only for unix://"),
        ("redis://[::1:6379", "unclosed '['"),
        ("redis://:%zz@127.0.0.1", "two hex digits"),
        ("unix://relative.sock", "absolute"),
        ("unix:///s.sock?db=two", "database 'two'"),
        ("unix:///s.sock?timeout=5", "unknown option 'timeout'"),
        ("unix:///s.sock?db", "has no value"),
    ])
    func badURLsAreRejectedWithAClearReason(text: String, reason: String) {
        #expect {
            _ = try RedisURL(parsing: text)
        } throws: { error in
            guard let error = error as? RedisURLError else { return false }
            return error.reason.contains(reason) && error.description.contains("invalid Redis URL")
        }
    }

    @Test func anErrorNeverShowsThePassword() {
        #expect {
            _ = try RedisURL(parsing: "redis://user:hunter2@127.0.0.1:99999")
        } throws: { error in
            let text = String(describing: error)
            return !text.contains("hunter2") && text.contains("user:***@")
        }
    }
}
