import ChorusDeflate
import Testing

@testable import ChorusWebSocket

private let shared = PerMessageDeflateConfig(mode: .shared)
private let dedicated = PerMessageDeflateConfig(mode: .dedicated)

private func negotiate(_ offers: String, _ config: PerMessageDeflateConfig = dedicated) -> PerMessageDeflateAgreement? {
    PerMessageDeflateNegotiation.negotiate(offers: offers, config: config)
}

@Suite("permessage-deflate negotiation (RFC 7692 §5, §7.1)")
struct DeflateNegotiationTests {
    @Test("bare offer, dedicated: no parameters answered, full windows, context takeover both ways")
    func bareOfferDedicated() throws {
        let a = try #require(negotiate("permessage-deflate"))
        #expect(
            a
                == PerMessageDeflateAgreement(
                    serverNoContextTakeover: false, clientNoContextTakeover: false,
                    serverMaxWindowBits: 15, clientMaxWindowBits: 15,
                    responseHeaderValue: "permessage-deflate"))
    }

    @Test(
        "shared mode always answers server_no_context_takeover (§7.1.1.1 allows adding it)",
        arguments: [
            "permessage-deflate", "permessage-deflate; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits", "permessage-deflate; server_max_window_bits=12",
        ])
    func sharedAlwaysNoContextTakeover(offer: String) throws {
        let a = try #require(negotiate(offer, shared))
        #expect(a.serverNoContextTakeover)
        #expect(a.responseHeaderValue.hasPrefix("permessage-deflate; server_no_context_takeover"))
    }

    @Test("mode off never negotiates")
    func modeOff() {
        #expect(negotiate("permessage-deflate", PerMessageDeflateConfig(mode: .off)) == nil)
        #expect(negotiate("permessage-deflate; client_max_window_bits", PerMessageDeflateConfig(mode: .off)) == nil)
    }

    @Test("no permessage-deflate offer → nil")
    func nothingOffered() {
        #expect(negotiate("") == nil)
        #expect(negotiate("x-webkit-deflate-frame") == nil)
        #expect(negotiate("foo; bar=1, baz") == nil)
    }

    @Test("server_no_context_takeover offered → answered in dedicated mode")
    func serverNoContextTakeover() throws {
        let a = try #require(negotiate("permessage-deflate; server_no_context_takeover"))
        #expect(a.serverNoContextTakeover)
        #expect(a.responseHeaderValue == "permessage-deflate; server_no_context_takeover")
    }

    @Test("client_no_context_takeover offered → echoed, inflater resets per message")
    func clientNoContextTakeover() throws {
        let a = try #require(negotiate("permessage-deflate; client_no_context_takeover"))
        #expect(a.clientNoContextTakeover)
        #expect(a.responseHeaderValue == "permessage-deflate; client_no_context_takeover")
        #expect(PerMessageInflater(agreement: a).noContextTakeover)
    }

    @Test("server_max_window_bits: answered with the offered value when within config")
    func serverMaxWindowBits() throws {
        let a = try #require(negotiate("permessage-deflate; server_max_window_bits=10"))
        #expect(a.serverMaxWindowBits == 10)
        #expect(a.deflateWindowBits == 10)
        #expect(a.responseHeaderValue == "permessage-deflate; server_max_window_bits=10")
    }

    @Test("server_max_window_bits: answered with the smaller config value (§7.1.2.1 same or smaller)")
    func serverMaxWindowBitsSmallerConfig() throws {
        let config = PerMessageDeflateConfig(mode: .dedicated, serverMaxWindowBits: 12)
        let a = try #require(negotiate("permessage-deflate; server_max_window_bits=14", config))
        #expect(a.serverMaxWindowBits == 12)
        #expect(a.responseHeaderValue == "permessage-deflate; server_max_window_bits=12")
    }

    @Test("server_max_window_bits not offered: a config below 15 is still announced")
    func serverMaxWindowBitsUnoffered() throws {
        let a = try #require(
            negotiate("permessage-deflate", PerMessageDeflateConfig(mode: .dedicated, serverMaxWindowBits: 11)))
        #expect(a.serverMaxWindowBits == 11)
        #expect(a.responseHeaderValue == "permessage-deflate; server_max_window_bits=11")
    }

    @Test("server_max_window_bits=8 is answered 8 but compressed with 9 (zlib raw deflate has no 8)")
    func serverMaxWindowBits8() throws {
        let a = try #require(negotiate("permessage-deflate; server_max_window_bits=8"))
        #expect(a.serverMaxWindowBits == 8)
        #expect(a.deflateWindowBits == 9)
        #expect(a.responseHeaderValue == "permessage-deflate; server_max_window_bits=8")
        #expect(dedicated.makeDeflater(for: a).windowBits == 9)
    }

    @Test("server_max_window_bits without a value is declined")
    func serverMaxWindowBitsNoValue() {
        #expect(negotiate("permessage-deflate; server_max_window_bits") == nil)
    }

    @Test("client_max_window_bits without a value → answered with the config's client window")
    func clientMaxWindowBitsNoValue() throws {
        let a = try #require(negotiate("permessage-deflate; client_max_window_bits"))
        #expect(a.clientMaxWindowBits == 15)
        #expect(a.responseHeaderValue == "permessage-deflate; client_max_window_bits=15")
        let small = PerMessageDeflateConfig(
            mode: .dedicated, serverMaxWindowBits: 15, memLevel: 8, threshold: 64,
            clientMaxWindowBits: 10, level: 1)
        let b = try #require(negotiate("permessage-deflate; client_max_window_bits", small))
        #expect(b.clientMaxWindowBits == 10)
        #expect(b.responseHeaderValue == "permessage-deflate; client_max_window_bits=10")
        #expect(PerMessageInflater(agreement: b).windowBits == 10)
    }

    @Test("client_max_window_bits with a value → answered with the same or smaller value")
    func clientMaxWindowBitsValue() throws {
        let a = try #require(negotiate("permessage-deflate; client_max_window_bits=10"))
        #expect(a.clientMaxWindowBits == 10)
        #expect(a.responseHeaderValue == "permessage-deflate; client_max_window_bits=10")
        let small = PerMessageDeflateConfig(
            mode: .dedicated, serverMaxWindowBits: 15, memLevel: 8, threshold: 64,
            clientMaxWindowBits: 9, level: 1)
        #expect(negotiate("permessage-deflate; client_max_window_bits=12", small)?.clientMaxWindowBits == 9)
    }

    @Test("client_max_window_bits=8 → inflater still uses a 512-byte window")
    func clientMaxWindowBits8() throws {
        let a = try #require(negotiate("permessage-deflate; client_max_window_bits=8"))
        #expect(a.clientMaxWindowBits == 8)
        #expect(a.inflateWindowBits == 9)
        #expect(PerMessageInflater(agreement: a).windowBits == 9)
    }

    @Test("quoted values are accepted (RFC 6455 §9.1 quoted-string)")
    func quotedValues() throws {
        let a = try #require(
            negotiate(#"permessage-deflate; client_max_window_bits="10"; server_max_window_bits="12""#))
        #expect(a.clientMaxWindowBits == 10)
        #expect(a.serverMaxWindowBits == 12)
        #expect(negotiate(#"permessage-deflate; client_max_window_bits="1\0""#)?.clientMaxWindowBits == 10)
    }

    @Test("never answers client_max_window_bits the client did not offer")
    func neverUnofferedClientWindow() throws {
        let small = PerMessageDeflateConfig(
            mode: .shared, serverMaxWindowBits: 15, memLevel: 8, threshold: 64,
            clientMaxWindowBits: 9, level: 1)
        for offer in [
            "permessage-deflate", "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; client_no_context_takeover",
        ] {
            let a = try #require(negotiate(offer, small))
            #expect(!a.responseHeaderValue.contains("client_max_window_bits"))
            #expect(a.clientMaxWindowBits == 15)
        }
    }

    @Test("all parameters at once; response lists them in a fixed order")
    func allParameters() throws {
        let a = try #require(
            negotiate(
                "permessage-deflate; client_max_window_bits=11; server_max_window_bits=13; client_no_context_takeover; server_no_context_takeover"
            ))
        #expect(
            a
                == PerMessageDeflateAgreement(
                    serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 13,
                    clientMaxWindowBits: 11,
                    responseHeaderValue:
                        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=13; client_max_window_bits=11"
                ))
    }

    @Test("several offers: the first acceptable one wins")
    func severalOffers() throws {
        let a = try #require(negotiate("permessage-deflate; server_max_window_bits=10, permessage-deflate"))
        #expect(a.serverMaxWindowBits == 10)
    }

    @Test(
        "invalid offers are declined and the next one is accepted",
        arguments: [
            "permessage-deflate; client_max_window_bits=7",  // out of range
            "permessage-deflate; server_max_window_bits=16",  // out of range
            "permessage-deflate; server_max_window_bits=0",  // out of range
            "permessage-deflate; server_max_window_bits=010",  // leading zero
            "permessage-deflate; server_max_window_bits=09",  // leading zero
            "permessage-deflate; client_max_window_bits=abc",  // not a number
            "permessage-deflate; client_max_window_bits=",  // empty value
            "permessage-deflate; server_no_context_takeover=1",  // value on a flag
            "permessage-deflate; client_no_context_takeover=\"x\"",  // value on a flag
            "permessage-deflate; server_max_window_bits",  // missing value
            "permessage-deflate; mystery_param",  // unknown parameter
            "permessage-deflate; client_max_window_bits; client_max_window_bits",  // repeated
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",  // repeated
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",  // repeated
            "permessage-deflate; client_max_window_bits=\"\"",  // empty quoted value
            "permessage-deflate;; client_no_context_takeover",  // empty parameter
        ])
    func invalidThenValid(invalid: String) throws {
        #expect(negotiate(invalid) == nil)
        let a = try #require(negotiate(invalid + ", permessage-deflate; server_max_window_bits=11"))
        #expect(a.serverMaxWindowBits == 11)
        #expect(a.responseHeaderValue == "permessage-deflate; server_max_window_bits=11")
    }

    @Test("an unterminated quote makes the rest of the header malformed: declined")
    func unterminatedQuote() {
        #expect(negotiate(#"permessage-deflate; client_max_window_bits="10"#) == nil)
        #expect(negotiate(#"permessage-deflate; client_max_window_bits="10, permessage-deflate"#) == nil)
        // An earlier valid offer is still accepted.
        #expect(negotiate(#"permessage-deflate, permessage-deflate; client_max_window_bits="10"#) != nil)
    }

    @Test("other extensions are ignored, including quoted commas and semicolons in their params")
    func otherExtensionsIgnored() throws {
        let a = try #require(
            negotiate(#"x-webkit-deflate-frame, foo; bar="a,b;c", permessage-deflate; client_max_window_bits"#))
        #expect(a.responseHeaderValue == "permessage-deflate; client_max_window_bits=15")
    }

    @Test("whitespace, tabs, empty list elements and case are tolerated")
    func whitespaceAndCase() throws {
        let a = try #require(
            negotiate(" ,\t, PerMessage-Deflate ;\tClient_Max_Window_Bits = 12 ;server_no_context_takeover  ,"))
        #expect(a.clientMaxWindowBits == 12)
        #expect(a.serverNoContextTakeover)
    }

    @Test("a similarly named extension is not permessage-deflate")
    func similarName() {
        #expect(negotiate("permessage-deflate-x, deflate-frame") == nil)
    }

    @Test("negotiated agreement drives a working deflater/inflater pair")
    func agreementRoundTrip() throws {
        for config in [shared, dedicated] {
            let a = try #require(
                negotiate("permessage-deflate; client_max_window_bits=9; server_max_window_bits=9", config))
            let deflater = config.makeDeflater(for: a)
            // The client compresses with its window; the server inflates with the agreed one.
            let client = PerMessageDeflater(windowBits: a.clientMaxWindowBits, memLevel: 8, noContextTakeover: false)
            let inflater = PerMessageInflater(agreement: a)
            let text = Array(String(repeating: "agreement round trip ", count: 50).utf8)
            for _ in 0..<3 {
                var out: [UInt8] = []
                let payload = client.compressMessage(text)
                try payload.withUnsafeBytes { try inflater.inflate($0, isFinal: true, into: &out, limit: 1 << 20) }
                #expect(out == text)
                #expect(deflater.compressMessage(text).count < text.count / 4)
            }
        }
    }
}
