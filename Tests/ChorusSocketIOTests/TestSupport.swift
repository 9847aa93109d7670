import ChorusJSON
import ChorusSocketIO

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

func jsonErrorKind(_ s: String, _ options: JSONParseOptions = .default) -> JSONError.Kind? {
    do {
        _ = try JSONValue.parse(s, options: options)
        return nil
    } catch {
        return error.kind
    }
}

func jsonErrorKind(bytes b: [UInt8]) -> JSONError.Kind? {
    do {
        _ = try JSONValue.parse(b)
        return nil
    } catch {
        return error.kind
    }
}

/// Decodes one Socket.IO text packet (no attachments expected); returns the error if any.
func sioError(_ s: String, options: SocketIODecoder.Options = .init()) -> SocketIOProtocolError? {
    var d = SocketIODecoder(options: options)
    do {
        _ = try d.decode(text: s)
        return nil
    } catch {
        return error
    }
}

enum RandomJSON {
    static func string<R: RandomNumberGenerator>(_ rng: inout R) -> String {
        let len = Int.random(in: 0...12, using: &rng)
        var s = String.UnicodeScalarView()
        let specials: [Unicode.Scalar] = [
            "\"", "\\", "/", "\n", "\r", "\t", "\u{08}", "\u{0C}", "\u{00}", "\u{1F}",
            "\u{7F}", "é", "€", "😀", "\u{2028}", "\u{FFFD}", "中",
        ]
        for _ in 0..<len {
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: s.append(specials.randomElement(using: &rng)!)
            case 1:
                var v = UInt32.random(in: 0...0x10FFFF, using: &rng)
                if (0xD800...0xDFFF).contains(v) { v = 0x41 }
                s.append(Unicode.Scalar(v)!)
            default: s.append(Unicode.Scalar(UInt8.random(in: 0x20...0x7E, using: &rng)))
            }
        }
        return String(s)
    }

    static func value<R: RandomNumberGenerator>(_ rng: inout R, depth: Int = 0, binary: Bool = false) -> JSONValue {
        let maxKind = depth >= 4 ? 5 : 8
        switch Int.random(in: 0...maxKind, using: &rng) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2:
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: return .int(Int64.random(in: -1000...1000, using: &rng))
            case 1: return .int(Int64.random(in: Int64.min...Int64.max, using: &rng))
            default: return .int([Int64.min, Int64.max, 0, -1].randomElement(using: &rng)!)
            }
        case 3:
            var d: Double
            repeat { d = Double(bitPattern: rng.next()) } while !d.isFinite
            if Bool.random(using: &rng) { d = Double.random(in: -1e6...1e6, using: &rng) }
            return .double(d)
        case 4, 5:
            if binary && Int.random(in: 0..<3, using: &rng) == 0 {
                return .binary(
                    (0..<Int.random(in: 0...8, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
            }
            return .string(string(&rng))
        case 6, 7:
            let n = Int.random(in: 0...5, using: &rng)
            return .array((0..<n).map { _ in value(&rng, depth: depth + 1, binary: binary) })
        default:
            var o = JSONObject()
            for _ in 0..<Int.random(in: 0...5, using: &rng) {
                o[string(&rng)] = value(&rng, depth: depth + 1, binary: binary)
            }
            return .object(o)
        }
    }
}
