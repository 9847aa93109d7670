// Replays a fuzz corpus through a harness once, for coverage (scripts/fuzz.sh --coverage TARGET).
//
// Compiled into the same module as Fuzz/TARGET/harness.swift and its sources, without libFuzzer:
// every file of the directories given is read and passed to the harness's LLVMFuzzerTestOneInput,
// whose Swift name differs between harnesses, so it is looked up by its C symbol (the binary is
// linked with -export-dynamic).
#if canImport(Glibc)
import Glibc
#endif

typealias FuzzOne = @convention(c) (UnsafePointer<UInt8>, Int) -> CInt

@main
enum FuzzReplay {
    static func main() {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "LLVMFuzzerTestOneInput") else {
            fputs("fuzz-replay: LLVMFuzzerTestOneInput not found\n", stderr)
            exit(2)
        }
        let fuzzOne = unsafeBitCast(symbol, to: FuzzOne.self)
        var inputs = 0
        for directory in CommandLine.arguments.dropFirst() {
            guard let dir = opendir(directory) else {
                fputs("fuzz-replay: cannot open \(directory)\n", stderr); exit(2)
            }
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) {
                    String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name.hasPrefix(".") { continue }
                guard let bytes = read(directory + "/" + name) else { continue }
                // libFuzzer never passes a null pointer; an empty input gets a valid one too.
                var padded = bytes
                padded.append(0)
                _ = padded.withUnsafeBufferPointer { fuzzOne($0.baseAddress!, bytes.count) }
                inputs += 1
            }
            closedir(dir)
        }
        print("fuzz-replay: \(inputs) inputs")
    }

    static func read(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        return bytes
    }
}
