// The one place the server makes its compressors, so that every setting of
// PerMessageDeflateConfig (window, memLevel, level) reaches zlib.
#if canImport(ChorusWebSocket)
import ChorusWebSocket
#endif

extension PerMessageDeflateConfig {
    /// The deflater a loop compresses `shared` frames with (a broadcast is compressed once for all
    /// its recipients; foreign-thread emits too): the configured window, no context takeover.
    /// Nil when deflate is off.
    public func makeSharedDeflater() -> PerMessageDeflater? {
        mode == .off ? nil : makeDeflater(windowBits: serverMaxWindowBits, noContextTakeover: true)
    }

    /// The deflater of one `dedicated` connection: the window and context takeover it agreed on.
    public func makeDeflater(for agreement: PerMessageDeflateAgreement) -> PerMessageDeflater {
        makeDeflater(windowBits: agreement.deflateWindowBits, noContextTakeover: agreement.serverNoContextTakeover)
    }

    private func makeDeflater(windowBits: Int, noContextTakeover: Bool) -> PerMessageDeflater {
        PerMessageDeflater(
            windowBits: windowBits, memLevel: memLevel, noContextTakeover: noContextTakeover, level: level)
    }
}
