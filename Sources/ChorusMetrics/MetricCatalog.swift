/// Every metric Chorus exports: name, Prometheus type, labels and help text, in one table (the
/// README's table of metrics is this list).
public enum MetricCatalog {
    public enum Kind: String, Sendable { case counter, gauge, histogram }

    public struct Entry: Sendable {
        public let name: String
        public let kind: Kind
        public let labels: [String]
        public let help: String
    }

    public static let entries: [Entry] = [
        // Connections
        .init(name: "chorus_connections", kind: .gauge, labels: [], help: "Open connections (HTTP and WebSocket)."),
        .init(name: "chorus_connections_accepted_total", kind: .counter, labels: [], help: "TCP connections accepted."),
        .init(
            name: "chorus_connections_refused_total", kind: .counter, labels: [],
            help: "TCP connections refused with 503 by --max-connections or --max-connections-per-ip."),
        .init(
            name: "chorus_connections_closed_total", kind: .counter, labels: ["code"],
            help:
                "WebSocket connections closed, by close code (1006: the TCP connection vanished; other: any code not listed)."
        ),
        .init(
            name: "chorus_connections_closed_by_total", kind: .counter, labels: ["initiator"],
            help: "WebSocket connections closed, by who started the close: server, peer, or none (vanished)."),
        .init(
            name: "chorus_handshakes_failed_total", kind: .counter, labels: ["status"],
            help: "HTTP requests refused before an upgrade (bad request, rejected upgrade, timeout), by status."),
        .init(
            name: "chorus_protocol_errors_total", kind: .counter, labels: [],
            help: "WebSocket connections failed for a protocol violation."),
        // Traffic
        .init(
            name: "chorus_messages_received_total", kind: .counter, labels: [],
            help: "WebSocket data messages received."),
        .init(name: "chorus_received_bytes_total", kind: .counter, labels: [], help: "Bytes read from sockets (wire)."),
        .init(
            name: "chorus_received_payload_bytes_total", kind: .counter, labels: [],
            help: "Payload bytes of the data messages received (after inflation)."),
        .init(
            name: "chorus_deliveries_total", kind: .counter, labels: [],
            help: "Messages queued to a recipient (one per message per recipient: messages sent)."),
        .init(name: "chorus_sent_bytes_total", kind: .counter, labels: [], help: "Bytes written to sockets (wire)."),
        .init(
            name: "chorus_broadcasts_total", kind: .counter, labels: [],
            help: "Emits delivered, counted once per event loop that delivered them."),
        .init(
            name: "chorus_broadcast_recipients", kind: .histogram, labels: [],
            help: "Recipients of an emit on one event loop (its share of the fan-out)."),
        // Backpressure
        .init(
            name: "chorus_backpressure_dropped_total", kind: .counter, labels: [],
            help: "Messages skipped for a connection over --max-backpressure (policy drop)."),
        .init(
            name: "chorus_backpressure_closed_total", kind: .counter, labels: [],
            help: "Connections closed with 1008 for going over --max-backpressure (policy close)."),
        .init(
            name: "chorus_loop_queue_dropped_total", kind: .counter, labels: [],
            help: "Broadcasts an event loop did not take because --max-loop-queue were already waiting for it."),
        .init(
            name: "chorus_loop_queue_closed_total", kind: .counter, labels: [],
            help:
                "Connections closed with 1013 because their event loop fell --max-loop-queue broadcasts behind (policy close)."
        ),
        .init(
            name: "chorus_queued_bytes", kind: .gauge, labels: [],
            help: "Bytes queued for clients, sampled at each timer tick."),
        .init(
            name: "chorus_queued_bytes_high_water", kind: .gauge, labels: [],
            help: "Largest chorus_queued_bytes seen since start (summed over event loops)."),
        // Compression
        .init(
            name: "chorus_compression_input_bytes_total", kind: .counter, labels: [],
            help: "Payload bytes handed to permessage-deflate compressors."),
        .init(
            name: "chorus_compression_output_bytes_total", kind: .counter, labels: [],
            help: "Bytes the permessage-deflate compressors produced."),
        .init(name: "chorus_compression_seconds_total", kind: .counter, labels: [], help: "Time spent compressing."),
        // Event loops
        .init(name: "chorus_loops", kind: .gauge, labels: [], help: "Event loops (threads)."),
        .init(
            name: "chorus_rooms", kind: .gauge, labels: [],
            help: "Rooms with members, counted per event loop (a room on two loops counts twice)."),
        .init(
            name: "chorus_loop_connections", kind: .gauge, labels: ["loop"], help: "Open connections of one event loop."
        ),
        .init(
            name: "chorus_loop_iterations_total", kind: .counter, labels: ["loop"],
            help: "Event loop iterations (one per epoll_wait return)."),
        .init(
            name: "chorus_loop_busy_seconds_total", kind: .counter, labels: ["loop"],
            help:
                "Time an event loop spent working (from epoll_wait's return to the end of its flush); its rate is the loop's load."
        ),
        .init(
            name: "chorus_loop_cpu_seconds_total", kind: .counter, labels: ["loop"],
            help: "User and system CPU time of an event loop's thread."),
        .init(
            name: "chorus_loop_events_per_iteration", kind: .histogram, labels: [],
            help: "Socket events handled per event loop iteration."),
        .init(
            name: "chorus_loop_iteration_seconds", kind: .histogram, labels: [],
            help: "Busy time of one event loop iteration."),
        // Socket.IO
        .init(
            name: "chorus_socketio_sockets", kind: .gauge, labels: ["namespace"],
            help: "Connected Socket.IO sockets, by namespace."),
        .init(
            name: "chorus_socketio_events_received_total", kind: .counter, labels: ["namespace", "event"],
            help: "Socket.IO events received, by namespace and event name (events without a handler: other)."),
        .init(
            name: "chorus_socketio_events_sent_total", kind: .counter, labels: ["namespace", "event"],
            help:
                "Socket.IO emit calls, by namespace and event name (the application's known events; others: other); a broadcast counts once, not per recipient."
        ),
        .init(
            name: "chorus_socketio_acks_requested_total", kind: .counter, labels: [],
            help: "Socket.IO events received that asked for an acknowledgement."),
        .init(
            name: "chorus_socketio_acks_received_total", kind: .counter, labels: [],
            help: "Acknowledgements received for the server's own emits."),
        .init(
            name: "chorus_socketio_recovered_total", kind: .counter, labels: ["namespace"],
            help: "Sockets restored by connection state recovery (same id, rooms and data)."),
        .init(
            name: "chorus_socketio_recovery_replayed_total", kind: .counter, labels: ["namespace"],
            help: "Missed events replayed to restored sockets."),
        .init(
            name: "chorus_socketio_recovery_refused_total", kind: .counter, labels: ["namespace", "reason"],
            help:
                "Reconnects that asked for a session and got a fresh one: unknown_session, expired, offset_gone, unavailable (the cluster store could not be asked)."
        ),
        .init(
            name: "chorus_socketio_recovery_sessions", kind: .gauge, labels: ["namespace"],
            help: "Disconnected sessions kept for recovery."),
        .init(
            name: "chorus_socketio_recovery_log_bytes", kind: .gauge, labels: ["namespace"],
            help: "Bytes of frames kept for replay (--recovery-buffer bounds it)."),
        .init(
            name: "chorus_socketio_recovery_evicted_total", kind: .counter, labels: ["namespace", "what"],
            help:
                "Events (entries) and sessions dropped from recovery for room (--recovery-buffer, --recovery-max-sessions)."
        ),
        .init(
            name: "chorus_socketio_connects_total", kind: .counter, labels: [],
            help: "Socket.IO namespace connections admitted."),
        .init(
            name: "chorus_socketio_connect_errors_total", kind: .counter, labels: ["reason"],
            help: "Socket.IO namespace connections refused (CONNECT_ERROR), by message."),
        .init(
            name: "chorus_socketio_disconnects_total", kind: .counter, labels: ["reason"],
            help: "Socket.IO sockets disconnected, by Socket.IO disconnect reason."),
        .init(
            name: "chorus_jwt_failures_total", kind: .counter, labels: ["reason"],
            help: "JWTs refused, by reason (missing, malformed, badSignature, expired, ...)."),
        // The cluster adapter (--adapter redis only; as of its loop's last second)
        .init(
            name: "chorus_adapter_redis_connected", kind: .gauge, labels: [],
            help: "1 while the adapter's publishing connection to Redis is logged in, else 0."),
        .init(
            name: "chorus_adapter_broadcasts_published_total", kind: .counter, labels: [],
            help: "Broadcasts this node published to the cluster."),
        .init(
            name: "chorus_adapter_broadcasts_received_total", kind: .counter, labels: [],
            help: "Broadcasts received from Redis (this node's own echoes included)."),
        .init(
            name: "chorus_adapter_broadcasts_delivered_total", kind: .counter, labels: [],
            help: "Broadcasts from other nodes or emitters delivered to this node's sockets."),
        .init(
            name: "chorus_adapter_requests_published_total", kind: .counter, labels: [],
            help: "Cluster requests published (fetch, rooms, join/leave/disconnect, server-side emit, emit with ack)."),
        .init(
            name: "chorus_adapter_requests_received_total", kind: .counter, labels: [],
            help: "Cluster requests received from other nodes."),
        .init(
            name: "chorus_adapter_responses_published_total", kind: .counter, labels: [],
            help: "Responses this node published to other nodes' requests."),
        .init(
            name: "chorus_adapter_responses_received_total", kind: .counter, labels: [],
            help: "Responses received to this node's requests."),
        .init(
            name: "chorus_adapter_requests_timed_out_total", kind: .counter, labels: [],
            help: "Cluster requests that ended at --redis-request-timeout without every answer."),
        .init(
            name: "chorus_adapter_malformed_total", kind: .counter, labels: [],
            help: "Messages from Redis that could not be decoded (skipped)."),
        .init(
            name: "chorus_adapter_reconnects_total", kind: .counter, labels: [],
            help: "Logins to Redis after a lost connection or a failed attempt."),
        .init(
            name: "chorus_adapter_publish_drops_total", kind: .counter, labels: [],
            help: "Publishes dropped because --redis-publish-queue was full while Redis was unreachable."),
        .init(name: "chorus_adapter_publish_queue", kind: .gauge, labels: [], help: "Publishes waiting for Redis."),
        .init(
            name: "chorus_adapter_request_seconds", kind: .histogram, labels: [],
            help: "Time from publishing a cluster request that waits for other nodes to its last answer or timeout."),
        // Process (the Prometheus client conventions)
        .init(name: "process_resident_memory_bytes", kind: .gauge, labels: [], help: "Resident memory size in bytes."),
        .init(name: "process_virtual_memory_bytes", kind: .gauge, labels: [], help: "Virtual memory size in bytes."),
        .init(name: "process_open_fds", kind: .gauge, labels: [], help: "Number of open file descriptors."),
        .init(name: "process_max_fds", kind: .gauge, labels: [], help: "Maximum number of open file descriptors."),
        .init(
            name: "process_cpu_seconds_total", kind: .counter, labels: [],
            help: "Total user and system CPU time spent in seconds."),
        .init(
            name: "process_start_time_seconds", kind: .gauge, labels: [],
            help: "Start time of the process since unix epoch in seconds."),
    ]

    /// Help text by name, for `ChorusPrometheusFactory`.
    public static let help: [String: String] = Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0.help) })

    static func entry(_ name: String) -> Entry { entries.first { $0.name == name }! }
}
