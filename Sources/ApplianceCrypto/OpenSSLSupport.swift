import COpenSSL

/// Drains the thread's OpenSSL error queue and returns it as text. Every failure path calls this, so a stale
/// error never gets blamed on a later, unrelated call.
func drainOpenSSLErrors() -> String {
    var reasons: [String] = []
    while true {
        let code = ERR_get_error()
        if code == 0 {
            break
        }
        var buffer = [CChar](repeating: 0, count: 256)
        let reason = buffer.withUnsafeMutableBufferPointer { pointer -> String in
            ERR_error_string_n(code, pointer.baseAddress, pointer.count)
            return String(cString: pointer.baseAddress!)
        }
        reasons.append(reason)
    }
    ERR_clear_error()
    return reasons.isEmpty ? "no OpenSSL error details" : reasons.joined(separator: "; ")
}

/// Builds an error for an OpenSSL call that failed, including (and clearing) the OpenSSL error queue.
func openSSLFailure(_ code: CryptoError.Code, _ what: String) -> CryptoError {
    CryptoError(code: code, message: "\(what) (\(drainOpenSSLErrors()))")
}

/// One byte that stands in for empty inputs: OpenSSL treats a NULL pointer as "not provided" in places where an
/// empty key or message is meant.
private let emptyInputByte: [UInt8] = [0]

/// Calls `body` with a base address that is never nil, even for an empty array.
func withNonNullBytes<Result>(
    _ bytes: [UInt8],
    _ body: (UnsafePointer<UInt8>, Int) throws -> Result
) rethrows -> Result {
    if bytes.isEmpty {
        return try emptyInputByte.withUnsafeBufferPointer { try body($0.baseAddress!, 0) }
    }
    return try bytes.withUnsafeBufferPointer { try body($0.baseAddress!, $0.count) }
}

/// Copies the contents of a memory BIO out as a String.
func memoryBIOString(_ bio: OpaquePointer) -> String {
    var data: UnsafeMutablePointer<CChar>?
    let length = shim_BIO_get_mem_data(bio, &data)
    guard let data, length > 0 else {
        return ""
    }
    let bytes = UnsafeRawBufferPointer(start: data, count: length)
    return String(decoding: bytes, as: UTF8.self)
}
