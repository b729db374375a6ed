public import ApplianceAPI

extension SecurityPolicy {
    /// Refuses a password that breaks this policy, saying which rule it breaks.
    public func check(password: String, username: String) throws {
        var missing: [String] = []
        if password.count < minimumPasswordLength { missing.append("at least \(minimumPasswordLength) characters") }
        if requireUppercase && !password.contains(where: \.isUppercase) { missing.append("an uppercase letter") }
        if requireLowercase && !password.contains(where: \.isLowercase) { missing.append("a lowercase letter") }
        if requireDigit && !password.contains(where: \.isNumber) { missing.append("a digit") }
        if requireSymbol && !password.contains(where: { !$0.isLetter && !$0.isNumber }) {
            missing.append("a symbol")
        }
        if !missing.isEmpty {
            throw StoreError(.policy, "the password policy requires " + missing.joined(separator: ", "))
        }
        if password.lowercased().contains(username.lowercased()) || password == SiteDatabase.factoryPassword {
            throw StoreError(.policy, "the password must not contain the username or be the factory password")
        }
    }

    /// Refuses settings that would lock everybody out or make no sense.
    public func validate() throws {
        guard (8...128).contains(minimumPasswordLength) else {
            throw StoreError(.invalidInput, "minimumPasswordLength must be between 8 and 128")
        }
        guard (1...100).contains(maxFailedLogins) else {
            throw StoreError(.invalidInput, "maxFailedLogins must be between 1 and 100")
        }
        guard (1...86_400).contains(lockoutSeconds) else {
            throw StoreError(.invalidInput, "lockoutSeconds must be between 1 and 86400")
        }
        guard (0...60).contains(backoffBaseSeconds) else {
            throw StoreError(.invalidInput, "backoffBaseSeconds must be between 0 and 60")
        }
        guard (5...7 * 86_400).contains(sessionLifetimeSeconds) else {
            throw StoreError(.invalidInput, "sessionLifetimeSeconds must be between 5 and 604800")
        }
    }
}
