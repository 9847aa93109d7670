// libFuzzer harness for the MessagePack decoder (compiled in one module with the files in
// sources.txt: `swiftc -sanitize=fuzzer,address -parse-as-library harness.swift $(cat sources.txt)`).
// Any input must decode or throw, never trap; whatever decodes must re-encode to bytes that
// decode to the same value, and re-encoding those must give the same bytes (the encoder is
// canonical: one value, one encoding).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMsgPack(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let decoder = MsgPackDecoder(limits: .init(maxDepth: 64, maxContainerCount: 1 << 16))
    let input = UnsafeRawBufferPointer(start: data, count: size)
    guard let value = try? decoder.decode(input) else { return 0 }
    let encoded = MsgPackEncoder.encode(value)
    guard let again = try? decoder.decode(encoded) else { fatalError("re-encoded value does not decode") }
    guard again == value else { fatalError("round trip changed the value") }
    guard MsgPackEncoder.encode(again) == encoded else { fatalError("encoding is not canonical") }
    return 0
}
