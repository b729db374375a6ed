/// A user's private display name (seen by colleagues and in reports) and public one (seen by customers).
///
/// The two are in sync while they are equal: setting the private name then sets the public one too. Setting the
/// public name to something else ends the sync; making the two equal again, from either side, restores it. So
/// "in sync" is not stored, it is `privateName == publicName`, and no sequence of edits can disagree with it.
public struct DisplayNames: Sendable, Equatable, Codable {
    /// The longest name accepted, in characters; long enough for full names, short enough for a chat title.
    public static let maximumLength = 100

    public private(set) var privateName: String
    public private(set) var publicName: String

    /// Both names equal, as for a new account.
    ///
    /// - Throws: `AccountError.invalidDisplayName` for an empty, over-long or control-character name.
    public init(name: String) throws {
        let name = try Self.validated(name, field: "display name")
        privateName = name
        publicName = name
    }

    /// Two names as stored.
    public init(privateName: String, publicName: String) throws {
        self.privateName = try Self.validated(privateName, field: "private display name")
        self.publicName = try Self.validated(publicName, field: "public display name")
    }

    /// True while a change to the private name is copied to the public one.
    public var inSync: Bool {
        privateName == publicName
    }

    /// Sets the private name; the public one follows while the two are in sync.
    public mutating func setPrivateName(_ name: String) throws {
        let name = try Self.validated(name, field: "private display name")
        if inSync {
            publicName = name
        }
        privateName = name
    }

    /// Sets the public name; a name equal to the private one puts the two back in sync.
    public mutating func setPublicName(_ name: String) throws {
        publicName = try Self.validated(name, field: "public display name")
    }

    /// Applies a submitted form that carries both fields, as a page without script sends it.
    ///
    /// A public field left as it was while the names were in sync means "follow the private name", which is what
    /// the page's live copy would have typed there.
    public mutating func submit(privateName newPrivate: String, publicName newPublic: String) throws {
        let validatedPrivate = try Self.validated(newPrivate, field: "private display name")
        let validatedPublic = try Self.validated(newPublic, field: "public display name")
        if inSync && validatedPublic == publicName {
            try setPrivateName(validatedPrivate)
        } else {
            privateName = validatedPrivate
            publicName = validatedPublic
        }
    }

    /// Trims surrounding white space and checks what is left.
    static func validated(_ name: String, field: String) throws -> String {
        let trimmed = String(name.drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
        guard !trimmed.isEmpty else {
            throw AccountError(code: .invalidDisplayName, message: "The \(field) is empty; type a name.")
        }
        guard trimmed.count <= maximumLength else {
            throw AccountError(
                code: .invalidDisplayName,
                message: "The \(field) has \(trimmed.count) characters; shorten it to at most \(maximumLength)."
            )
        }
        guard !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw AccountError(
                code: .invalidDisplayName,
                message: "The \(field) contains a control character (such as a line break or tab); remove it."
            )
        }
        return trimmed
    }
}
