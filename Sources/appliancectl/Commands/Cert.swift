import ApplianceAPI
import ApplianceClient
import ApplianceCrypto
import ArgumentParser
import Foundation

/// `appliancectl cert list|import|export|assign|delete` (A4).
struct Cert: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage an appliance's certificates.",
        subcommands: [List.self, Import.self, Export.self, Assign.self, Delete.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List certificates with their warnings.")

        @OptionGroup var box: BoxOptions

        func run() async throws {
            let entries: [CertificateEntry] = try await box.session().call(.listCertificates)
            if box.json { return try printJSON(entries) }
            for entry in entries {
                let details = entry.details
                print(
                    "#\(entry.id) \(entry.name)\(entry.isFactory ? " (factory)" : "") — \(details.commonName), "
                        + "\(details.keyType) \(details.keyBits), valid until \(APICoding.formatDate(details.notAfter))"
                )
                print(
                    "    serves: \(entry.assignedTo.isEmpty ? "no address" : entry.assignedTo.joined(separator: ", "))"
                )
                for warning in entry.warnings {
                    print("    warning \(warning.code): \(warning.message)")
                }
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import a PEM bundle (certificate, chain, key) or a PKCS#12 file.",
            discussion: "The key's or file's passphrase is read from --passphrase-env (default CERT_PASSPHRASE)."
        )

        @OptionGroup var box: BoxOptions

        @Option(help: "Name shown in the list.")
        var name: String

        @Option(help: "PEM bundle file.")
        var pem: String?

        @Option(help: "PKCS#12 file.")
        var pkcs12: String?

        @Option(help: "Environment variable holding the passphrase.")
        var passphraseEnv: String = "CERT_PASSPHRASE"

        func validate() throws {
            guard (pem == nil) != (pkcs12 == nil) else {
                throw ValidationError("give exactly one of --pem FILE or --pkcs12 FILE")
            }
            for file in [pem, pkcs12].compactMap({ $0 }) where !FileManager.default.isReadableFile(atPath: file) {
                throw ValidationError("cannot read \(file)")
            }
        }

        func run() async throws {
            let passphrase = try Secrets.read(environment: passphraseEnv, file: nil)
            var request = CertificateImportRequest(name: name, passphrase: passphrase)
            if let pem {
                // Not String(contentsOfFile:): a DER file is not UTF-8 and would fail with a Cocoa error code.
                request.pem = try CertificateImport.pemText(
                    fileContents: Array(try Data(contentsOf: URL(fileURLWithPath: pem))),
                    fileName: pem
                )
            } else if let pkcs12 {
                request.pkcs12Base64 = try Data(contentsOf: URL(fileURLWithPath: pkcs12)).base64EncodedString()
            }
            let entry: CertificateEntry = try await box.session().call(.importCertificate, body: request)
            if box.json { return try printJSON(entry) }
            print("Imported certificate #\(entry.id) \(entry.name) (\(entry.details.commonName))")
            for warning in entry.warnings {
                print("    warning \(warning.code): \(warning.message)")
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export a certificate, optionally with chain and (encrypted) key.",
            discussion: "A private key is only exported encrypted with the passphrase from --passphrase-env."
        )

        @OptionGroup var box: BoxOptions

        @Argument(help: "Certificate id (see `cert list`).")
        var id: Int64

        @Option(help: "File to write.")
        var out: String

        @Option(help: "pem or pkcs12.")
        var format: String = "pem"

        @Flag(help: "Include the chain.")
        var chain = false

        @Flag(help: "Include the private key (encrypted with the passphrase).")
        var key = false

        @Option(help: "Environment variable holding the passphrase.")
        var passphraseEnv: String = "CERT_PASSPHRASE"

        func validate() throws {
            guard CertificateExportFormat(rawValue: format) != nil else {
                throw ValidationError("--format must be pem or pkcs12")
            }
        }

        func run() async throws {
            let passphrase = try Secrets.read(environment: passphraseEnv, file: nil)
            let request = CertificateExportRequest(
                format: CertificateExportFormat(rawValue: format) ?? .pem,
                includeChain: chain,
                includeKey: key,
                passphrase: passphrase
            )
            let result = try await box.session().send(.exportCertificate, parameters: ["id": "\(id)"], body: request)
            let url = URL(fileURLWithPath: out)
            try Data(result.body).write(to: url, options: .atomic)
            if key { try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: out) }
            print("Exported certificate #\(id) to \(out) (\(result.body.count) bytes)")
        }
    }

    struct Assign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve a certificate on one of the appliance's addresses (from the next TLS handshake)."
        )

        @OptionGroup var box: BoxOptions

        @Argument(help: "Certificate id, or 'factory'.")
        var id: String

        @Option(help: "The IP address (as configured on the appliance) that serves it.")
        var on: String

        func validate() throws {
            guard id == "factory" || Int64(id) != nil else {
                throw ValidationError("give a certificate id from `cert list`, or 'factory'")
            }
        }

        func run() async throws {
            let session = try await box.session()
            let network: NetworkResponse = try await session.call(.network)
            guard let address = network.addresses.first(where: { $0.address == on }) else {
                throw CommandError(
                    "\(on) is not configured on \(box.address); configured: "
                        + network.addresses.map(\.address).joined(separator: ", ")
                )
            }
            let entry: AddressEntry = try await session.call(
                .assignCertificate,
                parameters: ["id": "\(address.id)"],
                body: CertificateAssignment(certificateId: Int64(id))
            )
            print("\(entry.address) now serves certificate \(entry.certificateId.map { "#\($0)" } ?? "factory")")
            if entry.address == box.parsedAddress?.host {
                Terminal.note(
                    "This is the address appliancectl talks to: its key changed, so run "
                        + "`appliancectl pin --reset \(box.address)` once you have checked the new certificate."
                )
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a certificate that no address serves.")

        @OptionGroup var box: BoxOptions

        @Argument(help: "Certificate id.")
        var id: Int64

        func run() async throws {
            try await box.session().perform(.deleteCertificate, parameters: ["id": "\(id)"])
            print("Deleted certificate #\(id)")
        }
    }
}
