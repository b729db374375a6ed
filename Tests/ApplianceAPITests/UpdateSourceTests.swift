import ApplianceAPI
import Foundation
import Testing
import Yams

/// The update source rule is stated once: the document's pattern is the server's, and the server accepts exactly
/// what it matches (schemathesis found `http://` followed by anything accepted before).
@Suite struct UpdateSourceTests {
    @Test func documentStatesTheServersPattern() throws {
        let text = try String(contentsOf: OpenAPIDocumentTests.documentURL, encoding: .utf8)
        let document = try #require(try Yams.load(yaml: text) as? [String: Any])
        let components = try #require(document["components"] as? [String: Any])
        let schemas = try #require(components["schemas"] as? [String: Any])
        let request = try #require(schemas["UpdateSourceRequest"] as? [String: Any])
        let properties = try #require(request["properties"] as? [String: Any])
        let repository = try #require(properties["repository"] as? [String: Any])
        #expect(repository["pattern"] as? String == UpdateSource.pattern)
    }

    @Test(arguments: [
        ("https://updates.example.com/repo", "https://updates.example.com/repo"),
        ("  http://127.0.0.1:8080/a/b/ \t", "http://127.0.0.1:8080/a/b"),
        ("http://[::1]:65535", "http://[::1]:65535"),
        ("https://host/p%20q/~x", "https://host/p%20q/~x"),
        ("/srv/repo", "/srv/repo"),
        ("/", "/"),
        // Found by schemathesis: "/" followed by a combining mark is one Character but two scalars.
        ("  \t/\u{1E133}\u{CD}\u{61288}\u{FE}  \t ", "/\u{1E133}\u{CD}\u{61288}\u{FE}"),
    ])
    func accepts(_ given: String, _ stored: String) throws {
        let normalized = try #require(UpdateSource.normalized(given))
        #expect(normalized == stored)
        if normalized.unicodeScalars.first != "/" {
            #expect(URL(string: normalized + "/index.json")?.host != nil)
        }
    }

    @Test(arguments: [
        "", "ftp://x", "http://", "https://", "http:// host", "http://host:0", "http://host:65536",
        "http://user:secret@host/repo", "http://host/repo?x=1", "http://host/#top", "http://host/a b",
        "http://host/%zz", "relative/dir", "/srv/\nrepo", "HTTP://host",
    ])
    func refuses(_ given: String) {
        #expect(UpdateSource.normalized(given) == nil, "\(given.debugDescription) was accepted")
    }
}
