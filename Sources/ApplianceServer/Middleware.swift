import ApplianceAPI
import ApplianceCrypto
import ApplianceStore
import BackupFormat
import Foundation
import Hummingbird
import Logging
import SoftwarePackages

/// Turns store and format errors into API errors; everything else stays a 500 without detail, logged.
struct ErrorMappingMiddleware: RouterMiddleware {
    typealias Context = ApplianceRequestContext
    /// The data directory, whose file system a "disk full" refusal reports on.
    let dataDirectory: URL

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as StoreError {
            throw ApplianceServerError(error)
        } catch let error as BackupFormatError {
            throw ApplianceServerError(error)
        } catch let error as SoftwarePackageError {
            let refusedByState: Set<SoftwarePackageError.Code> = [.downgrade, .missingRequirement, .conflict]
            throw ApplianceServerError(
                refusedByState.contains(error.code) ? .conflict : .badRequest,
                "package_\(error.code)",
                error.message
            )
        } catch let error as CryptoError where error.code != .internalFailure {
            // Certificates and keys the operator sent that cannot be used: the message says why.
            throw ApplianceServerError(.badRequest, "invalid_certificate", error.message)
        } catch let error as ApplianceServerError {
            throw error
        } catch let error as HTTPError where error.status == .badRequest || error.status == .contentTooLarge {
            // Hummingbird's own refusals (a body that is not the expected JSON, too large) in our error format.
            throw ApplianceServerError(
                error.status,
                "invalid_input",
                "the request was refused: \(error.body ?? "\(error.status)"); check it against docs/openapi.yaml"
            )
        } catch let error as any HTTPResponseError {
            throw error
        } catch let error where DiskSpace.isOutOfSpace(error) {
            // SQLITE_FULL or ENOSPC from an operation that did not say what it needed: still a 507 that says so.
            context.logger.error(
                "Disk full",
                metadata: ["request.path": "\(request.uri.path)", "error": "\(String(reflecting: error))"]
            )
            throw ApplianceServerError(StoreError.diskFull("this request", at: dataDirectory))
        } catch {
            context.logger.error(
                "Request failed",
                metadata: ["request.path": "\(request.uri.path)", "error": "\(String(reflecting: error))"]
            )
            throw ApplianceServerError(
                .internalServerError,
                "internal",
                "the appliance hit an internal error; see its log and try again"
            )
        }
    }
}

/// A3 access types: an address that serves only the public site does not answer `/appliance`, and an
/// admin-only address does not answer `/login`.
struct AccessTypeMiddleware: RouterMiddleware {
    typealias Context = ApplianceRequestContext
    let appliance: Appliance

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let path = request.uri.path
        if let local = context.localAddress,
            let entry = try appliance.box.addresses().first(where: { $0.address == local })
        {
            if path.hasPrefix("/appliance") && !entry.access.servesAppliance {
                throw ApplianceServerError(
                    .forbidden,
                    "wrong_address",
                    "\(local) serves only the public site; reach /appliance through an admin address"
                )
            }
            if path.hasPrefix("/login") && !entry.access.servesSite {
                throw ApplianceServerError(
                    .forbidden,
                    "wrong_address",
                    "\(local) serves only /appliance; reach /login through a public address"
                )
            }
        }
        return try await next(request, context)
    }
}

/// A2: bearer sessions, the factory-password gate, and administrator-only areas — one check, driven by
/// `Endpoint.access`, for every request.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = ApplianceRequestContext
    let appliance: Appliance

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let path = request.uri.path
        // Paths that match no endpoint still need a session: nothing about the API is told to strangers.
        let access = Endpoint.matching(method: request.method.rawValue, path: path)?.access ?? .session
        if access == .open || access == .peer {
            return try await next(request, context)  // a peer request is checked by its handler (FailoverAuth)
        }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw ApplianceServerError(.unauthorized, "unauthorized", "log in first (POST /api/session)")
        }
        let token = String(header.dropFirst("Bearer ".count))
        let user = try appliance.site.authenticate(token: token)
        if user.passwordChangeRequired && access != .beforePasswordChange {
            throw ApplianceServerError.passwordChangeRequired
        }
        if !user.isAdministrator && (path.hasPrefix("/appliance") || path.hasPrefix("/login/api")) {
            throw ApplianceServerError(.forbidden, "forbidden", "this needs an administrator account")
        }
        var context = context
        context.user = user
        context.token = token
        return try await next(request, context)
    }
}
