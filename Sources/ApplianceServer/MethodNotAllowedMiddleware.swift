import ApplianceAPI
import Hummingbird

/// Answers 405 with `Allow` when a request names a path of the API with a method the API does not declare for
/// it; unknown paths go on to the router's 404.
///
/// The table is built once from `Endpoint.all`, so it cannot disagree with the routes. It runs before
/// authentication: which methods a path accepts is public (the OpenAPI document says so), and a client with the
/// wrong method learns that whether or not it logged in.
struct MethodNotAllowedMiddleware: RouterMiddleware {
    typealias Context = ApplianceRequestContext

    /// A path template split into segments; `nil` stands for a `{parameter}` segment.
    private struct Template: Sendable {
        var segments: [String?]
        var methods: Set<String>

        func matches(_ path: [Substring]) -> Bool {
            guard path.count == segments.count else { return false }
            return zip(segments, path).allSatisfy { template, segment in
                template.map { $0 == segment } ?? !segment.isEmpty
            }
        }
    }

    private let templates: [Template]

    init(endpoints: [Endpoint] = Endpoint.all) {
        var byPath: [String: Set<String>] = [:]
        for endpoint in endpoints {
            byPath[endpoint.path, default: []].insert(endpoint.method)
        }
        templates = byPath.map { path, methods in
            Template(
                segments: path.split(separator: "/").map { segment in
                    segment.hasPrefix("{") && segment.hasSuffix("}") ? nil : String(segment)
                },
                methods: methods
            )
        }
    }

    /// The methods declared for `path`, empty when no endpoint has that path.
    func allowedMethods(for path: String) -> Set<String> {
        let segments = path.split(separator: "/")
        return templates.filter { $0.matches(segments) }.reduce(into: []) { $0.formUnion($1.methods) }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let allowed = allowedMethods(for: request.uri.path)
        if !allowed.isEmpty && !allowed.contains(request.method.rawValue) {
            let list = allowed.sorted().joined(separator: ", ")
            throw ApplianceServerError(
                .methodNotAllowed,
                "method_not_allowed",
                "\(request.uri.path) does not accept \(request.method.rawValue); use \(list) (see docs/openapi.yaml)",
                allow: list
            )
        }
        return try await next(request, context)
    }
}
