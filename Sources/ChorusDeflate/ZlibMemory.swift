// zlib heap per stream, from zlib's documented formulas (zconf.h "Memory requirements").
import CZlib

#if canImport(ChorusWebSocket)
// scripts/fuzz.sh compiles the deflate files with the frame reader into one module.
import ChorusWebSocket
#endif

/// Approximate zlib heap per stream (from zlib's documented formulas: deflate (1 << (windowBits+2)) +
/// (1 << (memLevel+9)); inflate (1 << windowBits) + ~7 KiB), used by the README and logs.
///
/// Checked against zlib 1.2.13 (x86_64) with a counting allocator (DeflateTests "measured zlib heap"):
/// deflate allocates exactly the formula plus a 5,952-byte `deflate_state`, all at deflateInit2;
/// inflate allocates a 7,160-byte `inflate_state` at inflateInit2 and its window (1 << windowBits)
/// lazily, on the first output: a connection that never sends a compressed message costs ~7 KiB.
public enum ZlibMemory {
    /// Deflate stream bytes: window 2·w, prev 2·w, head 2·2^(memLevel+7), pending 4·2^(memLevel+6).
    /// windowBits 8 counts as 9 (see `PerMessageDeflateConfig.serverMaxWindowBits`).
    public static func deflateBytes(windowBits: Int, memLevel: Int) -> Int {
        let w = min(max(windowBits, 9), 15)
        let m = min(max(memLevel, 1), 9)
        return (1 << (w + 2)) + (1 << (m + 9))
    }

    /// Inflate stream bytes: the sliding window plus ~7 KiB of state (Huffman tables).
    public static func inflateBytes(windowBits: Int) -> Int {
        let w = min(max(windowBits, 8), 15)
        return (1 << w) + 7 * 1024
    }

    /// Approximate zlib memory one connection costs for an agreement: always one inflater; a deflater
    /// of its own only in `dedicated` mode with context takeover (otherwise a shared, per-thread
    /// deflater compresses for everybody).
    public static func perConnectionBytes(agreement: PerMessageDeflateAgreement, config: PerMessageDeflateConfig) -> Int
    {
        var bytes = inflateBytes(windowBits: agreement.inflateWindowBits)
        if config.mode == .dedicated && !agreement.serverNoContextTakeover {
            bytes += deflateBytes(windowBits: agreement.deflateWindowBits, memLevel: config.memLevel)
        }
        return bytes
    }
}

/// Custom zlib allocator (tests use it to count bytes and allocations).
struct ZlibAllocator {
    var zalloc: alloc_func
    var zfree: free_func
    var opaque: UnsafeMutableRawPointer?

    func install(on stream: UnsafeMutablePointer<z_stream>) {
        stream.pointee.zalloc = zalloc
        stream.pointee.zfree = zfree
        stream.pointee.opaque = opaque
    }
}
