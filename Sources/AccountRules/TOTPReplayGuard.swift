/// Remembers, per user, the last time step whose code was accepted, so that each code logs in once only.
///
/// A value type: the server keeps it in its store (or an actor) and saves it after every accepted code. Without
/// it, a code seen over a shoulder or in a proxy log would work a second time for up to 60 s.
public struct TOTPReplayGuard: Sendable, Equatable, Codable {
    /// The last accepted step of each user, by user identifier.
    public private(set) var lastAcceptedStep: [String: Int64]

    public init(lastAcceptedStep: [String: Int64] = [:]) {
        self.lastAcceptedStep = lastAcceptedStep
    }

    /// Checks `code` for `user` at `unixTime` and records its step when it is accepted.
    ///
    /// A code is accepted when it matches the current or the previous step and that step is later than the last
    /// one accepted for this user.
    ///
    /// - Returns: The accepted step.
    /// - Throws: `AccountError.invalidCode` when the code is wrong or older than the previous step,
    ///   `AccountError.codeAlreadyUsed` when it matches a step already used.
    @discardableResult
    public mutating func accept(code: String, user: String, totp: TOTP, at unixTime: Int64) throws -> Int64 {
        guard let step = try totp.matchingStep(of: code, at: unixTime) else {
            throw AccountError(
                code: .invalidCode,
                message: "The code is wrong or has expired; type the code your authenticator app shows now. "
                    + "If every code fails, check that the phone's clock is set automatically."
            )
        }
        if let last = lastAcceptedStep[user], step <= last {
            throw AccountError(
                code: .codeAlreadyUsed,
                message: "This code was already used; wait for your authenticator app to show the next code."
            )
        }
        lastAcceptedStep[user] = step
        return step
    }

    /// Forgets a user, when 2FA is disabled or the user re-enrols with a new secret.
    public mutating func forget(user: String) {
        lastAcceptedStep[user] = nil
    }
}
