import ApplianceAPI
import Foundation
import Testing
import Yams

/// The server registers `Endpoint.all` and the client calls only those, so comparing that list with the
/// OpenAPI document keeps server, client and document in agreement.
@Suite struct OpenAPIDocumentTests {
    static let documentURL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/openapi.yaml")

    static func documentedEndpoints() throws -> Set<Endpoint> {
        let text = try String(contentsOf: documentURL, encoding: .utf8)
        let document = try #require(try Yams.load(yaml: text) as? [String: Any])
        #expect(document["openapi"] as? String == "3.1.0")
        let paths = try #require(document["paths"] as? [String: Any])
        var endpoints = Set<Endpoint>()
        for (path, item) in paths {
            let operations = try #require(item as? [String: Any])
            for method in operations.keys where ["get", "put", "post", "delete", "patch"].contains(method) {
                endpoints.insert(Endpoint(method.uppercased(), path))
            }
        }
        return endpoints
    }

    @Test func everyRouteIsDocumentedAndEveryDocumentedRouteExists() throws {
        let documented = try Self.documentedEndpoints()
        let implemented = Set(Endpoint.all)
        let undocumented = implemented.subtracting(documented).map(\.description).sorted()
        let missing = documented.subtracting(implemented).map(\.description).sorted()
        #expect(undocumented.isEmpty, "routes missing from docs/openapi.yaml: \(undocumented)")
        #expect(missing.isEmpty, "documented routes the appliance does not serve: \(missing)")
        #expect(Endpoint.all.count == implemented.count, "Endpoint.all lists a route twice")
    }

    @Test func pathParametersAreEncoded() {
        #expect(Endpoint.getFile.path(["name": "a b/c"]) == "/login/api/files/a%20b%2Fc")
        #expect(Endpoint.updateAddress.path(["id": "7"]) == "/appliance/api/network/addresses/7")
    }
}
