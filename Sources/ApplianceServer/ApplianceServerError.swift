import ApplianceAPI
import ApplianceStore
import BackupFormat
import Foundation
public import Hummingbird

/// Every refusal the management API answers with: an HTTP status, a stable code and a message that says what
/// to do. Errors of other kinds become a 500 that shows no detail and is logged.
public struct ApplianceServerError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var retryAfterSeconds: Int?
    /// For 405: the methods the path accepts, sent as `Allow`.
    public var allow: String?

    public init(
        _ status: HTTPResponse.Status,
        _ code: String,
        _ message: String,
        retryAfterSeconds: Int? = nil,
        allow: String? = nil
    ) {
        self.status = status
        self.code = code
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
        self.allow = allow
    }

    public var description: String { "\(code): \(message)" }

    static func badRequest(_ message: String) -> Self { .init(.badRequest, "invalid_input", message) }
    static func notFound(_ message: String) -> Self { .init(.notFound, "not_found", message) }
    static func conflict(_ message: String) -> Self { .init(.conflict, "conflict", message) }
    static let passwordChangeRequired = ApplianceServerError(
        .forbidden,
        "password_change_required",
        "password change required: change the factory password with POST /api/account/password first"
    )

    init(_ error: StoreError) {
        let status: HTTPResponse.Status
        let code: String
        switch error.code {
        case .invalidInput: (status, code) = (.badRequest, "invalid_input")
        case .notFound: (status, code) = (.notFound, "not_found")
        case .conflict: (status, code) = (.conflict, "conflict")
        case .unavailable: (status, code) = (.serviceUnavailable, "unavailable")
        case .passwordChangeRequired: (status, code) = (.forbidden, "password_change_required")
        case .unauthorized: (status, code) = (.unauthorized, "unauthorized")
        case .throttled: (status, code) = (.tooManyRequests, "login_backoff")
        case .locked: (status, code) = (.init(code: 423, reasonPhrase: "Locked"), "account_locked")
        case .policy: (status, code) = (.badRequest, "password_policy")
        case .forbidden: (status, code) = (.forbidden, "forbidden")
        case .diskFull: (status, code) = (.init(code: 507, reasonPhrase: "Insufficient Storage"), "disk_full")
        default: (status, code) = (.internalServerError, "storage")
        }
        self.init(status, code, error.message, retryAfterSeconds: error.retryAfterSeconds)
    }

    init(_ error: BackupFormatError) {
        let code: String
        switch error.code {
        case .wrongPassword: code = "wrong_password"
        case .truncated: code = "backup_truncated"
        case .unsupported: code = "backup_unsupported"
        case .notEncrypted: code = "backup_not_encrypted"
        default: code = "backup_corrupt"
        }
        self.init(.badRequest, code, error.message)
    }
}

extension ApplianceServerError: HTTPResponseError {
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfterSeconds { headers[.retryAfter] = "\(retryAfterSeconds)" }
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        if let allow { headers[.allow] = allow }
        let body = try APICoding.encoder().encode(ErrorResponse(error: code, message: message))
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
