"""The Redis messages of socket.io-redis-adapter 8.x and socket.io-redis-emitter 5.x, built in Python
with the keys in the order the JavaScript sources write them (dicts keep insertion order).
MessagePack with `msgpack.packb(use_bin_type=True)`, JSON with `json.dumps(separators=(",", ":"))`,
which give the bytes of notepack.io and JSON.stringify for these values.
"""
import json

import msgpack

SOCKETS, ALL_ROOMS, REMOTE_JOIN, REMOTE_LEAVE, REMOTE_DISCONNECT, REMOTE_FETCH, SERVER_SIDE_EMIT = range(7)
BROADCAST, BROADCAST_CLIENT_COUNT, BROADCAST_ACK = 7, 8, 9


def pack(value):
    return msgpack.packb(value, use_bin_type=True)


def dumps(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def channels(key="socket.io", nsp="/"):
    return {
        "broadcast": "%s#%s#" % (key, nsp),
        "request": "%s-request#%s#" % (key, nsp),
        "response": "%s-response#%s#" % (key, nsp),
    }


def broadcast_channel(key, nsp, rooms):
    base = "%s#%s#" % (key, nsp)
    return base + rooms[0] + "#" if len(rooms) == 1 else base


def packet(nsp, data):
    return {"type": 2, "data": data, "nsp": nsp}


def broadcast(uid, nsp, data, rooms=(), except_=(), flags=None):
    """RedisAdapter.broadcast: [uid, packet, {rooms, except, flags}]."""
    return pack([uid, packet(nsp, data), {"rooms": list(rooms), "except": list(except_), "flags": flags or {}}])


def emitter_broadcast(nsp, data, rooms=(), except_=(), flags=None):
    """Emitter BroadcastOperator.emit: ["emitter", packet, {rooms, flags, except}]."""
    return pack(["emitter", packet(nsp, data), {"rooms": list(rooms), "flags": flags or {}, "except": list(except_)}])


def _with_uid(uid, rest):
    return dumps(({"uid": uid} if uid is not None else {}) | rest)


def request_sockets(uid, request_id, rooms):
    return dumps({"uid": uid, "requestId": request_id, "type": SOCKETS, "rooms": rooms})


def request_all_rooms(uid, request_id):
    return dumps({"uid": uid, "requestId": request_id, "type": ALL_ROOMS})


def request_join(uid, rooms, except_, join):
    """The adapter's addSockets (uid) and the emitter's socketsJoin (uid None)."""
    return _with_uid(uid, {"type": REMOTE_JOIN, "opts": {"rooms": rooms, "except": except_}, "rooms": join})


def request_leave(uid, rooms, except_, leave):
    return _with_uid(uid, {"type": REMOTE_LEAVE, "opts": {"rooms": rooms, "except": except_}, "rooms": leave})


def request_join_socket(uid, request_id, sid, room):
    """The 7.x remoteJoin(id, room) form, still answered by 8.x."""
    return dumps({"uid": uid, "requestId": request_id, "type": REMOTE_JOIN, "sid": sid, "room": room})


def request_disconnect(uid, rooms, except_, close):
    return _with_uid(uid, {"type": REMOTE_DISCONNECT, "opts": {"rooms": rooms, "except": except_}, "close": close})


def request_disconnect_socket(uid, request_id, sid, close):
    return dumps({"uid": uid, "requestId": request_id, "type": REMOTE_DISCONNECT, "sid": sid, "close": close})


def request_fetch(uid, request_id, rooms, except_):
    return dumps({"uid": uid, "requestId": request_id, "type": REMOTE_FETCH, "opts": {"rooms": rooms, "except": except_}})


def request_server_side_emit(uid, request_id, data):
    body = {"uid": uid}
    if request_id is not None:
        body["requestId"] = request_id
    body |= {"type": SERVER_SIDE_EMIT, "data": data}
    return dumps(body)


def request_broadcast_with_ack(uid, request_id, nsp, data, rooms, except_, flags):
    return pack({"uid": uid, "requestId": request_id, "type": BROADCAST, "packet": packet(nsp, data),
                 "opts": {"rooms": rooms, "except": except_, "flags": flags}})


def response_sockets(request_id, sockets):
    return dumps({"requestId": request_id, "sockets": sockets})


def response_all_rooms(request_id, rooms):
    return dumps({"requestId": request_id, "rooms": rooms})


def response_done(request_id):
    return dumps({"requestId": request_id})


def response_fetch(request_id, sockets):
    return dumps({"requestId": request_id, "sockets": sockets})


def response_server_side_emit(request_id, data):
    return dumps({"type": SERVER_SIDE_EMIT, "requestId": request_id, "data": data})


def response_client_count(request_id, count):
    return dumps({"type": BROADCAST_CLIENT_COUNT, "requestId": request_id, "clientCount": count})


def response_broadcast_ack(request_id, arg):
    return pack({"type": BROADCAST_ACK, "requestId": request_id, "packet": arg})


def decode(data):
    """A message read from Redis: JSON if it starts with '{', MessagePack otherwise."""
    if data[:1] == b"{":
        return json.loads(data)
    return msgpack.unpackb(data, raw=False, strict_map_key=False)
