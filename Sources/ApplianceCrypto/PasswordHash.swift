import Foundation

/// Salted scrypt password hashes in a self-describing text form:
/// `scrypt$<logN>$<r>$<p>$<base64 salt>$<base64 hash>` (standard base64 with padding).
///
/// The parameters travel with the hash, so the work factor can be raised later without invalidating stored
/// hashes.
public enum PasswordHash {
    /// Work factor for new hashes: N = 2^14, r = 8 (16 MiB, tens of milliseconds per check).
    public static let defaultLogN = 14
    static let saltLength = 16
    static let hashLength = 32

    /// Hashes `password` (its UTF-8 bytes, not normalised) with a fresh random salt.
    public static func make(_ password: String) -> String {
        let salt = SecureRandom.bytes(saltLength)
        let hash: [UInt8]
        do {
            hash = try Scrypt.derive(
                password: Array(password.utf8),
                salt: salt,
                logN: defaultLogN,
                r: 8,
                p: 1,
                length: hashLength
            )
        } catch {
            // The parameters are fixed and valid, so only an allocation failure inside OpenSSL gets here.
            fatalError("scrypt with the built-in password hash parameters failed: \(error)")
        }
        return "scrypt$\(defaultLogN)$8$1$\(Data(salt).base64EncodedString())$\(Data(hash).base64EncodedString())"
    }

    /// True when `password` matches `encoded`. Malformed or out-of-range encodings never match; their parameters
    /// are bounded so a planted hash cannot make verification allocate gigabytes.
    public static func verify(_ password: String, against encoded: String) -> Bool {
        guard let parameters = parse(encoded) else {
            return false
        }
        let actual: [UInt8]
        do {
            actual = try Scrypt.derive(
                password: Array(password.utf8),
                salt: parameters.salt,
                logN: parameters.logN,
                r: parameters.r,
                p: parameters.p,
                length: parameters.hash.count
            )
        } catch {
            return false
        }
        return ConstantTime.equals(actual, parameters.hash)
    }

    private struct Parameters {
        var logN: Int
        var r: Int
        var p: Int
        var salt: [UInt8]
        var hash: [UInt8]
    }

    private static func parse(_ encoded: String) -> Parameters? {
        let fields = encoded.split(separator: "$", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 6, fields[0] == "scrypt",
            let logN = Int(fields[1]), (1...20).contains(logN),
            let r = Int(fields[2]), (1...32).contains(r),
            let p = Int(fields[3]), (1...16).contains(p),
            let salt = Data(base64Encoded: fields[4]), !salt.isEmpty,
            let hash = Data(base64Encoded: fields[5]), (16...64).contains(hash.count)
        else {
            return nil
        }
        return Parameters(logN: logN, r: r, p: p, salt: [UInt8](salt), hash: [UInt8](hash))
    }
}
