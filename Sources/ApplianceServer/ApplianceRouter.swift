import ApplianceAPI
import ApplianceStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Builds the router of the management API from `Endpoint.all`: every endpoint has exactly one handler.
enum ApplianceRouter {
    typealias Handler = @Sendable (Request, ApplianceRequestContext) async throws -> Response

    static func build(_ appliance: Appliance) -> Router<ApplianceRequestContext> {
        let router = Router(context: ApplianceRequestContext.self)
        router.add(middleware: ErrorMappingMiddleware(dataDirectory: appliance.directory.root))
        router.add(middleware: MethodNotAllowedMiddleware())
        router.add(middleware: AccessTypeMiddleware(appliance: appliance))
        router.add(middleware: AuthenticationMiddleware(appliance: appliance))
        let handlers = handlers(appliance).merging(failoverHandlers(appliance)) { first, _ in first }
        for endpoint in Endpoint.all {
            guard let registered = handlers[endpoint] else {
                preconditionFailure("no handler for \(endpoint)")
            }
            // Maintenance mode (A8) refuses every site write here, in one place.
            let handler = endpoint.writesSite ? gated(registered, appliance) : registered
            router.on(RouterPath(endpoint.path), method: HTTPRequest.Method(endpoint.method)!) { request, context in
                try await handler(request, context)
            }
        }
        return router
    }

    // swift-format-ignore: FunctionBodyLength
    static func handlers(_ appliance: Appliance) -> [Endpoint: Handler] {
        [
            .health: { _, _ in
                let (healthy, body) = appliance.health()
                return try json(body, status: healthy ? .ok : .internalServerError)
            },
            .login: { request, context in
                let input = try await request.decode(as: LoginRequest.self, context: context)
                let result = try appliance.site.login(username: input.username, password: input.password)
                try appliance.admitLogin(result)
                return try json(
                    LoginResponse(
                        token: result.token,
                        expiresAt: result.expiresAt,
                        passwordChangeRequired: result.passwordChangeRequired
                    )
                )
            },
            .logout: { _, context in
                try appliance.site.logout(token: context.token ?? "")
                return Response(status: .noContent)
            },
            .changePassword: { request, context in
                let input = try await request.decode(as: ChangePasswordRequest.self, context: context)
                guard let user = context.user, let token = context.token else { throw unauthenticated }
                try appliance.site.changePassword(
                    user: user,
                    token: token,
                    current: input.currentPassword,
                    new: input.newPassword
                )
                return Response(status: .noContent)
            },
            .status: { _, _ in try json(try appliance.status()) },
            .network: { _, _ in try json(try await appliance.network()) },
            .updateNetworkSettings: { request, context in
                let input = try await request.decode(as: NetworkSettings.self, context: context)
                _ = try appliance.updateNetworkSettings(input)
                return try json(try await appliance.network())
            },
            .addAddress: { request, context in
                let input = try await request.decode(as: AddressInput.self, context: context)
                let entry = try await appliance.addAddress(input)
                return try json(
                    AddressChangeResponse(address: entry, warning: Appliance.networkWarning),
                    status: .created
                )
            },
            .updateAddress: { request, context in
                let input = try await request.decode(as: AddressInput.self, context: context)
                let entry = try await appliance.updateAddress(id: try id(context), input)
                return try json(AddressChangeResponse(address: entry, warning: Appliance.networkWarning))
            },
            .deleteAddress: { _, context in
                try await appliance.deleteAddress(id: try id(context))
                return try json(AddressChangeResponse(address: nil, warning: Appliance.networkWarning))
            },
            .listCertificates: { _, _ in try json(try appliance.certificateEntries()) },
            .importCertificate: { request, context in
                let input = try await request.decode(as: CertificateImportRequest.self, context: context)
                return try json(try appliance.importCertificate(input), status: .created)
            },
            .exportCertificate: { request, context in
                let input = try await request.decode(as: CertificateExportRequest.self, context: context)
                let (contentType, bytes) = try appliance.exportCertificate(id: try id(context), input)
                return Response(
                    status: .ok,
                    headers: [.contentType: contentType],
                    body: .init(byteBuffer: ByteBuffer(bytes: bytes))
                )
            },
            .deleteCertificate: { _, context in
                try appliance.deleteCertificate(id: try id(context))
                return Response(status: .noContent)
            },
            .assignCertificate: { request, context in
                let input = try await request.decode(as: CertificateAssignment.self, context: context)
                return try json(try await appliance.assignCertificate(input.certificateId, toAddress: try id(context)))
            },
            .updates: { _, _ in try json(try await appliance.checkUpdates()) },
            .setUpdateSource: { request, context in
                let input = try await request.decode(as: UpdateSourceRequest.self, context: context)
                try appliance.setUpdateSource(input.repository)
                return Response(status: .noContent)
            },
            .installUpdate: { request, context in
                let input = try await request.decode(as: InstallRequest.self, context: context)
                return try json(try await appliance.installFromRepository(input))
            },
            .uploadUpdate: { request, _ in
                let accepted = request.headers[HTTPField.Name(acceptEulaHeader)!]?.lowercased() == "yes"
                return try json(try await appliance.installUpload(request.body, acceptEula: accepted))
            },
            .downloadKey: { _, _ in try json(try appliance.issueDownloadKey()) },
            .updateSlots: { _, _ in try json(try appliance.slotsResponse()) },
            .rollbackUpdate: { _, _ in try json(try appliance.rollback()) },
            .listRecordings: { _, _ in try json(try appliance.box.recordings()) },
            .putRecording: { request, context in
                let name = try name(context)
                let info = try await appliance.receiveFile(
                    request,
                    to: appliance.directory.recordings.appendingPathComponent(name)
                )
                try await appliance.reportingDiskFull("indexing the recording \(name)", needs: nil) {
                    try appliance.box.saveRecording(info)
                }
                return try json(info, status: .created)
            },
            .getRecording: { request, context in
                let name = try name(context)
                guard let info = try appliance.box.recording(named: name) else {
                    throw ApplianceServerError.notFound("there is no recording named \(name)")
                }
                return try fileResponse(
                    appliance.directory.recordings.appendingPathComponent(name),
                    info: info,
                    request: request
                )
            },
            .factoryReset: { request, context in
                let input = try await request.decode(as: FactoryResetRequest.self, context: context)
                try await appliance.factoryReset(
                    confirmHostname: input.confirmHostname,
                    powerOff: input.powerOff ?? false
                )
                return Response(status: .accepted)
            },
            .shutdown: { _, _ in
                appliance.requestShutdown()
                return Response(status: .accepted)
            },
            .reboot: { _, _ in
                appliance.requestReboot()
                return Response(status: .accepted)
            },
            .maintenance: { _, _ in try json(appliance.maintenanceStatus) },
            .setMaintenance: { request, context in
                let input = try await request.decode(as: MaintenanceRequest.self, context: context)
                return try json(try await appliance.setMaintenance(input, keepingSession: context.token))
            },
            .security: { _, _ in try json(try appliance.site.securityPolicy()) },
            .updateSecurity: { request, context in
                let input = try await request.decode(as: SecurityPolicy.self, context: context)
                try appliance.site.updateSecurityPolicy(input)
                return try json(try appliance.site.securityPolicy())
            },
            .settings: { _, _ in try json(try appliance.site.settings()) },
            .updateSettings: { request, context in
                let input = try await request.decode(as: [String: String].self, context: context)
                try appliance.site.updateSettings(input)
                return try json(try appliance.site.settings())
            },
            .listUsers: { _, _ in try json(try appliance.site.users()) },
            .createUser: { request, context in
                let input = try await request.decode(as: UserInput.self, context: context)
                return try json(try appliance.site.createUser(input), status: .created)
            },
            .listHistory: { request, _ in
                let offset = try query(request, "offset", in: 0...Int.max) ?? 0
                let limit = try query(request, "limit", in: 1...10_000) ?? 100
                return try json(try appliance.site.history(offset: offset, limit: limit))
            },
            .appendHistory: { request, context in
                let input = try await request.decode(as: AppendHistoryRequest.self, context: context)
                try appliance.site.appendHistory(input.rows)
                return Response(status: .noContent)
            },
            .listFiles: { _, _ in try json(try appliance.site.files()) },
            .putFile: { request, context in
                let name = try name(context)
                let info = try await appliance.receiveFile(
                    request,
                    to: appliance.directory.files.appendingPathComponent(name)
                )
                try await appliance.reportingDiskFull("indexing \(name) in the file store", needs: nil) {
                    try appliance.site.saveFile(info)
                }
                return try json(info, status: .created)
            },
            .getFile: { request, context in
                let name = try name(context)
                guard let info = try appliance.site.file(named: name) else {
                    throw ApplianceServerError.notFound("there is no file named \(name) in the file store")
                }
                return try fileResponse(
                    appliance.directory.files.appendingPathComponent(name),
                    info: info,
                    request: request
                )
            },
            .siteSummary: { _, _ in try json(try appliance.siteSummary()) },
            .generateSiteData: { request, context in
                let input = try await request.decode(as: GenerateSiteDataRequest.self, context: context)
                guard input.bytes > 0, input.bytes <= 64 * 1024 * 1024 * 1024 else {
                    throw ApplianceServerError.badRequest("bytes must be between 1 and 64 GiB")
                }
                let result = try await appliance.reportingDiskFull(
                    "generating \(input.bytes) bytes of site data",
                    needs: input.bytes
                ) {
                    try SiteDataGenerator(totalBytes: input.bytes, seed: input.seed)
                        .run(directory: appliance.directory, site: appliance.site, box: appliance.box)
                }
                return try json(try appliance.siteSummary(), status: result.bytes > 0 ? .created : .ok)
            },
            .backup: { request, context in
                let input = try await request.decode(as: BackupRequest.self, context: context)
                let (filename, body) = try await appliance.reportingDiskFull(
                    "the backup's database snapshot",
                    needs: appliance.backupSnapshotNeeds(includeHistory: input.includeHistory)
                ) { try appliance.backup(input) }
                return Response(
                    status: .ok,
                    headers: [
                        .contentType: "application/octet-stream",
                        .contentDisposition: "attachment; filename=\"\(filename)\"",
                    ],
                    body: body
                )
            },
            .restore: { request, _ in
                let password = request.headers[HTTPField.Name(backupPasswordHeader)!]
                let length = request.headers[.contentLength].flatMap { Int64($0) }
                return try json(try await appliance.restore(body: request.body, length: length, password: password))
            },
        ]
    }

    /// A site write that passes the maintenance gate first.
    static func gated(_ handler: @escaping Handler, _ appliance: Appliance) -> Handler {
        { request, context in
            try appliance.refuseOnBackup()
            try appliance.gate.enter()
            defer { appliance.gate.leave() }
            return try await handler(request, context)
        }
    }

    static let unauthenticated = ApplianceServerError(.unauthorized, "unauthorized", "log in first")

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try APICoding.encoder().encode(value)
        return Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }

    static func id(_ context: ApplianceRequestContext) throws -> Int64 {
        guard let id = context.parameters.get("id", as: Int64.self) else {
            throw ApplianceServerError.badRequest("the id in the path must be a number")
        }
        return id
    }

    /// An optional integer query parameter; present but not a number in `range` is refused.
    static func query(_ request: Request, _ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = request.uri.queryParameters.get(name) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw ApplianceServerError.badRequest(
                "the query parameter \(name) must be a whole number from \(range.lowerBound) to \(range.upperBound)"
            )
        }
        return value
    }

    static func name(_ context: ApplianceRequestContext) throws -> String {
        let name = context.parameters.get("name") ?? ""
        try StoredFileName.validate(name)
        return name
    }
}
