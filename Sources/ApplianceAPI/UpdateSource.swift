/// A5: the update source an appliance checks — an http(s) repository URL or an absolute directory on the box.
///
/// One rule, stated once: `pattern` is the `UpdateSourceRequest.repository` pattern of docs/openapi.yaml (a test
/// compares them), and the server accepts exactly what it matches. A URL has a host name or IPv4/IPv6 literal,
/// an optional port 1–65535 and an optional path of the characters RFC 3986 allows in a path, %-escapes included; no user name or password (a
/// secret would sit in the configuration), no query or fragment (the appliance appends `/index.json`).
public enum UpdateSource {
    public static let pattern =
        #"^[ \t]*(https?://([A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])"#
        + #"(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"#
        + #"(/([A-Za-z0-9._~!$&'()*+,;=:@/-]|%[0-9A-Fa-f]{2})*)?|/[^\x00-\x1f\x7f]*)[ \t]*$"#

    /// What an operator is told when a source does not match.
    public static let rule =
        "the update source must be an http(s) URL of a repository (a host, an optional port 1-65535 and path, no "
        + "user name, query or fragment), e.g. https://updates.example.com/repo, or an absolute directory path on "
        + "the appliance, e.g. /srv/repo"

    /// The source as stored (surrounding spaces and tabs removed, a trailing `/` of a URL dropped), or nil when it
    /// does not follow the rule.
    public static func normalized(_ text: String) -> String? {
        // Scalar by scalar, as the document's regex: "/" followed by a combining mark is one Character.
        guard let regex = try? Regex(pattern).matchingSemantics(.unicodeScalar),
            (try? regex.wholeMatch(in: text)) != nil
        else { return nil }
        var scalars = Substring(text).unicodeScalars
        while let first = scalars.first, first == " " || first == "\t" { scalars.removeFirst() }
        while let last = scalars.last, last == " " || last == "\t" { scalars.removeLast() }
        if scalars.first != "/" {
            while scalars.last == "/" { scalars.removeLast() }
        }
        return String(scalars)
    }
}
