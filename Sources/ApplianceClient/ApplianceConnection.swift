public import ApplianceAPI
import Foundation
public import NIOCore
public import NIOPosix

/// Typed calls to one appliance's management API over a pinned TLS connection.
///
/// Every call goes to an `Endpoint` of `ApplianceAPI`, so the client cannot call a route the server does not
/// have. Error answers become `ApplianceClientError` with the server's code and message.
public final class ApplianceConnection: Sendable {
    public let host: String
    public let port: Int
    public let client: PinnedHTTPClient
    public let token: String?
    /// How a 429 (login backoff) is waited out before it is reported.
    public let throttleRetry: ThrottleRetry

    public init(
        host: String,
        port: Int,
        pin: TLSPin?,
        token: String? = nil,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        requestTimeout: Duration? = nil,
        throttleRetry: ThrottleRetry = .standard
    ) {
        self.host = host
        self.port = port
        self.token = token
        self.throttleRetry = throttleRetry
        self.client = PinnedHTTPClient(
            host: host,
            port: port,
            pin: pin,
            eventLoopGroup: eventLoopGroup,
            requestTimeout: requestTimeout
        )
    }

    /// The same connection carrying a session token.
    public func authenticated(_ token: String) -> ApplianceConnection {
        ApplianceConnection(host: host, port: port, pin: client.pin, token: token, throttleRetry: throttleRetry)
    }

    /// The Authorization header of this session, for raw requests.
    public var authHeaders: [(String, String)] {
        token.map { [("Authorization", "Bearer \($0)")] } ?? []
    }

    // MARK: Generic calls

    /// Sends a JSON body (or none) and decodes a JSON answer.
    public func call<Answer: Decodable>(
        _ endpoint: Endpoint,
        parameters: [String: String] = [:],
        query: String = "",
        body: (some Encodable)? = Optional<Empty>.none,
        as type: Answer.Type = Answer.self
    ) async throws -> Answer {
        let result = try await send(endpoint, parameters: parameters, query: query, body: body)
        do {
            return try APICoding.decoder().decode(Answer.self, from: Data(result.body))
        } catch {
            throw ApplianceClientError.protocolError(
                "the appliance at \(host):\(port) answered \(endpoint) with something unexpected (\(error))"
            )
        }
    }

    /// Sends a request whose answer has no body of interest.
    public func perform(
        _ endpoint: Endpoint,
        parameters: [String: String] = [:],
        body: (some Encodable)? = Optional<Empty>.none
    ) async throws {
        _ = try await send(endpoint, parameters: parameters, query: "", body: body)
    }

    /// Sends a request and returns the raw result, throwing for any answer that is not 2xx; a 429 with
    /// Retry-After is waited out first, as `throttleRetry` allows.
    @discardableResult
    public func send(
        _ endpoint: Endpoint,
        parameters: [String: String] = [:],
        query: String = "",
        body: (some Encodable)?
    ) async throws -> HTTPResult {
        var headers = authHeaders
        var bytes: [UInt8]?
        if let body {
            bytes = Array(try APICoding.encoder().encode(body))
            headers.append(("Content-Type", "application/json"))
        }
        var attempt = 1
        var waited = Duration.zero
        while true {
            let result = try await client.send(
                method: endpoint.method,
                path: endpoint.path(parameters) + query,
                headers: headers,
                body: bytes
            )
            if let wait = throttleRetry.wait(after: result, attempt: attempt, waited: waited) {
                try await Task.sleep(for: wait)
                waited += wait
                attempt += 1
                continue
            }
            try check(result, endpoint)
            return result
        }
    }

    func check(_ result: HTTPResult, _ endpoint: Endpoint) throws {
        guard !(200..<300).contains(result.status) else { return }
        let decoded = try? APICoding.decoder().decode(ErrorResponse.self, from: Data(result.body))
        throw ApplianceClientError.api(
            status: result.status,
            code: decoded?.error ?? "http_\(result.status)",
            message: decoded?.message ?? "the appliance answered \(endpoint) with HTTP \(result.status)"
        )
    }

    // MARK: Specific calls

    /// The unauthenticated health probe; a 500 answer is returned, not thrown, since it carries the reason.
    public func health() async throws -> (healthy: Bool, health: HealthResponse, pin: TLSPin) {
        let result = try await client.send(method: Endpoint.health.method, path: Endpoint.health.path)
        guard let health = try? APICoding.decoder().decode(HealthResponse.self, from: Data(result.body)) else {
            throw ApplianceClientError.protocolError(
                "\(host):\(port) answered the health probe with HTTP \(result.status) and no health report; "
                    + "is this an appliance?"
            )
        }
        return (result.status == 200, health, result.observedPin)
    }

    public func login(username: String, password: String) async throws -> LoginResponse {
        try await call(.login, body: LoginRequest(username: username, password: password))
    }

    /// Streams a backup into `file` (written under a temporary name and renamed when complete).
    public func backup(
        _ request: BackupRequest,
        to file: String,
        progress: @escaping @Sendable (Int64) -> Void
    ) async throws -> HTTPResult {
        let result = try await client.download(
            method: Endpoint.backup.method,
            path: Endpoint.backup.path,
            headers: authHeaders + [("Content-Type", "application/json")],
            body: Array(try APICoding.encoder().encode(request)),
            to: file,
            progress: progress
        )
        try check(result, .backup)
        return result
    }

    /// Uploads a backup file and restores it.
    public func restore(
        file: String,
        password: String?,
        progress: @escaping @Sendable (Int64) -> Void
    ) async throws -> RestoreResponse {
        var headers = authHeaders + [("Content-Type", "application/octet-stream")]
        if let password, !password.isEmpty { headers.append((backupPasswordHeader, password)) }
        let result = try await client.upload(
            method: Endpoint.restore.method,
            path: Endpoint.restore.path,
            headers: headers,
            fromFile: file,
            progress: progress
        )
        try check(result, .restore)
        return try APICoding.decoder().decode(RestoreResponse.self, from: Data(result.body))
    }

    /// Uploads a file to the file store or the recordings (`putFile` / `putRecording`).
    public func upload(
        _ endpoint: Endpoint,
        name: String,
        fromFile file: String,
        progress: @escaping @Sendable (Int64) -> Void = { _ in }
    ) async throws -> StoredFileInfo {
        let result = try await client.upload(
            method: endpoint.method,
            path: endpoint.path(["name": name]),
            headers: authHeaders + [("Content-Type", "application/octet-stream")],
            fromFile: file,
            progress: progress
        )
        try check(result, endpoint)
        return try APICoding.decoder().decode(StoredFileInfo.self, from: Data(result.body))
    }

    /// Uploads a package file for installation (manual install); `acceptEula` answers the package's EULA.
    public func installPackage(
        fromFile file: String,
        acceptEula: Bool,
        progress: @escaping @Sendable (Int64) -> Void = { _ in }
    ) async throws -> InstallResponse {
        let result = try await client.upload(
            method: Endpoint.uploadUpdate.method,
            path: Endpoint.uploadUpdate.path,
            headers: authHeaders + [
                ("Content-Type", "application/octet-stream"), (acceptEulaHeader, acceptEula ? "yes" : "no"),
            ],
            fromFile: file,
            progress: progress
        )
        try check(result, .uploadUpdate)
        return try APICoding.decoder().decode(InstallResponse.self, from: Data(result.body))
    }

    /// Downloads a stored file or recording (`getFile` / `getRecording`) into `file`.
    public func download(
        _ endpoint: Endpoint,
        name: String,
        to file: String,
        progress: @escaping @Sendable (Int64) -> Void = { _ in }
    ) async throws {
        let result = try await client.download(
            method: endpoint.method,
            path: endpoint.path(["name": name]),
            headers: authHeaders,
            to: file,
            progress: progress
        )
        try check(result, endpoint)
    }
}

/// An empty JSON body, for calls that send none.
public struct Empty: Codable, Sendable {
    public init() {}
}
