import ApplianceCrypto
import ArgumentParser
import Foundation
import SoftwarePackages

/// `appliancectl vendor keygen|build|repo-add`: the vendor's tooling to sign packages and lay out a repository.
struct Vendor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Vendor tooling: signing keys, signed packages, repositories.",
        subcommands: [KeyGen.self, Build.self, RepoAdd.self]
    )

    struct KeyGen: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "keygen",
            abstract: "Create a vendor signing key: PREFIX.key (private, 0600) and PREFIX.pub."
        )

        @Option(help: "Path prefix of the two files.")
        var out: String

        func run() throws {
            let key = Ed25519PrivateKey()
            let privateFile = out + ".key"
            guard !FileManager.default.fileExists(atPath: privateFile) else {
                throw CommandError(.refused, "\(privateFile) exists; refusing to overwrite a signing key")
            }
            try Data(key.pem.utf8).write(to: URL(fileURLWithPath: privateFile))
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: privateFile)
            try Data(key.publicKey.pem.utf8).write(to: URL(fileURLWithPath: out + ".pub"))
            print("Vendor key \(key.publicKey.keyId): \(privateFile), \(out).pub")
        }
    }

    struct Build: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Build and sign a package.")

        @Option(help: "Vendor private key (PEM).")
        var key: String

        @Option(help: "Package name (base and site packages are named base and site).")
        var name: String

        @Option(help: "base, site or addon.")
        var kind: String

        @Option(help: "Version, e.g. 24.2.0.")
        var version: String

        @Option(help: "Requirement NAME>=VERSION; repeatable.")
        var requires: [String] = []

        @Option(help: "File with the EULA text.")
        var eula: String?

        @Option(help: "Payload file.")
        var payload: String

        @Option(
            help: ArgumentHelp(
                "Post-install self-test: a shell command the appliance runs after installing; non-zero fails it.",
                discussion: "It sees PACKAGE_NAME, PACKAGE_VERSION and PACKAGE_PAYLOAD (the installed payload file)."
            )
        )
        var selfTest: String?

        @Option(help: "Seconds the self-test may run before it counts as failed (1 to 3600).")
        var selfTestTimeout = 60

        @Option(help: "Package file to write.")
        var out: String

        func validate() throws {
            guard PackageKind(rawValue: kind) != nil else {
                throw ValidationError("--kind must be base, site or addon")
            }
            for requirement in requires where !requirement.contains(">=") {
                throw ValidationError("--requires must be NAME>=VERSION, not \(requirement)")
            }
            guard (1...3600).contains(selfTestTimeout) else {
                throw ValidationError("--self-test-timeout must be 1 to 3600 seconds")
            }
        }

        func run() throws {
            let signingKey = try Ed25519PrivateKey(pem: try String(contentsOfFile: key, encoding: .utf8))
            let requirements = requires.map { text -> PackageManifest.Requirement in
                let parts = text.components(separatedBy: ">=")
                return .init(name: parts[0], minimumVersion: parts[1])
            }
            let manifest = try PackageBuilder.build(
                name: name,
                kind: PackageKind(rawValue: kind) ?? .addon,
                version: version,
                requires: requirements,
                eula: try eula.map { try String(contentsOfFile: $0, encoding: .utf8) } ?? "",
                selfTest: selfTest.map { .init(command: $0, timeoutSeconds: selfTestTimeout) },
                payload: URL(fileURLWithPath: payload),
                signingKey: signingKey,
                to: URL(fileURLWithPath: out)
            )
            print(
                "Built \(manifest.name) \(manifest.version) (\(manifest.kind.rawValue)) signed by \(manifest.signingKeyId)"
            )
        }
    }

    struct RepoAdd: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "repo-add",
            abstract: "Add a package to a repository directory (index.json is rewritten atomically)."
        )

        @Option(help: "Repository directory.")
        var repo: String

        @Argument(help: "Package files.")
        var packages: [String]

        func run() throws {
            for package in packages {
                let entry = try RepositoryBuilder.add(
                    package: URL(fileURLWithPath: package),
                    to: URL(fileURLWithPath: repo)
                )
                print("Added \(entry.manifest.name) \(entry.manifest.version) as \(entry.file)")
            }
        }
    }
}
