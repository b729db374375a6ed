import Foundation
import HTTPTypes

/// Memory a request needs before it starts: a password-protected backup's scrypt takes 128 · r · 2^workFactor
/// bytes at once (256 MiB at the default 18), as much as a small virtual appliance has in all. Without this check
/// the allocation fails or the kernel kills applianced after the response headers are out, and the client sees
/// only a connection that ended early.
extension Appliance {
    /// What scrypt takes for the age passphrase stanza at `workFactor` (r = 8, p = 1), in bytes.
    static func scryptMemory(workFactor: Int) -> Int64 {
        128 * 8 * (Int64(1) << Int64(workFactor))
    }

    /// Room kept beside the request's own need: the rest of the backup, the server's buffers.
    static let memoryMargin: Int64 = 16 << 20

    /// `MemAvailable` plus `SwapFree` of a `/proc/meminfo` text, in bytes; nil when it has no `MemAvailable`.
    static func availableMemory(meminfo: String) -> Int64? {
        var values: [Substring: Int64] = [:]
        for line in meminfo.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == ":" })
            guard words.count >= 2, let kibibytes = Int64(words[1]) else { continue }
            values[words[0]] = kibibytes * 1024
        }
        guard let available = values["MemAvailable"] else { return nil }
        return available + (values["SwapFree"] ?? 0)
    }

    /// Refuses `operation` with 503 `insufficient_memory` when the machine has less than `bytes` available.
    /// Where `/proc/meminfo` cannot be read, the operation goes ahead.
    func requireMemory(_ bytes: Int64, for operation: String) throws {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
            let available = Self.availableMemory(meminfo: text), available < bytes + Self.memoryMargin
        else { return }
        let mebibytes = { (value: Int64) in "\(value >> 20) MiB" }
        throw ApplianceServerError(
            .serviceUnavailable,
            "insufficient_memory",
            "\(operation) needs \(mebibytes(bytes + Self.memoryMargin)) of memory and this appliance has "
                + "\(mebibytes(available)) available; give it more memory (a virtual appliance: memory_mib of "
                + "512 or more in the inventory) and try again"
        )
    }
}
