import Foundation
import Yams

extension PlaybookParser {
    /// A package repository: a directory path, or an http(s) URL without credentials.
    func repository(_ field: Field) throws -> String? {
        let what = "'repository' in 'packages'"
        guard let text = try builder.string(field.value, what: what) else { return nil }
        if InventoryRules.uriHasPassword(text) {
            throw builder.error(
                .secretInPlaybook,
                "the URL of \(what) holds a password: secrets never go in a playbook; use a URL without "
                    + "credentials or a local directory",
                at: field.value
            )
        }
        if let problem = InventoryRules.opaqueValueProblem(text) {
            throw error("\(what) is not usable: \(problem); write a directory path or an http(s) URL", at: field.value)
        }
        if text.contains("://") {
            let components = URLComponents(string: text)
            let scheme = components?.scheme?.lowercased()
            guard scheme == "http" || scheme == "https", let host = components?.host, !host.isEmpty else {
                throw error(
                    "\(what) must be a directory path or an http:// or https:// URL with a host, such as "
                        + "https://packages.example.net/appliance",
                    at: field.value
                )
            }
        }
        return text
    }
}
