// Socket.IO v5 codec: the broadcast encode of a `message:new` event and the decode of an incoming
// `message:send` event. One op = one packet.
import Benchmark
import ChorusJSON
import ChorusSocketIO

/// The `message:new` payload the server fans out (~500 B of JSON).
let messageNew: JSONValue = [
    "id": "01HZX3K8Q9V7C2M5N8P4R6T1YB",
    "room": "project-4711",
    "author": ["id": "u_18233", "name": "Ana Lúcia Ferreira", "avatar": "https://cdn.example.com/a/18233.png"],
    "createdAt": "2025-11-25T13:17:42.123Z",
    "text":
        "Morning all! The websocket gateway passed the soak test overnight (10k connections, p99 fan-out under 4 ms). Ping me if you see anything odd in the dashboards today.",
    "mentions": ["u_1002", "u_20931"],
    "reactions": ["👍": 3, "🎉": 1],
    "edited": false,
    "seq": 918_273,
]

/// What a browser sends: Engine.IO "4" + Socket.IO `2["message:send",{...},ack]`... here without ack.
let messageSendPacket: [UInt8] = Array(
    (#"42["message:send",{"room":"project-4711","clientId":"c-7f3a9e","text":"Morning all! The websocket "#
        + #"gateway passed the soak test overnight (10k connections, p99 fan-out under 4 ms). Ping me if you see "#
        + #"anything odd in the dashboards today. \"quoted\" and caf\u00e9 ☕","mentions":["u_1002","u_20931"],"#
        + #""replyTo":null,"draft":false}]"#).utf8)

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 100_000)

    Benchmark("Socket.IO encode message:new") { benchmark in
        for _ in benchmark.scaledIterations {
            // What Socket.emit and a broadcast do: one exactly-sized text frame (no attachments).
            blackHole(SocketIOPacket.event("message:new", [messageNew]).encode(engineIOPrefix: true))
        }
    }

    Benchmark("Socket.IO decode(text:) message:send") { benchmark in
        var decoder = SocketIODecoder()
        // The server strips the Engine.IO "4" and hands the rest of the frame as a buffer.
        messageSendPacket.withUnsafeBytes { frame in
            let packet = UnsafeRawBufferPointer(rebasing: frame[1...])
            for _ in benchmark.scaledIterations {
                let p = try! decoder.decode(text: packet)
                blackHole(p)
            }
        }
    }
}
