/// An address that serves the factory certificate because the certificate assigned to it cannot serve TLS
/// (reported by `/health` and `/appliance/api/status`).
public struct CertificateProblem: Codable, Sendable, Equatable {
    public var address: String
    public var certificateId: Int64
    /// What is wrong and what to do, e.g. "import the key the certificate was issued for".
    public var message: String

    public init(address: String, certificateId: Int64, message: String) {
        self.address = address
        self.certificateId = certificateId
        self.message = message
    }
}
