import Foundation
import Testing

/// Runs a shell pipeline and returns its standard output, failing the test if it exits non-zero.
func runShell(_ script: String) throws -> Data {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", script]
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw TestFailure("`\(script)` exited with \(process.terminationStatus): \(errorText)")
    }
    return data
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}

/// A fresh temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        let path = NSTemporaryDirectory() + "applianceclient-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        self.path = path
    }

    func file(_ name: String) -> String {
        self.path + "/" + name
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: self.path)
    }
}

/// A self-signed P-256 certificate made with the openssl command-line tool, plus the pin openssl computes for it.
struct TestCertificate {
    let certificatePath: String
    let keyPath: String
    /// `sha256:` + hex, computed by openssl from the certificate's SubjectPublicKeyInfo.
    let expectedPin: String

    init(in directory: TemporaryDirectory, name: String = "server") throws {
        self.certificatePath = directory.file("\(name).crt")
        self.keyPath = directory.file("\(name).key")
        _ = try runShell(
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=test -days 1 "
                + "-keyout '\(self.keyPath)' -out '\(self.certificatePath)'"
        )
        let digest = try runShell(
            "openssl x509 -in '\(self.certificatePath)' -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum"
        )
        let hex = String(decoding: digest, as: UTF8.self).split(separator: " ").first.map(String.init) ?? ""
        self.expectedPin = "sha256:" + hex
    }
}

/// Resident-set figures from /proc/self/status, in KiB.
struct MemoryStatus {
    var residentKiB: Int
    var peakResidentKiB: Int

    static func current() throws -> MemoryStatus {
        let text = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        func value(_ key: String) -> Int {
            for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
                let fields = line.dropFirst(key.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" })
                let number = fields.first ?? ""
                return Int(number) ?? 0
            }
            return 0
        }
        return MemoryStatus(residentKiB: value("VmRSS"), peakResidentKiB: value("VmHWM"))
    }

    /// Resets VmHWM to the current RSS (Linux `clear_refs` value 5); returns false where that isn't allowed.
    static func resetPeak() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else {
            return false
        }
        defer { try? handle.close() }
        do {
            try handle.write(contentsOf: Data("5".utf8))
            return true
        } catch {
            return false
        }
    }
}

/// FNV-1a (64-bit), used as the upload checksum on both ends.
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var hash = self.value
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        self.value = hash
    }
}
