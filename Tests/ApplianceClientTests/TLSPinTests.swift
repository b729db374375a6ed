import Foundation
import Testing

@testable import ApplianceClient

@Suite("TLSPin")
struct TLSPinTests {
    private func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
            .joined()
    }

    @Test("parsing accepts canonical and upper-case forms and rejects malformed ones")
    func parsing() throws {
        let canonical = "sha256:" + String(repeating: "ab", count: 32)
        let pin = try #require(TLSPin(canonical))
        #expect(pin.description == canonical)
        #expect(TLSPin("SHA256:" + String(repeating: "AB", count: 32)) == pin)
        #expect(TLSPin(String(repeating: "ab", count: 32)) == nil)
        #expect(TLSPin("sha256:" + String(repeating: "ab", count: 31)) == nil)
        #expect(TLSPin("sha256:" + String(repeating: "ab", count: 33)) == nil)
        #expect(TLSPin("sha256:" + String(repeating: "zz", count: 32)) == nil)
        #expect(TLSPin(" " + canonical) == nil)
        #expect(TLSPin("sha1:" + String(repeating: "ab", count: 32)) == nil)
    }

    @Test("init(spkiDER:) hashes the bytes")
    func fromSPKI() {
        let pin = TLSPin(spkiDER: Array("abc".utf8))
        #expect(pin.description == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test("Codable round-trips as a plain string and rejects bad strings")
    func codable() throws {
        let pin = TLSPin(spkiDER: [1, 2, 3])
        let encoded = try JSONEncoder().encode(["pin": pin])
        #expect(String(decoding: encoded, as: UTF8.self) == #"{"pin":"\#(pin)"}"#)
        #expect(try JSONDecoder().decode([String: TLSPin].self, from: encoded)["pin"] == pin)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([String: TLSPin].self, from: Data(#"{"pin":"sha256:nope"}"#.utf8))
        }
    }

    @Test("error codes compare by kind")
    func errorCodes() {
        let error = ApplianceClientError(code: .pinMismatch, message: "different key")
        #expect(error.code == .pinMismatch)
        #expect(error.code != .tlsHandshakeFailed)
        #expect(error.description == "different key")
        #expect(ApplianceClientError.Code.timeout.description == "timeout")
    }

    @Test("header lookup is case-insensitive")
    func headerLookup() {
        let result = HTTPResult(
            status: 200,
            headers: [("Content-Type", "application/json"), ("X-Thing", "1")],
            body: [],
            observedPin: TLSPin(spkiDER: [])
        )
        #expect(result.header("content-type") == "application/json")
        #expect(result.header("X-THING") == "1")
        #expect(result.header("missing") == nil)
    }

    @Test("PEM encoding matches base64 with 64-column lines")
    func pem() {
        let der = (0..<100).map { UInt8($0) }
        let pem = pemEncodeCertificate(der)
        let body = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        #expect(pem == "-----BEGIN CERTIFICATE-----\n\(body)\n-----END CERTIFICATE-----\n")
        #expect(pemEncodeCertificate([0xff]).contains("/w==\n"))
        #expect(pemEncodeCertificate([0xff, 0xfe]).contains("//4=\n"))
    }
}
