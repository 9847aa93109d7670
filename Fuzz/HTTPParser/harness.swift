// libFuzzer harness: the HTTP request parser and body reader (scripts/fuzz.sh HTTPParser SECONDS).
//
// Property: a byte stream fed whole and fed in random pieces (as the network delivers it) gives
// the same head (or the same error status) and the same body (or the same error status), and
// the body reader consumes the same number of bytes. The first input byte seeds the split.

/// SplitMix64: the pieces' sizes, reproducible from the input.
struct Pieces {
    var state: UInt64
    mutating func next(max: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return 1 + Int((z ^ (z >> 31)) % UInt64(max))
    }
}

enum HeadOutcome: Equatable {
    case needMoreData
    case complete(method: String, target: String, minor: Int, headers: [String], length: Int)
    case failed(Int)

    init(_ r: HTTPParseResult) {
        switch r {
        case .needMoreData: self = .needMoreData
        case .complete(let h, let n):
            self = .complete(method: h.method, target: h.target, minor: h.versionMinor,
                             headers: h.headers.map { $0.name + ":" + $0.value }, length: n)
        case .failed(let e): self = .failed(e.status)
        }
    }
}

let maxHeaderSize = 1024
let maxBodySize = 4096

func parseWhole(_ bytes: [UInt8]) -> HTTPParseResult {
    var parser = HTTPRequestParser(maxHeaderSize: maxHeaderSize)
    return bytes.withUnsafeBytes { parser.parse($0) }
}

func parseSplit(_ bytes: [UInt8], _ pieces: inout Pieces) -> HTTPParseResult {
    var parser = HTTPRequestParser(maxHeaderSize: maxHeaderSize)
    var received = 0
    while true {
        received = min(bytes.count, received + pieces.next(max: 64))
        // The parser is given everything received so far, as the server does.
        let result = bytes[..<received].withUnsafeBytes { parser.parse($0) }
        if case .needMoreData = result, received < bytes.count { continue }
        return result
    }
}

func readBody(_ framing: HTTPBodyFraming, _ bytes: ArraySlice<UInt8>, _ pieces: inout Pieces?) -> (HTTPBodyReadResult, [UInt8]) {
    var reader = HTTPBodyReader(framing: framing, maxBodySize: maxBodySize, maxLineSize: 256)
    var offset = bytes.startIndex
    while true {
        let end = pieces == nil ? bytes.endIndex : min(bytes.endIndex, offset + pieces!.next(max: 64))
        let result = bytes[offset..<end].withUnsafeBytes { reader.read($0) }
        switch result {
        case .needMoreData:
            offset = end
            if offset == bytes.endIndex { return (.needMoreData, reader.body) }
        case .complete(let consumed):
            return (.complete(consumed: offset - bytes.startIndex + consumed), reader.body)
        case .failed:
            return (result, reader.body)
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 1 else { return 0 }
    var pieces = Pieces(state: UInt64(data[0]))
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let whole = parseWhole(bytes)
    let split = parseSplit(bytes, &pieces)
    let a = HeadOutcome(whole), b = HeadOutcome(split)
    precondition(a == b, "head whole \(a) != split \(b)")
    guard case .complete(let head, let length) = whole else { return 0 }
    precondition(length <= bytes.count)
    switch HTTPBodyFraming.of(head, maxBodySize: maxBodySize) {
    case .failure(let e):
        precondition([400, 413, 501].contains(e.status), "framing status \(e.status)")
    case .success(let framing):
        var none: Pieces? = nil
        var some: Pieces? = pieces
        let (r1, body1) = readBody(framing, bytes[length...], &none)
        let (r2, body2) = readBody(framing, bytes[length...], &some)
        precondition(r1 == r2, "body whole \(r1) != split \(r2)")
        if case .complete = r1 { precondition(body1 == body2, "bodies differ") }
        precondition(body1.count <= maxBodySize)
        if case .length(let n) = framing, case .complete(let consumed) = r1 { precondition(consumed == n && body1.count == n) }
    }
    return 0
}
