import ChorusJSON
import ChorusSocketIO
import ChorusTestSupport
import Testing

@Suite("JSON parser (RFC 8259)")
struct JSONParserTests {
    @Test func parsesScalars() throws {
        #expect(try JSONValue.parse("null") == .null)
        #expect(try JSONValue.parse("true") == .bool(true))
        #expect(try JSONValue.parse("false") == .bool(false))
        #expect(try JSONValue.parse("\"hi\"") == .string("hi"))
        #expect(try JSONValue.parse("42") == .int(42))
        #expect(try JSONValue.parse("-1.5") == .double(-1.5))
    }

    @Test func parsesNestedStructures() throws {
        let v = try JSONValue.parse(#"{"a":[1,{"b":null}],"c":"d"}"#)
        #expect(v["a"]?[0] == 1)
        #expect(v["a"]?[1]?["b"] == .null)
        #expect(v["c"]?.stringValue == "d")
    }

    @Test func allowsInsignificantWhitespace() throws {
        let v = try JSONValue.parse(" \t\r\n{ \"a\" :\n[ 1 , 2 ]\t}\r\n ")
        #expect(v == ["a": [1, 2]])
    }

    @Test func rejectsNonJSONWhitespace() {
        #expect(jsonErrorKind("\u{0B}1") == .unexpectedCharacter(0x0B))
        #expect(jsonErrorKind("[1,\u{0C}2]") == .unexpectedCharacter(0x0C))
    }

    @Test func decodesSimpleEscapes() throws {
        #expect(try JSONValue.parse(#""\"\\\/\b\f\n\r\t""#) == .string("\"\\/\u{08}\u{0C}\n\r\t"))
    }

    @Test func decodesUnicodeEscapes() throws {
        #expect(try JSONValue.parse(#""\u0041\u00e9\u20AC""#) == .string("Aé€"))
    }

    @Test func decodesSurrogatePairs() throws {
        #expect(try JSONValue.parse(#""\uD83D\uDE00""#) == .string("😀"))
        #expect(try JSONValue.parse(#""x\ud83d\ude00y""#) == .string("x😀y"))
    }

    @Test func loneSurrogatesReplacedByDefault() throws {
        #expect(try JSONValue.parse(#""\uD83D""#) == .string("\u{FFFD}"))
        #expect(try JSONValue.parse(#""\uDE00x""#) == .string("\u{FFFD}x"))
        // High surrogate followed by a non-low escape: both decoded independently.
        #expect(try JSONValue.parse(#""\uD83D\u0041""#) == .string("\u{FFFD}A"))
    }

    @Test func loneSurrogatesRejectedWhenConfigured() {
        let strict = JSONParseOptions(loneSurrogates: .reject)
        #expect(jsonErrorKind(#""\uD83D""#, strict) == .loneSurrogate)
        #expect(jsonErrorKind(#""\uDE00""#, strict) == .loneSurrogate)
        #expect(jsonErrorKind(#""\uD83D\u0041""#, strict) == .loneSurrogate)
    }

    @Test func rejectsInvalidEscapes() {
        #expect(jsonErrorKind(#""\x""#) == .invalidEscape)
        #expect(jsonErrorKind(#""\'""#) == .invalidEscape)
        #expect(jsonErrorKind(#""\u12G4""#) == .invalidUnicodeEscape)
        #expect(jsonErrorKind(#""\u12""#) == .unexpectedEnd)
    }

    @Test func rejectsUnescapedControlCharacters() {
        #expect(jsonErrorKind("\"a\nb\"") == .controlCharacterInString)
        #expect(jsonErrorKind("\"\u{00}\"") == .controlCharacterInString)
        #expect(jsonErrorKind("\"\\n\u{1F}\"") == .controlCharacterInString)
    }

    @Test func passesNonASCIIThrough() throws {
        #expect(try JSONValue.parse("\"héllo 世界 😀\"") == .string("héllo 世界 😀"))
    }

    @Test func rejectsInvalidUTF8() {
        #expect(jsonErrorKind(bytes: [0x22, 0xC3, 0x22]) == .invalidUTF8)  // truncated
        #expect(jsonErrorKind(bytes: [0x22, 0xC0, 0xAF, 0x22]) == .invalidUTF8)  // overlong
        #expect(jsonErrorKind(bytes: [0x22, 0xED, 0xA0, 0x80, 0x22]) == .invalidUTF8)  // encoded surrogate
        #expect(jsonErrorKind(bytes: [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22]) == .invalidUTF8)  // > U+10FFFF
        #expect(jsonErrorKind(bytes: [0x22, 0x5C, 0x6E, 0xFF, 0x22]) == .invalidUTF8)  // slow path
    }

    @Test func integersFitInt64() throws {
        #expect(try JSONValue.parse("9223372036854775807") == .int(Int64.max))
        #expect(try JSONValue.parse("-9223372036854775808") == .int(Int64.min))
        #expect(try JSONValue.parse("-0") == .int(0))
    }

    @Test func bigIntegersBecomeDoubles() throws {
        let v = try JSONValue.parse("9223372036854775808")
        guard case .double(let d) = v else { Issue.record("expected double, got \(v)"); return }
        #expect(d == 9223372036854775808.0)
        let w = try JSONValue.parse("123456789012345678901234567890")
        #expect(w.doubleValue == 1.2345678901234568e29)
    }

    @Test func parsesFractionsAndExponents() throws {
        #expect(try JSONValue.parse("0.5") == .double(0.5))
        #expect(try JSONValue.parse("1e3") == .double(1000))
        #expect(try JSONValue.parse("1E+3") == .double(1000))
        #expect(try JSONValue.parse("-2.5e-3") == .double(-0.0025))
        #expect(try JSONValue.parse("1e007") == .double(1e7))  // leading zeros allowed in exponent
    }

    @Test func rejectsHugeExponents() {
        #expect(jsonErrorKind("1e400") == .numberOutOfRange)
        #expect(jsonErrorKind("-1e400") == .numberOutOfRange)
    }

    @Test func rejectsLeadingZeros() {
        #expect(jsonErrorKind("01") == .invalidNumber)
        #expect(jsonErrorKind("-01") == .invalidNumber)
        #expect(jsonErrorKind("[00]") == .invalidNumber)
    }

    @Test func rejectsMalformedNumbers() {
        #expect(jsonErrorKind("1.") == .invalidNumber)
        #expect(jsonErrorKind(".5") == .unexpectedCharacter(UInt8(ascii: ".")))
        #expect(jsonErrorKind("1e") == .invalidNumber)
        #expect(jsonErrorKind("1e+") == .invalidNumber)
        #expect(jsonErrorKind("-") == .unexpectedEnd)
        #expect(jsonErrorKind("+1") == .unexpectedCharacter(UInt8(ascii: "+")))
        #expect(jsonErrorKind("NaN") == .unexpectedCharacter(UInt8(ascii: "N")))
        #expect(jsonErrorKind("Infinity") == .unexpectedCharacter(UInt8(ascii: "I")))
        #expect(jsonErrorKind("0x10") == .trailingData)
    }

    @Test func rejectsTrailingCommas() {
        #expect(jsonErrorKind("[1,]") == .unexpectedCharacter(UInt8(ascii: "]")))
        #expect(jsonErrorKind(#"{"a":1,}"#) == .unexpectedCharacter(UInt8(ascii: "}")))
        #expect(jsonErrorKind("[,1]") == .unexpectedCharacter(UInt8(ascii: ",")))
    }

    @Test func rejectsTrailingData() {
        #expect(jsonErrorKind("1 2") == .trailingData)
        #expect(jsonErrorKind("{}x") == .trailingData)
        #expect(jsonErrorKind("[]]") == .trailingData)
    }

    @Test func rejectsTruncatedInput() {
        for s in ["", " ", "[", "[1", "{", #"{"a""#, #"{"a":"#, #""abc"#, "tru", "nul"] {
            #expect(jsonErrorKind(s) == .unexpectedEnd, "input: \(s)")
        }
    }

    @Test func rejectsBadLiteralsAndKeys() {
        #expect(jsonErrorKind("tru e") == .unexpectedCharacter(UInt8(ascii: " ")))
        #expect(jsonErrorKind("True") == .unexpectedCharacter(UInt8(ascii: "T")))
        #expect(jsonErrorKind("{a:1}") == .unexpectedCharacter(UInt8(ascii: "a")))
        #expect(jsonErrorKind("{'a':1}") == .unexpectedCharacter(UInt8(ascii: "'")))
        #expect(jsonErrorKind(#"{"a" 1}"#) == .unexpectedCharacter(UInt8(ascii: "1")))
    }

    @Test func enforcesDepthLimit() throws {
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        _ = try JSONValue.parse(ok)
        let tooDeep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(jsonErrorKind(tooDeep) == .depthLimitExceeded)
        let objects = String(repeating: #"{"a":"#, count: 65) + "1" + String(repeating: "}", count: 65)
        #expect(jsonErrorKind(objects) == .depthLimitExceeded)
        #expect(jsonErrorKind("[[[1]]]", JSONParseOptions(maxDepth: 2)) == .depthLimitExceeded)
        // Very deep input fails fast instead of overflowing the stack.
        #expect(jsonErrorKind(String(repeating: "[", count: 100_000)) == .depthLimitExceeded)
    }

    @Test func duplicateKeysLastValueWinsAtFirstPosition() throws {
        let v = try JSONValue.parse(#"{"a":1,"b":2,"a":3}"#)
        #expect(v.objectValue?.keys == ["a", "b"])
        #expect(v["a"] == 3)
        // Large objects switch to an index for duplicate detection.
        var s = "{"
        for i in 0..<40 { s += "\"k\(i)\":\(i)," }
        s += #""k5":"x"}"#
        let w = try JSONValue.parse(s)
        #expect(w.objectValue?.count == 40)
        #expect(w["k5"] == "x")
        #expect(w.objectValue?.keys[5] == "k5")
    }

    @Test func errorsReportOffset() {
        do {
            _ = try JSONValue.parse("[1, 2, x]")
            Issue.record("expected error")
        } catch {
            #expect(error.offset == 7)
            #expect(error.description.contains("byte 7"))
        }
    }

    @Test func parsesFromRawBuffer() throws {
        let b = bytes(#"["a",1]"#)
        let v = try b.withUnsafeBytes { try JSONValue.parse($0) }
        #expect(v == ["a", 1])
    }
}

@Suite("JSON serializer")
struct JSONSerializerTests {
    @Test func serializesCompactly() {
        let v: JSONValue = ["a": [1, true, nil, "x"], "b": ["c": 2.5]]
        #expect(v.jsonString == #"{"a":[1,true,null,"x"],"b":{"c":2.5}}"#)
    }

    @Test func keepsObjectKeyOrder() {
        let v: JSONValue = ["z": 1, "a": 2, "m": 3]
        #expect(v.jsonString == #"{"z":1,"a":2,"m":3}"#)
        var o = JSONObject()
        o["b"] = 1
        o["a"] = 2
        o["b"] = 3  // replace in place
        #expect(JSONValue.object(o).jsonString == #"{"b":3,"a":2}"#)
        o["b"] = nil
        #expect(JSONValue.object(o).jsonString == #"{"a":2}"#)
    }

    @Test func escapesLikeJSONStringify() {
        #expect(JSONValue.string("\"\\/").jsonString == #""\"\\/""#)
        #expect(JSONValue.string("\u{08}\u{0C}\n\r\t").jsonString == #""\b\f\n\r\t""#)
        #expect(JSONValue.string("\u{00}\u{01}\u{1F}").jsonString == #""\u0000\u0001\u001f""#)
        #expect(JSONValue.string("\u{7F}").jsonString == "\"\u{7F}\"")
    }

    @Test func passesNonASCIIAsUTF8() {
        #expect(JSONValue.string("é😀\u{2028}").serialized == bytes("\"é😀\u{2028}\""))
    }

    @Test func escapesObjectKeys() {
        let v: JSONValue = ["a\"b\n": 1]
        #expect(v.jsonString == #"{"a\"b\n":1}"#)
    }

    @Test func printsIntegersWithoutFraction() {
        #expect(JSONValue.int(Int64.min).jsonString == "-9223372036854775808")
        #expect(JSONValue.int(Int64.max).jsonString == "9223372036854775807")
        #expect(JSONValue.double(100).jsonString == "100")
        #expect(JSONValue.double(-0.0).jsonString == "0")
    }

    @Test func printsDoublesRoundTrippably() throws {
        for d in [
            0.1, 2.5, -1e-7, 1e300, Double.leastNonzeroMagnitude, 1.7976931348623157e308, 1e19, 0.30000000000000004,
        ] {
            let s = JSONValue.double(d).serialized
            #expect(try JSONValue.parse(s).doubleValue == d, "\(d)")
        }
    }

    @Test func nonFiniteDoublesBecomeNull() {
        #expect(JSONValue.double(.infinity).jsonString == "null")
        #expect(JSONValue.double(.nan).jsonString == "null")
    }

    @Test func binaryWithoutAttachmentChannelUsesBufferJSON() {
        #expect(JSONValue.binary([1, 200]).jsonString == #"{"type":"Buffer","data":[1,200]}"#)
        #expect(JSONValue.binary([]).jsonString == #"{"type":"Buffer","data":[]}"#)
    }

    @Test func binaryWithAttachmentChannelUsesPlaceholders() {
        let v: JSONValue = ["a": .binary([1]), "b": [.binary([2, 3])]]
        var out: [UInt8] = []
        var atts: [[UInt8]] = []
        v.serialize(into: &out, attachments: &atts)
        #expect(text(out) == #"{"a":{"_placeholder":true,"num":0},"b":[{"_placeholder":true,"num":1}]}"#)
        #expect(atts == [[1], [2, 3]])
        #expect(v.serializedCountWithPlaceholders() == out.count)
    }

    @Test func serializedCountIsExact() {
        let v: JSONValue = ["k\n": ["\u{01}é", 1.5, -12, .binary([0, 9, 10, 99, 100, 255]), nil, false]]
        #expect(v.serializedCount == v.serialized.count)
    }
}

@Suite("JSON value")
struct JSONValueTests {
    @Test func numericEqualityAcrossIntAndDouble() {
        #expect(JSONValue.int(1) == JSONValue.double(1.0))
        #expect(JSONValue.int(1).hashValue == JSONValue.double(1.0).hashValue)
        #expect(JSONValue.int(1) != JSONValue.double(1.5))
        #expect(Set<JSONValue>([.int(3), .double(3)]).count == 1)
    }

    @Test func objectEqualityIsOrderSensitive() {
        let a: JSONValue = ["x": 1, "y": 2]
        let b: JSONValue = ["y": 2, "x": 1]
        #expect(a != b)
    }

    @Test func accessors() {
        let v: JSONValue = ["s": "t", "i": 7, "d": 2.0, "f": 2.5, "b": true, "a": [1], "o": [:], "n": nil]
        #expect(v["s"]?.stringValue == "t")
        #expect(v["i"]?.intValue == 7)
        #expect(v["d"]?.intValue == 2)
        #expect(v["f"]?.intValue == nil)
        #expect(v["f"]?.doubleValue == 2.5)
        #expect(v["i"]?.doubleValue == 7)
        #expect(v["b"]?.boolValue == true)
        #expect(v["a"]?.arrayValue == [1])
        #expect(v["a"]?[5] == nil)
        #expect(v["o"]?.objectValue?.isEmpty == true)
        #expect(v["n"]?.isNull == true)
        #expect(v["missing"] == nil)
        #expect(v["s"]?["x"] == nil)
        #expect(JSONValue.binary([1]).binaryValue == [1])
    }

    @Test func descriptionIsJSON() {
        let v: JSONValue = ["a": [1, "b"]]
        #expect("\(v)" == #"{"a":[1,"b"]}"#)
    }
}

@Suite("JSON property-style round trips")
struct JSONPropertyTests {
    @Test func randomValuesRoundTrip() throws {
        var rng = SplitMix64(seed: 0xC0FFEE)
        for _ in 0..<2000 {
            let v = RandomJSON.value(&rng)
            let s = v.serialized
            #expect(v.serializedCount == s.count)
            let back = try JSONValue.parse(s)
            #expect(back == v, "\(text(s))")
            #expect(back.serialized == s)
        }
    }

    @Test func randomValuesSurviveWhitespaceAndStrictMode() throws {
        var rng = SplitMix64(seed: 42)
        let strict = JSONParseOptions(loneSurrogates: .reject)
        for _ in 0..<500 {
            let v = RandomJSON.value(&rng)
            let padded = " \n" + v.jsonString + "\t\r "
            #expect(try JSONValue.parse(padded, options: strict) == v)
        }
    }

    @Test func randomTruncationsNeverCrash() {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<300 {
            let s = RandomJSON.value(&rng).serialized
            guard s.count > 1 else { continue }
            let cut = Int.random(in: 0..<s.count, using: &rng)
            // Either a valid shorter document (e.g. "12" -> "1") or an error; never a crash.
            _ = try? JSONValue.parse(Array(s[0..<cut]))
            var mutated = s
            mutated[cut] = UInt8.random(in: 0...255, using: &rng)
            _ = try? JSONValue.parse(mutated)
        }
    }
}
