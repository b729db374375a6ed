/// A complete HTTP response from an appliance.
public struct HTTPResult: Sendable {
    /// The status code, e.g. 200.
    public var status: Int
    /// The response headers in the order received; names keep the server's spelling.
    public var headers: [(String, String)]
    /// The buffered body. Empty for a successful ``PinnedHTTPClient/download(method:path:headers:body:to:progress:)``,
    /// whose body went to the file.
    public var body: [UInt8]
    /// The pin of the key the appliance presented on this connection; record it after a first contact.
    public var observedPin: TLSPin

    /// Creates a result.
    public init(status: Int, headers: [(String, String)], body: [UInt8], observedPin: TLSPin) {
        self.status = status
        self.headers = headers
        self.body = body
        self.observedPin = observedPin
    }

    /// The first value of the header `name`, compared case-insensitively (ASCII), or nil.
    public func header(_ name: String) -> String? {
        self.headers.first { asciiCaseInsensitiveEquals($0.0, name) }?.1
    }

    /// Whether the status is 2xx.
    public var isSuccess: Bool { (200..<300).contains(self.status) }
}

/// Compares two strings ignoring ASCII case, as HTTP header names are compared.
func asciiCaseInsensitiveEquals(_ lhs: String, _ rhs: String) -> Bool {
    let left = lhs.utf8
    let right = rhs.utf8
    guard left.count == right.count else {
        return false
    }
    for (a, b) in zip(left, right) {
        let lowerA = (65...90).contains(a) ? a | 0x20 : a
        let lowerB = (65...90).contains(b) ? b | 0x20 : b
        if lowerA != lowerB {
            return false
        }
    }
    return true
}
