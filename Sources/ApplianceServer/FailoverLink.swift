import ApplianceAPI
import ApplianceClient
import Foundation
import HTTPTypes

/// This appliance talking to its failover peer: pinned TLS, every request signed with the pre-shared key, every
/// answer checked for the peer's proof of the same key.
struct FailoverLink: Sendable {
    let address: String
    let host: String
    let port: Int
    let pin: TLSPin
    let key: String
    let ownId: String
    var timeout: Duration = .seconds(30)

    init(address: String, pin: TLSPin, key: String, ownId: String) throws {
        guard let parsed = HostPort(address) else {
            throw ApplianceServerError.badRequest("\(address) is not HOST:PORT")
        }
        self.address = address
        self.host = parsed.host
        self.port = parsed.port
        self.pin = pin
        self.key = key
        self.ownId = ownId
    }

    /// The peer's TLS key at first contact.
    static func firstContact(_ address: String) async throws -> TLSPin {
        guard let parsed = HostPort(address) else {
            throw ApplianceServerError.badRequest("\(address) is not HOST:PORT, e.g. 127.0.0.12:8443")
        }
        do {
            return try await PinnedHTTPClient.fetchPeerCertificate(
                host: parsed.host,
                port: parsed.port,
                connectTimeout: .seconds(5)
            ).pin
        } catch {
            throw unreachable(address, error)
        }
    }

    static func unreachable(_ address: String, _ error: any Error) -> ApplianceServerError {
        ApplianceServerError(
            .badGateway,
            "failover_peer_unreachable",
            "cannot reach the peer appliance at \(address) (\(error)); check the address, the TLS port and that it runs"
        )
    }

    /// Sends one signed request; decodes the answer after checking the peer's proof.
    func call<Answer: Decodable>(_ endpoint: Endpoint, parameters: [String: String] = [:], body: some Encodable)
        async throws -> Answer
    {
        let result = try await send(endpoint, parameters: parameters, body: Array(try APICoding.encoder().encode(body)))
        do {
            return try APICoding.decoder().decode(Answer.self, from: Data(result.body))
        } catch {
            throw ApplianceServerError(
                .badGateway,
                "failover_peer_protocol",
                "the peer at \(address) answered \(endpoint) with something unexpected (\(error)); are both on the "
                    + "same software?"
            )
        }
    }

    func send(_ endpoint: Endpoint, parameters: [String: String] = [:], body: [UInt8]?) async throws -> HTTPResult {
        let path = endpoint.path(parameters)
        let (headers, nonce) = FailoverAuth.sign(
            key: key,
            senderId: ownId,
            peerPin: pin.description,
            method: endpoint.method,
            path: path
        )
        let client = PinnedHTTPClient(
            host: host,
            port: port,
            pin: pin,
            connectTimeout: .seconds(5),
            requestTimeout: timeout
        )
        let result: HTTPResult
        do {
            result = try await client.send(
                method: endpoint.method,
                path: path,
                headers: headers + [("Content-Type", "application/json")],
                body: body
            )
        } catch {
            throw Self.unreachable(address, error)
        }
        try check(result, nonce: nonce)
        return result
    }

    /// Downloads a file the peer serves into `file` (written beside it first, then renamed). With `resumingFrom`
    /// (the file's SHA-256) an interrupted download is continued by the next call.
    func download(
        _ endpoint: Endpoint,
        name: String,
        to file: URL,
        resumingFrom entityTag: String? = nil,
        progress: @escaping @Sendable (Int64) -> Void = { _ in }
    ) async throws -> HTTPResult {
        let path = endpoint.path(["name": name])
        let (headers, nonce) = FailoverAuth.sign(
            key: key,
            senderId: ownId,
            peerPin: pin.description,
            method: endpoint.method,
            path: path
        )
        let client = PinnedHTTPClient(host: host, port: port, pin: pin, connectTimeout: .seconds(5))
        let result: HTTPResult
        do {
            result = try await client.download(
                method: endpoint.method,
                path: path,
                headers: headers,
                to: file.path,
                resumingFrom: entityTag,
                progress: progress
            )
        } catch {
            throw Self.unreachable(address, error)
        }
        try check(result, nonce: nonce)
        return result
    }

    func check(_ result: HTTPResult, nonce: String) throws {
        guard result.isSuccess else {
            let decoded = try? APICoding.decoder().decode(ErrorResponse.self, from: Data(result.body))
            if decoded?.error == "failover_key_mismatch" { throw FailoverAuth.keyMismatch }
            throw ApplianceServerError(
                .init(code: result.status),
                decoded?.error ?? "failover_peer_refused",
                "the peer appliance at \(address) refused: \(decoded?.message ?? "HTTP \(result.status)")"
            )
        }
        let peerId = result.header(FailoverAuth.idHeader) ?? ""
        let expected = FailoverAuth.proof(key, nonce: nonce, responderId: peerId, senderId: ownId)
        guard let proof = result.header(FailoverAuth.proofHeader), FailoverAuth.equal(proof, expected) else {
            throw ApplianceServerError(
                .forbidden,
                "failover_peer_unproven",
                "the appliance at \(address) did not prove it holds the inter-appliance key; check both keys"
            )
        }
    }
}
