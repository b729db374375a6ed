import ApplianceInventory
import Foundation
import Testing

/// Secrets come from the environment or a 0600 file, and never show up in text.
@Suite struct SecretSourceTests {
    static let secretsText = """
        # lab secrets
        OLD_BOX_PASSWORD=Old-Box#Pass 1

        NEW_VM_PASSWORD = "  spaced  "
        BACKUP_PASSWORD='quoted'
        """

    @Test func theEnvironmentComesFirst() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.file("secrets", Self.secretsText, mode: 0o600)
        let source = try SecretSource(environment: ["OLD_BOX_PASSWORD": "from-env"], secretsFile: file)
        let secret = try source.resolve("OLD_BOX_PASSWORD")
        #expect(secret.reveal() == "from-env")
        #expect(secret.origin == .environment)
    }

    @Test func theFileIsReadWithCommentsBlankLinesAndQuotes() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.file("secrets", Self.secretsText, mode: 0o600)
        let source = try SecretSource(environment: ["OLD_BOX_PASSWORD": ""], secretsFile: file)
        #expect(try source.resolve("OLD_BOX_PASSWORD").reveal() == "Old-Box#Pass 1")
        #expect(try source.resolve("NEW_VM_PASSWORD").reveal() == "  spaced  ")
        #expect(try source.resolve("BACKUP_PASSWORD").reveal() == "quoted")
        #expect(try source.resolve("BACKUP_PASSWORD").origin == .secretsFile(path: file.path))
    }

    @Test func windowsLineEndingsAreFine() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.file("secrets", "# c\r\nA_B=one\r\n\r\nC=two\r\n", mode: 0o600)
        let source = try SecretSource(environment: [:], secretsFile: file)
        #expect(try source.resolve("A_B").reveal() == "one")
        #expect(try source.resolve("C").reveal() == "two")
    }

    @Test func theAdminPasswordComesFromTheEntrysSecretName() throws {
        let entry = ApplianceEntry(name: "new-vm", kind: .physical(address: "10.0.0.1:443"))
        let source = try SecretSource(environment: ["APPLIANCE_PASSWORD_NEW_VM": "pw"])
        #expect(try source.adminPassword(for: entry).reveal() == "pw")
    }

    @Test(arguments: [0o644, 0o640, 0o604, 0o660, 0o666])
    func aFileOthersCanReachIsRefused(mode: Int) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.file("secrets", Self.secretsText, mode: mode)
        let error = try #require(throws: InventoryError.self) { try SecretSource(environment: [:], secretsFile: file) }
        #expect(error.code == .insecureSecretsFile)
        #expect(error.message.hasSuffix("; chmod 600 \(file.path)"))
        #expect(error.message.contains("(mode 0\(String(mode, radix: 8)))"))
    }

    @Test(arguments: [0o600, 0o400, 0o700])
    func privateFilesAreAccepted(mode: Int) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.file("secrets", Self.secretsText, mode: mode)
        #expect(try SecretSource(environment: [:], secretsFile: file).resolve("BACKUP_PASSWORD").reveal() == "quoted")
    }

    @Test func aMissingSecretSaysWhereToPutIt() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.file("secrets", Self.secretsText, mode: 0o600)
        let withFile = try SecretSource(environment: [:], secretsFile: file)
        let error = try #require(throws: InventoryError.self) { try withFile.resolve("KEY_PASSPHRASE") }
        #expect(error.code == .missingSecret)
        #expect(
            error.message.contains(
                "set the environment variable KEY_PASSPHRASE or add KEY_PASSPHRASE=… to the secrets file \(file.path)"
            )
        )

        let withoutFile = try SecretSource(environment: [:])
        let noFile = try #require(throws: InventoryError.self) { try withoutFile.resolve("KEY_PASSPHRASE") }
        #expect(noFile.message.contains("set the environment variable KEY_PASSPHRASE or add KEY_PASSPHRASE=…"))
        #expect(noFile.message.contains("--secrets FILE"))
    }

    @Test func badLinesAreNamedButNotShown() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        for (text, says) in [
            ("A=1\nhunter2\n", "expected NAME=value"),
            ("A=1\nold_box=hunter2\n", "NAME in capital letters"),
            ("A=1\n\nA=hunter2\n", "A is set twice (lines 1 and 3); keep one"),
        ] {
            let file = try directory.file("secrets", text, mode: 0o600)
            let error = try #require(throws: InventoryError.self) {
                try SecretSource(environment: [:], secretsFile: file)
            }
            #expect(error.code == .invalidSecretsFile)
            #expect(error.message.contains(says))
            #expect(error.location?.line == (says.contains("twice") ? 3 : 2))
            #expect(!error.description.contains("hunter2"))
        }
    }

    @Test func secretsAreRedactedEverywhere() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.file("secrets", "FILE_SECRET=correct-horse\n", mode: 0o600)
        let source = try SecretSource(environment: ["ENV_SECRET": "battery-staple"], secretsFile: file)
        let fromEnvironment = try source.resolve("ENV_SECRET")
        let fromFile = try source.resolve("FILE_SECRET")

        struct Holder { var secret: Secret }
        var dumped = ""
        dump(Holder(secret: fromFile), to: &dumped)
        dump(source, to: &dumped)
        let renderings = [
            "\(fromEnvironment)", String(describing: fromFile), String(reflecting: fromFile),
            "\(Holder(secret: fromEnvironment))", String(reflecting: Holder(secret: fromFile)),
            "\(source)", String(reflecting: source), dumped,
        ]
        for text in renderings {
            #expect(!text.contains("battery-staple") && !text.contains("correct-horse"), "\(text)")
        }
        #expect("\(fromEnvironment)" == "ENV_SECRET=<redacted>")
        #expect(fromEnvironment.reveal() == "battery-staple")
    }
}
