// libFuzzer harness: the JSON parser and serialiser (scripts/fuzz.sh JSON SECONDS).
//
// Properties: what parses serialises to JSON that parses back to the same value, and
// serialising that value again gives the same bytes (the serialiser is deterministic); the
// serialised length is what `serializedCount` predicts.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let value = try? JSONValue.parse(bytes) else { return 0 }
    let text = value.serialized
    precondition(text.count == value.serializedCount, "serializedCount \(value.serializedCount) != \(text.count)")
    let again: JSONValue
    do { again = try JSONValue.parse(text) } catch {
        preconditionFailure("serialised JSON refused: \(error) \(String(decoding: text, as: UTF8.self))")
    }
    precondition(again == value, "round trip: \(value) != \(again)")
    precondition(again.serialized == text, "serialising twice differs")
    return 0
}
