import ApplianceAPI
import ApplianceClient
import ApplianceCrypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOSSL
import Synchronization

/// How two appliances prove to each other that they hold the same inter-appliance key (A7), without sending it.
///
/// Every request carries the sender's id, a time, a fresh nonce and the pin of the TLS key the sender sees on
/// the connection, with an HMAC-SHA-256 over all of them and the method and path. The receiver accepts it only if
/// the MAC is right, the time is within five minutes, the nonce is new, and the pin is its own: a machine in the
/// middle, which must show its own TLS key, cannot forward a request. The answer carries the receiver's MAC over
/// the nonce (the challenge) and both ids, so the sender knows it reached a box holding the key, through the TLS
/// key it pinned.
enum FailoverAuth {
    static let idHeader = "X-Failover-Id"
    static let timeHeader = "X-Failover-Time"
    static let nonceHeader = "X-Failover-Nonce"
    static let pinHeader = "X-Failover-Pin"
    static let macHeader = "X-Failover-Mac"
    static let proofHeader = "X-Failover-Proof"
    static let maximumSkew: Double = 300

    struct Request {
        var senderId: String
        var time: Int64
        var nonce: String
        var pin: String
        var method: String
        var path: String

        var message: [UInt8] {
            Array("request\n\(method)\n\(path)\n\(senderId)\n\(time)\n\(nonce)\n\(pin)".utf8)
        }
    }

    static func mac(_ key: String, _ message: [UInt8]) -> String {
        HMAC.sha256(key: Array(key.utf8), message: message).hexString
    }

    static func proof(_ key: String, nonce: String, responderId: String, senderId: String) -> String {
        mac(key, Array("response\n\(nonce)\n\(responderId)\n\(senderId)".utf8))
    }

    /// The headers of one request from `senderId` to a peer whose TLS key has pin `peerPin`.
    static func sign(key: String, senderId: String, peerPin: String, method: String, path: String)
        -> (headers: [(String, String)], nonce: String)
    {
        let request = Request(
            senderId: senderId,
            time: Int64(Date().timeIntervalSince1970),
            nonce: SecureRandom.bytes(16).hexString,
            pin: peerPin,
            method: method,
            path: path
        )
        return (
            [
                (idHeader, senderId), (timeHeader, "\(request.time)"), (nonceHeader, request.nonce),
                (pinHeader, peerPin), (macHeader, mac(key, request.message)),
            ],
            request.nonce
        )
    }

    static func equal(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    static let keyMismatch = ApplianceServerError(
        .forbidden,
        "failover_key_mismatch",
        "the inter-appliance keys of the two appliances differ; set the same key on both (security page) and compare "
            + "their fingerprints"
    )
}

/// Nonces seen in the last ten minutes: a recorded request cannot be played again.
final class NonceCache: Sendable {
    private let seen = Mutex<[String: Date]>([:])

    /// False when the nonce was used before.
    func admit(_ nonce: String) -> Bool {
        seen.withLock { seen in
            let now = Date()
            if seen.count > 10_000 { seen = seen.filter { now.timeIntervalSince($0.value) < 600 } }
            guard seen[nonce] == nil else { return false }
            seen[nonce] = now
            return true
        }
    }
}

extension Appliance {
    /// Checks a peer request's proof; returns the sender's appliance id and the proof to answer with.
    func verifyPeer(_ request: Hummingbird.Request, context: ApplianceRequestContext) throws -> (
        senderId: String, proof: String
    ) {
        func header(_ name: String) -> String? { request.headers[HTTPField.Name(name)!] }
        guard let key = try failoverKey() else {
            throw ApplianceServerError(
                .conflict,
                "failover_key_missing",
                "this appliance has no inter-appliance key; set it on its security page (the same as the peer's)"
            )
        }
        guard let senderId = header(FailoverAuth.idHeader), let timeText = header(FailoverAuth.timeHeader),
            let time = Int64(timeText), let nonce = header(FailoverAuth.nonceHeader),
            let pin = header(FailoverAuth.pinHeader), let mac = header(FailoverAuth.macHeader)
        else {
            throw ApplianceServerError(.unauthorized, "failover_unauthenticated", "peer requests need the key's proof")
        }
        let signed = FailoverAuth.Request(
            senderId: senderId,
            time: time,
            nonce: nonce,
            pin: pin,
            method: request.method.rawValue,
            path: request.uri.path
        )
        guard FailoverAuth.equal(FailoverAuth.mac(key, signed.message), mac) else { throw FailoverAuth.keyMismatch }
        guard abs(Double(time) - Date().timeIntervalSince1970) <= FailoverAuth.maximumSkew else {
            throw ApplianceServerError(
                .forbidden,
                "failover_clock",
                "the two appliances' clocks differ by more than \(Int(FailoverAuth.maximumSkew)) s; check NTP on both"
            )
        }
        // Bound to this TLS connection: the sender saw this box's own key, not a stand-in's.
        guard let local = context.localAddress, let ownPin = served.pin(for: local), ownPin == pin else {
            throw ApplianceServerError(
                .forbidden,
                "failover_channel",
                "the peer saw another TLS key than this appliance's; something stands between the two appliances"
            )
        }
        guard nonces.admit(nonce) else {
            throw ApplianceServerError(.forbidden, "failover_replay", "this peer request was seen before")
        }
        return (senderId, FailoverAuth.proof(key, nonce: nonce, responderId: applianceId, senderId: senderId))
    }
}

extension ServedCertificates {
    /// The pin of the TLS key served on `address`.
    func pin(for address: String) -> String? {
        guard let certificate = identity(for: address)?.chain.first,
            let spki = try? certificate.extractPublicKey().toSPKIBytes()
        else { return nil }
        return TLSPin(spkiDER: spki).description
    }
}
