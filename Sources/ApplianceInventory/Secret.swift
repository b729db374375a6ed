/// A secret value and the name it was found under. Printing, interpolating, dumping or mirroring it shows the
/// name only; the value comes out through `reveal()` and nowhere else.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// Where a secret was found.
    public enum Origin: Sendable, Hashable, CustomStringConvertible {
        case environment
        case secretsFile(path: String)

        public var description: String {
            switch self {
            case .environment: "the environment"
            case .secretsFile(let path): "the secrets file \(path)"
            }
        }
    }

    /// The secret's NAME, such as `OLD_BOX_PASSWORD`.
    public let name: String
    public let origin: Origin
    private let value: String

    public init(name: String, value: String, origin: Origin) {
        self.name = name
        self.value = value
        self.origin = origin
    }

    /// The secret value. Call it where the value is used, and never log, print or store what it returns.
    public func reveal() -> String {
        value
    }

    public var description: String {
        "\(name)=<redacted>"
    }

    public var debugDescription: String {
        "Secret(\(name)=<redacted>, from \(origin))"
    }

    public var customMirror: Mirror {
        Mirror(self, children: ["name": name, "origin": origin, "value": "<redacted>"], displayStyle: .struct)
    }
}
