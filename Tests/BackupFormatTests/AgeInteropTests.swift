import BackupFormat
import Foundation
import Testing

/// Cross-checks against the reference `age` command-line tool (Debian package `age`, 1.1.x).
///
/// age reads passphrases from the terminal (/dev/tty), never from stdin. `script` (util-linux) runs it on a fresh
/// pseudo-terminal in its own session, so /dev/tty is that pty, and copies our stdin file into it: the typed lines
/// wait in the pty's input queue until age reads them. This needs no terminal and no stdin of our own, so it works
/// in CI; if the test process does have a terminal, age still never touches it.
enum AgeCLI {
    static func tools() throws -> (age: String, script: String) {
        let age = try #require(
            ExternalTool.find("age"),
            "the age command-line tool is not installed; install it with `apt-get install age`"
        )
        let script = try #require(
            ExternalTool.find("script"),
            "`script` is needed to give age a terminal; install it with `apt-get install bsdutils`"
        )
        return (age, script)
    }

    /// Runs age with `arguments`, typing `lines` at its passphrase prompts.
    static func run(_ arguments: [String], typing lines: [String]) throws -> ToolResult {
        let (age, script) = try tools()
        let command = ([age] + arguments).map(ExternalTool.quote).joined(separator: " ")
        let typed = Array(lines.map { $0 + "\n" }.joined().utf8)
        return try ExternalTool.run(script, ["-q", "-e", "-c", command, "/dev/null"], input: typed, timeout: 120)
    }
}

@Suite("age interoperability")
struct AgeInteropTests {
    static let passphrase = "interop pass phrase 42"

    /// Files we write with the default work factor (18) decrypt with `age -d`.
    @Test(arguments: [0, 65_536, 200_003])
    func ageDecryptsOurFiles(size: Int) throws {
        let directory = try ExternalTool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let plaintext = randomBytes(size, seed: UInt64(size) + 100)
        let encryptor = try AgeEncryptor(passphrase: Self.passphrase)
        var file = encryptor.header()
        for piece in oddPieces(plaintext, seed: 9) {
            file += encryptor.encrypt(Array(piece))
        }
        file += encryptor.finish()
        let input = directory.appendingPathComponent("backup.age")
        let output = directory.appendingPathComponent("backup.tar")
        try Data(file).write(to: input)

        let result = try AgeCLI.run(["-d", "-o", output.path, input.path], typing: [Self.passphrase])
        try #require(result.status == 0, "age -d failed: \(result.stdoutText) \(result.stderr)")
        // age opens its output lazily, so an empty plaintext leaves no output file at all.
        let decrypted = FileManager.default.fileExists(atPath: output.path) ? try Data(contentsOf: output) : Data()
        #expect([UInt8](decrypted) == plaintext)
    }

    /// age refuses our file with the wrong passphrase, so it really checks what we wrote.
    @Test func ageRejectsWrongPassphraseForOurFile() throws {
        let directory = try ExternalTool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = try ageEncrypt(randomBytes(1000, seed: 1), passphrase: Self.passphrase, workFactor: 18)
        let input = directory.appendingPathComponent("backup.age")
        try Data(file).write(to: input)
        let output = directory.appendingPathComponent("out")
        let result = try AgeCLI.run(["-d", "-o", output.path, input.path], typing: ["not the passphrase"])
        #expect(result.status != 0)
        #expect(result.stdoutText.contains("incorrect passphrase"), "age said: \(result.stdoutText)")
    }

    /// Files written by `age -e -p` decrypt with AgeDecryptor.
    @Test(arguments: [0, 65_536, 200_003])
    func weDecryptAgeFiles(size: Int) throws {
        let directory = try ExternalTool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let plaintext = randomBytes(size, seed: UInt64(size) + 200)
        let input = directory.appendingPathComponent("plain.tar")
        let output = directory.appendingPathComponent("plain.tar.age")
        try Data(plaintext).write(to: input)

        // age -p asks for the passphrase and then for confirmation.
        let result = try AgeCLI.run(
            ["-e", "-p", "-o", output.path, input.path],
            typing: [Self.passphrase, Self.passphrase]
        )
        try #require(result.status == 0, "age -e -p failed: \(result.stdoutText) \(result.stderr)")
        let file = [UInt8](try Data(contentsOf: output))
        #expect(file.starts(with: Array("age-encryption.org/v1\n-> scrypt ".utf8)))
        #expect(try ageDecrypt(file, passphrase: Self.passphrase) == plaintext)
        if size == 200_003 {
            let code = backupErrorCode { _ = try ageDecrypt(file, passphrase: "wrong") }
            #expect(code == .wrongPassword)
        }
    }
}
