import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The spelling rules for names and values in an inventory, shared by parsing and recording.
enum InventoryRules {
    /// Hypervisor and appliance names: `[a-z0-9][a-z0-9-]{0,62}` (they become domain, volume and lock file names).
    static func isValidName(_ name: String) -> Bool {
        let scalars = Array(name.unicodeScalars)
        guard let first = scalars.first, scalars.count <= 63, isLowerAlphanumeric(first) else { return false }
        return scalars.allSatisfy { isLowerAlphanumeric($0) || $0 == "-" }
    }

    static let nameRule = "names are 1 to 63 lower-case letters, digits or '-', starting with a letter or digit"

    /// Secret names: `[A-Z_][A-Z0-9_]*`, the shape of an environment variable.
    static func isValidSecretName(_ name: String) -> Bool {
        let scalars = Array(name.unicodeScalars)
        guard let first = scalars.first, ("A"..."Z").contains(first) || first == "_" else { return false }
        return scalars.allSatisfy { ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }

    /// libvirt storage pool and network names: 1 to 64 letters, digits, '.', '_', '+' or '-', not starting with
    /// '.' or '-'.
    static func isValidLibvirtName(_ name: String) -> Bool {
        let scalars = Array(name.unicodeScalars)
        guard let first = scalars.first, scalars.count <= 64, first != ".", first != "-" else { return false }
        return scalars.allSatisfy {
            $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "._+-".unicodeScalars.contains($0))
        }
    }

    /// A libvirt URI: a scheme (`qemu`, `qemu+ssh`, `test`…) followed by ':' and no white space.
    static func isPlausibleLibvirtURI(_ uri: String) -> Bool {
        guard let colon = uri.firstIndex(of: ":"), colon != uri.startIndex else { return false }
        let scheme = uri[..<colon].unicodeScalars
        guard let first = scheme.first, ("a"..."z").contains(first) else { return false }
        let schemeOK = scheme.allSatisfy {
            ("a"..."z").contains($0) || ("0"..."9").contains($0) || "+.-".unicodeScalars.contains($0)
        }
        return schemeOK && uri[uri.index(after: colon)...].hasPrefix("//") && !containsWhitespaceOrControl(uri)
    }

    /// True when a libvirt URI carries a password in its user part (`qemu+ssh://user:password@host/system`).
    static func uriHasPassword(_ uri: String) -> Bool {
        guard let start = uri.range(of: "://")?.upperBound else { return false }
        let authority = uri[start...].prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard let at = authority.lastIndex(of: "@") else { return false }
        return authority[..<at].contains(":")
    }

    /// Why `text` is not a usable `HOST:PORT` address, or nil when it is. IPv6 hosts go in brackets.
    static func addressProblem(_ text: String) -> String? {
        let example = "write HOST:PORT, such as 127.0.0.11:9443, box.example.net:443 or [::1]:9443"
        if text.isEmpty { return "the address is empty; \(example)" }
        if containsWhitespaceOrControl(text) { return "the address contains white space; \(example)" }
        let host: Substring
        let port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return "the '[' has no matching ']'; \(example)" }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return "the port is missing after ']'; \(example)" }
            port = rest.dropFirst()
            guard isIPv6(String(host)) else { return "'\(host)' is not an IPv6 address; \(example)" }
        } else {
            guard let colon = text.lastIndex(of: ":") else { return "the port is missing; \(example)" }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
            if host.contains(":") {
                return "IPv6 addresses go in brackets, as in [::1]:9443 (and quoted in YAML: \"[::1]:9443\")"
            }
            if host.isEmpty { return "the host is missing; \(example)" }
            if host.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }) {
                guard isIPv4(String(host)) else { return "'\(host)' is not an IPv4 address; \(example)" }
            } else if !isHostName(host) {
                return "'\(host)' is not a valid host name; \(example)"
            }
        }
        guard !port.isEmpty, port.count <= 5, port.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(port),
            (1...65535).contains(number)
        else { return "the port must be a number from 1 to 65535; \(example)" }
        return nil
    }

    /// Why `value` cannot be an opaque single-line value such as a pin or an id, or nil when it can.
    static func opaqueValueProblem(_ value: String) -> String? {
        if value.isEmpty { return "it is empty" }
        if value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            return "it contains a line break or control character"
        }
        if value.first?.isWhitespace == true || value.last?.isWhitespace == true {
            return "it starts or ends with white space"
        }
        return nil
    }

    /// True for keys that name secret material, which never belongs in the inventory.
    static func looksLikeSecretKey(_ key: String) -> Bool {
        let lowered = key.lowercased().replacingOccurrences(of: "-", with: "_")
        let words = [
            "password", "passwd", "passphrase", "secret", "token", "private_key", "privatekey", "api_key", "apikey",
            "credential",
        ]
        return words.contains { lowered.contains($0) }
    }

    /// An environment-variable-shaped name built from parts: upper-cased, anything else than letters and digits
    /// turned into '_'.
    static func secretName(_ parts: String...) -> String {
        let joined = parts.joined(separator: "_").uppercased()
        return String(
            joined.unicodeScalars.map { ("A"..."Z").contains($0) || ("0"..."9").contains($0) ? Character($0) : "_" }
        )
    }

    private static func isLowerAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar)
    }

    private static func containsWhitespaceOrControl(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.properties.isWhitespace || $0.properties.generalCategory == .control }
    }

    private static func isHostName(_ host: Substring) -> Bool {
        guard host.count <= 253 else { return false }
        let labels =
            host.hasSuffix(".")
            ? host.dropLast().split(separator: ".", omittingEmptySubsequences: false)
            : host.split(separator: ".", omittingEmptySubsequences: false)
        return labels.allSatisfy { label in
            !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.unicodeScalars.allSatisfy {
                    $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-")
                }
        }
    }

    private static func isIPv4(_ host: String) -> Bool {
        var address = in_addr()
        return inet_pton(AF_INET, host, &address) == 1
    }

    private static func isIPv6(_ host: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET6, host, &address) == 1
    }
}

/// Suggestions for misspelt keys and names.
enum Spelling {
    /// The candidate closest to `word`, if one is close enough to be a likely typo.
    static func closest(to word: String, among candidates: [String]) -> String? {
        let lowered = word.lowercased()
        let best = candidates.filter { $0 != word }
            .map { (candidate: $0, distance: editDistance(lowered, $0.lowercased())) }
            .min { $0.distance < $1.distance }
        if let best, best.distance <= max(1, min(3, word.count / 3)) { return best.candidate }
        if lowered.count >= 3,
            let prefixed = candidates.first(where: { $0.lowercased().hasPrefix(lowered) || lowered.hasPrefix($0) })
        {
            return prefixed
        }
        return nil
    }

    /// Levenshtein distance over characters.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
