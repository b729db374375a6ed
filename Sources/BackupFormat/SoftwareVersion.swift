/// A dotted numeric software version such as "24.3.1". Missing trailing components count as zero, so
/// "24.3" == "24.3.0" and "24.10" > "24.9".
public struct SoftwareVersion: Comparable, Hashable, Codable, Sendable, CustomStringConvertible {
    public let components: [Int]

    /// Parses "24.3.1": one or more decimal components separated by dots. Throws `.invalidArgument` otherwise.
    public init(_ text: String) throws {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        var components: [Int] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 9, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                let value = Int(part)
            else {
                throw BackupFormatError(
                    code: .invalidArgument,
                    message: "\"\(text)\" is not a version number like 24.3.1"
                )
            }
            components.append(value)
        }
        self.components = components
    }

    public init(components: [Int]) {
        precondition(!components.isEmpty && components.allSatisfy { $0 >= 0 }, "invalid version components")
        self.components = components
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            try self.init(text)
        } catch {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: "invalid version \"\(text)\"")
            )
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public var description: String {
        components.map(String.init).joined(separator: ".")
    }

    public static func < (lhs: SoftwareVersion, rhs: SoftwareVersion) -> Bool {
        compare(lhs.components, rhs.components) < 0
    }

    public static func == (lhs: SoftwareVersion, rhs: SoftwareVersion) -> Bool {
        compare(lhs.components, rhs.components) == 0
    }

    /// Equal versions must hash alike, so trailing zeros are left out.
    public func hash(into hasher: inout Hasher) {
        var trimmed = components[...]
        while trimmed.count > 1, trimmed.last == 0 {
            trimmed.removeLast()
        }
        hasher.combine(Array(trimmed))
    }

    static func compare(_ lhs: [Int], _ rhs: [Int]) -> Int {
        for index in 0..<max(lhs.count, rhs.count) {
            let left = index < lhs.count ? lhs[index] : 0
            let right = index < rhs.count ? rhs[index] : 0
            if left != right {
                return left < right ? -1 : 1
            }
        }
        return 0
    }
}
