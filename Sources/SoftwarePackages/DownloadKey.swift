public import ApplianceCrypto
public import Foundation

/// A download key: what an appliance on a restricted network has installed, signed with the appliance's own
/// Ed25519 key, for an operator to carry to a machine with access to the package repository. That machine plans
/// updates for it (`UpdatePlanner.plan(for:index:ledger:)`) and hands out the package files.
///
/// Text form: `"ADK1." + base64url(JSON) + "." + base64url(signature)` (base64url without padding), where the
/// signature is Ed25519 over the ASCII bytes of `"ADK1." + base64url(JSON)` by the key in `appliancePublicKey`.
/// The JSON holds the fields below with sorted keys; `issuedAt` is ISO 8601 UTC to the whole second.
public struct DownloadKey: Codable, Sendable, Equatable {
    /// The text form's version prefix.
    public static let prefix = "ADK1"
    /// The longest text `parse` accepts.
    public static let maximumLength = 64 * 1024

    public var applianceId: String
    public var hostname: String
    /// Installed packages: name → version.
    public var installed: [String: String]
    public var issuedAt: Date
    /// Standard base64 of the appliance's 32-byte Ed25519 public key (`Ed25519PublicKey.base64`).
    public var appliancePublicKey: String
    /// Random base64url text, so two keys issued in the same second differ.
    public var nonce: String
    /// Identifies this key in a `FetchLedger`: the first 16 lowercase hex digits of SHA-256 of the signed text
    /// (`"ADK1." + base64url(JSON)`). Set by `parse`; not part of the JSON, so empty for a key decoded directly.
    public private(set) var keyId: String = ""

    private enum CodingKeys: String, CodingKey {
        case applianceId, hostname, installed, issuedAt, appliancePublicKey, nonce
    }

    private init(
        applianceId: String,
        hostname: String,
        installed: [String: String],
        issuedAt: Date,
        appliancePublicKey: String,
        nonce: String
    ) {
        self.applianceId = applianceId
        self.hostname = hostname
        self.installed = installed
        self.issuedAt = issuedAt
        self.appliancePublicKey = appliancePublicKey
        self.nonce = nonce
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        applianceId = try container.decode(String.self, forKey: .applianceId)
        hostname = try container.decode(String.self, forKey: .hostname)
        installed = try container.decode([String: String].self, forKey: .installed)
        let issuedAtText = try container.decode(String.self, forKey: .issuedAt)
        guard let date = Timestamp.parse(issuedAtText) else {
            throw DecodingError.dataCorruptedError(
                forKey: .issuedAt,
                in: container,
                debugDescription: "\"\(issuedAtText)\" is not an ISO 8601 date-time"
            )
        }
        issuedAt = date
        appliancePublicKey = try container.decode(String.self, forKey: .appliancePublicKey)
        nonce = try container.decode(String.self, forKey: .nonce)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(applianceId, forKey: .applianceId)
        try container.encode(hostname, forKey: .hostname)
        try container.encode(installed, forKey: .installed)
        try container.encode(Timestamp.format(issuedAt), forKey: .issuedAt)
        try container.encode(appliancePublicKey, forKey: .appliancePublicKey)
        try container.encode(nonce, forKey: .nonce)
    }

    /// Issues a download key for this appliance, signed with its own key. `issuedAt` is rounded down to the second.
    public static func issue(
        applianceId: String,
        hostname: String,
        installed: [String: String],
        issuedAt: Date = Date(),
        signingKey: Ed25519PrivateKey
    ) -> String {
        let key = DownloadKey(
            applianceId: applianceId,
            hostname: hostname,
            installed: installed,
            issuedAt: Timestamp.truncated(issuedAt),
            appliancePublicKey: signingKey.publicKey.base64,
            nonce: Base64URL.encode(SecureRandom.bytes(16))
        )
        let json: [UInt8]
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            json = Array(try encoder.encode(key))
        } catch {
            // Strings, a string dictionary and a date string always encode.
            fatalError("encoding a download key failed: \(error)")
        }
        let signed = prefix + "." + Base64URL.encode(json)
        return signed + "." + Base64URL.encode(signingKey.sign(Array(signed.utf8)))
    }

    /// Reads and checks a download key's text (surrounding whitespace is ignored).
    ///
    /// Throws `.invalidDownloadKey` when the text is malformed, the signature does not match the key it names, or
    /// (when `applianceKey` is given) it was signed by another key; and `.clockSkew` when `issuedAt` is more than
    /// `maximumSkew` seconds after `now` or more than `maximumAge` seconds before it.
    public static func parse(
        _ text: String,
        now: Date = Date(),
        maximumSkew: TimeInterval = 300,
        maximumAge: TimeInterval = 7 * 86_400,
        applianceKey: Ed25519PublicKey? = nil
    ) throws -> DownloadKey {
        func invalid(_ reason: String) -> SoftwarePackageError {
            SoftwarePackageError(
                code: .invalidDownloadKey,
                message: "this is not a valid download key: \(reason); copy the whole key (it starts with "
                    + "\(prefix).) or issue a new one on the appliance"
            )
        }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.utf8.count <= maximumLength else {
            throw invalid("it is \(trimmed.utf8.count) characters long, more than a key can be")
        }
        let parts = trimmed.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == prefix else {
            throw invalid("it does not have the form \(prefix).<data>.<signature>")
        }
        guard let json = Base64URL.decode(parts[1]), let signature = Base64URL.decode(parts[2]) else {
            throw invalid("it contains characters that do not belong in a key")
        }
        var key: DownloadKey
        do {
            key = try JSONDecoder().decode(DownloadKey.self, from: Data(json))
        } catch {
            throw invalid("its contents cannot be read")
        }
        guard !key.applianceId.isEmpty, let publicKey = try? Ed25519PublicKey(base64: key.appliancePublicKey) else {
            throw invalid("it does not name an appliance and its public key")
        }
        let signed = Array(trimmed.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        guard publicKey.isValidSignature(signature, for: signed) else {
            throw invalid("its signature does not match (it was changed or damaged after it was issued)")
        }
        if let applianceKey, applianceKey != publicKey {
            throw SoftwarePackageError(
                code: .invalidDownloadKey,
                message: "the download key was signed by key \(publicKey.keyId), not by the key \(applianceKey.keyId) "
                    + "registered for appliance \(key.applianceId); issue the key on that appliance"
            )
        }
        let offset = key.issuedAt.timeIntervalSince(now)
        if offset > maximumSkew || -offset > maximumAge {
            let limit =
                offset > 0
                ? "more than the \(describeDuration(maximumSkew)) a key may be ahead"
                : "more than the \(describeDuration(maximumAge)) a key stays valid"
            throw SoftwarePackageError(
                code: .clockSkew,
                message: "the download key's time (\(Timestamp.format(key.issuedAt))) is off from this machine's "
                    + "time (\(Timestamp.format(now))) by \(describeDuration(offset)), \(limit); check the appliance "
                    + "time / NTP and issue a new key"
            )
        }
        key.keyId = String(SHA256Hasher.hash(signed).hexString.prefix(16))
        return key
    }
}

/// Records, per download key, which package files were already handed out, so the next plan for the same key
/// leaves them out.
///
/// Stored as JSON (`{"formatVersion": 1, "fetched": {keyId: [file, ...]}}`), rewritten atomically; concurrent
/// `record` calls are serialised with the lock file `<file>.lock`.
public struct FetchLedger: Sendable {
    /// The ledger format this code writes; readers refuse newer versions.
    public static let currentFormatVersion = 1

    public let file: URL

    /// A ledger stored at `file`; the file is created by the first `record`.
    public init(file: URL) {
        self.file = file
    }

    private struct Document: Codable {
        var formatVersion: Int
        var fetched: [String: [String]]
    }

    /// The package files already fetched with the download key `keyId` (empty for a key never seen).
    public func fetched(keyId: String) throws -> Set<String> {
        Set(try load().fetched[keyId] ?? [])
    }

    /// Adds `files` to those fetched with the download key `keyId`.
    public func record(keyId: String, files: some Sequence<String>) throws {
        guard isLowercaseHex(keyId, length: 16) else {
            throw SoftwarePackageError(
                code: .invalidArgument,
                message: "\"\(keyId)\" is not a download key id (16 hex digits from DownloadKey.keyId)"
            )
        }
        try withExclusiveLock(URL(fileURLWithPath: file.path + ".lock")) {
            var document = try load()
            let merged = Set(document.fetched[keyId] ?? []).union(files)
            document.fetched[keyId] = merged.sorted()
            let bytes: [UInt8]
            do {
                bytes = Array(try canonicalJSONEncoder().encode(document))
            } catch {
                throw SoftwarePackageError(code: .storage, message: "could not encode the fetch ledger (\(error))")
            }
            try AtomicFileWriter.write(bytes, to: file)
        }
    }

    private func load() throws -> Document {
        guard let bytes = try readSmallFile(file, limit: 256 << 20, what: "fetch ledger") else {
            return Document(formatVersion: Self.currentFormatVersion, fetched: [:])
        }
        let document: Document
        do {
            document = try JSONDecoder().decode(Document.self, from: Data(bytes))
        } catch {
            throw SoftwarePackageError(
                code: .storage,
                message: "the fetch ledger \(file.path) cannot be read (\(error)); restore it from a backup or move "
                    + "it aside (then files already fetched may be offered again)"
            )
        }
        guard document.formatVersion <= Self.currentFormatVersion else {
            throw SoftwarePackageError(
                code: .unsupportedFormat,
                message: "the fetch ledger \(file.path) has format version \(document.formatVersion), newer than "
                    + "this software reads; update the software"
            )
        }
        return document
    }
}
