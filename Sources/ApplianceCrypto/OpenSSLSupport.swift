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

/// The process's use of OpenSSL 3.
public enum OpenSSLProcess {
    /// Keeps OpenSSL's global state until the process is gone. By default OpenSSL frees it in an `atexit` handler
    /// while other threads may still use it (a TLS pin check on an event loop, a probe in flight), and the process
    /// then crashes on its way out (SIGSEGV in `CRYPTO_THREAD_read_lock`) instead of exiting with its status: CI saw
    /// `appliancectl resume` exit with signal 11 after a finished run. Call it first thing in `main`, before any
    /// other OpenSSL call (the option only counts at OpenSSL's first initialisation).
    public static func keepStateUntilExit() {
        _ = OPENSSL_init_crypto(UInt64(OPENSSL_INIT_NO_ATEXIT), nil)
    }
}
