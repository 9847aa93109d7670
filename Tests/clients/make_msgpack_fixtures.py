#!/usr/bin/env python3
"""Writes Tests/ChorusMsgPackTests/MsgPackFixtures.swift: MessagePack values and the bytes Python's
`msgpack` package (use_bin_type=True) encodes them to, which are the bytes notepack.io (the parser of
socket.io-redis-adapter 8.x and socket.io-redis-emitter 5.x) writes for the same JavaScript values:
shortest integer forms, float 64 for every non-integral number, str 8, bin for buffers, and
`undefined` as the extension `d4 00 00`.

    .venv-test/bin/python Tests/clients/make_msgpack_fixtures.py     # rewrites the Swift file

Each fixture carries the Swift expression of its value, generated from the same Python value, so the
Swift test compares `MsgPackEncoder.encode(value)` with the bytes and `decode(bytes)` with the value.
Large fixtures are checked by length, first bytes and an FNV-1a 64 hash instead of a hex literal.
"""
import os
import struct
import sys

import msgpack

OUT = os.path.join(os.path.dirname(__file__), "..", "ChorusMsgPackTests", "MsgPackFixtures.swift")
HEX_LIMIT = 512


class Rep:
    """A list of `count` copies of `value` (kept short in the Swift source)."""

    def __init__(self, value, count):
        self.value, self.count = value, count

    def python(self):
        return [python(self.value)] * self.count


class RepStr(str):
    """A string of `count` copies of one character."""

    def __new__(cls, char, count):
        s = super().__new__(cls, char * count)
        s.char, s.count = char, count
        return s


class RepBytes(bytes):
    def __new__(cls, byte, count):
        b = super().__new__(cls, bytes([byte]) * count)
        b.byte, b.count = byte, count
        return b


def python(v):
    if isinstance(v, Rep):
        return v.python()
    if isinstance(v, list):
        return [python(x) for x in v]
    if isinstance(v, dict):
        return {python(k): python(x) for k, x in v.items()}
    return v


def swift_string(s):
    out = []
    for ch in s:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= o < 0x7F:
            out.append(ch)
        else:
            out.append("\\u{%x}" % o)
    return '"' + "".join(out) + '"'


def swift(v):
    if v is None:
        return ".nil"
    if v is True or v is False:
        return ".bool(%s)" % ("true" if v else "false")
    if isinstance(v, int):
        return ".uint(%d)" % v if v >= 0 else (".int(%d)" % v if v > -(2**63) else ".int(Int64.min)")
    if isinstance(v, float):
        return ".double(Double(bitPattern: 0x%016x))" % struct.unpack(">Q", struct.pack(">d", v))[0]
    if isinstance(v, RepStr):
        return ".string(String(repeating: %s, count: %d))" % (swift_string(v.char), v.count)
    if isinstance(v, str):
        return ".string(%s)" % swift_string(v)
    if isinstance(v, RepBytes):
        return ".binary(Array(repeating: %d, count: %d))" % (v.byte, v.count)
    if isinstance(v, bytes):
        return ".binary([%s])" % ", ".join(str(b) for b in v)
    if isinstance(v, Rep):
        return ".array(Array(repeating: %s, count: %d))" % (swift(v.value), v.count)
    if isinstance(v, list):
        return ".array([%s])" % ", ".join(swift(x) for x in v)
    if isinstance(v, dict):
        return ".map([%s])" % ", ".join("MsgPackPair(%s, %s)" % (swift(k), swift(x)) for k, x in v.items())
    if isinstance(v, msgpack.ExtType):
        return ".ext(type: %d, data: [%s])" % (v.code, ", ".join(str(b) for b in v.data))
    raise TypeError(type(v))


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


FIXTURES = [
    ("nil", None), ("false", False), ("true", True),
    # Non-negative integers: always the unsigned forms, shortest first.
    ("fixint 0", 0), ("fixint 127", 127), ("uint8 128", 128), ("uint8 255", 255), ("uint16 256", 256),
    ("uint16 65535", 65535), ("uint32 65536", 65536), ("uint32 max", 2**32 - 1), ("uint64 2^32", 2**32),
    ("uint64 2^53", 2**53), ("uint64 max", 2**64 - 1),
    # Negative integers: the signed forms, shortest first.
    ("negative fixint -1", -1), ("negative fixint -32", -32), ("int8 -33", -33), ("int8 -128", -128),
    ("int16 -129", -129), ("int16 -32768", -32768), ("int32 -32769", -32769), ("int32 min", -(2**31)),
    ("int64 below int32", -(2**31) - 1), ("int64 min", -(2**63)),
    # Floating point: float 64 always.
    ("float64 0.5", 0.5), ("float64 -1.5", -1.5), ("float64 1e300", 1e300), ("float64 infinity", float("inf")),
    ("float64 -0.0", -0.0),
    # Strings: length in UTF-8 bytes.
    ("fixstr empty", ""), ("fixstr a", "a"), ("fixstr 31", RepStr("x", 31)), ("str8 32", RepStr("x", 32)),
    ("str8 255", RepStr("y", 255)), ("str16 256", RepStr("z", 256)), ("str16 65535", RepStr("w", 65535)),
    ("str32 65536", RepStr("v", 65536)), ("fixstr utf8", "h\u00e9llo \u2603 \U0001F600"),
    ("str8 utf8 over fixstr", RepStr("\u00e9", 16)),
    # Binary (Node Buffers).
    ("bin8 empty", b""), ("bin8 bytes", bytes([0, 1, 2, 255])), ("bin8 255", RepBytes(7, 255)),
    ("bin16 256", RepBytes(8, 256)), ("bin32 65536", RepBytes(9, 65536)),
    # Arrays.
    ("fixarray empty", []), ("fixarray mixed", [1, "two", None, True, -3, 4.5]),
    ("fixarray 15", Rep(1, 15)), ("array16 16", Rep(2, 16)), ("array16 65535", Rep(None, 65535)),
    ("array32 65536", Rep(0, 65536)), ("nested arrays", [[[[]]], [1, [2, [3]]]]),
    # Maps, in insertion order.
    ("fixmap empty", {}), ("fixmap one", {"a": 1}), ("fixmap ordered", {"z": 1, "a": 2, "m": {"k": [1, 2]}}),
    ("fixmap 15", {"k%02d" % i: i for i in range(15)}), ("map16 16", {"k%02d" % i: i for i in range(16)}),
    ("map non-string keys", {1: "one", -2: "minus two"}),
    # Extensions: notepack's undefined, fixext sizes, ext 8.
    ("fixext1 undefined", msgpack.ExtType(0, b"\x00")), ("fixext2", msgpack.ExtType(5, b"ab")),
    ("fixext4", msgpack.ExtType(3, b"abcd")), ("fixext8", msgpack.ExtType(0, b"\x00\x00\x01\x8b\xcf\xe5\x68\x00")),
    ("fixext16", msgpack.ExtType(127, b"0123456789abcdef")), ("ext8 3", msgpack.ExtType(1, b"123")),
    ("ext8 empty", msgpack.ExtType(2, b"")),
]


def main():
    lines = [
        "// Generated by Tests/clients/make_msgpack_fixtures.py with Python msgpack %s; do not edit." % msgpack.version_str
        if hasattr(msgpack, "version_str") else
        "// Generated by Tests/clients/make_msgpack_fixtures.py with Python msgpack %s; do not edit."
        % ".".join(map(str, msgpack.version)),
        "@testable import ChorusMsgPack",
        "",
        "struct MsgPackFixture: Sendable, CustomStringConvertible {",
        "    let name: String",
        "    let value: MsgPackValue",
        "    /// The whole encoding in hex, or (large fixtures) its first bytes.",
        "    let hex: String",
        "    let count: Int",
        "    let fnv1a: UInt64",
        "    var description: String { name }",
        "}",
        "",
        "let msgPackFixtures: [MsgPackFixture] = [",
    ]
    for name, value in FIXTURES:
        data = msgpack.packb(python(value), use_bin_type=True)
        shown = data if len(data) <= HEX_LIMIT else data[:16]
        lines.append('    MsgPackFixture(name: %s, value: %s, hex: "%s", count: %d, fnv1a: 0x%016x),'
                     % (swift_string(name), swift(value), shown.hex(), len(data), fnv1a64(data)))
    lines.append("]")
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %d fixtures to %s" % (len(FIXTURES), os.path.normpath(OUT)), file=sys.stderr)


if __name__ == "__main__":
    main()
