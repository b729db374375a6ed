import ApplianceClient
import ApplianceCrypto
import ApplianceImage
import ApplianceInventory
import ApplianceProvisioning
import ApplianceTemplates
import ArgumentParser
import Foundation

/// Options of the commands that work from the inventory and a hypervisor (provision, destroy, list).
struct InventoryOptions: ParsableArguments {
    @Option(help: "The inventory file (YAML; default: $APPLIANCECTL_INVENTORY or ./inventory.yml).")
    var inventory: String?

    @Option(help: "Secrets file (mode 0600, NAME=value lines); the environment wins over it.")
    var secrets: String?

    @Option(help: "A libvirt URI to use instead of the inventory's, e.g. qemu+ssh://host/system.")
    var connect: String?

    @Option(help: "Directory of the libvirt XML templates (default: the repository's Templates/).")
    var templates: String?

    @Option(help: "Where pins, locks and built images are kept (default: $APPLIANCECTL_HOME or ~/.appliancectl).")
    var stateDir: String?

    @Flag(help: "Print machine-readable JSON instead of text.")
    var json = false

    var inventoryFile: URL {
        URL(
            fileURLWithPath: inventory ?? ProcessInfo.processInfo.environment["APPLIANCECTL_INVENTORY"]
                ?? "inventory.yml"
        )
    }

    func loadInventory() throws -> Inventory {
        try Inventory.load(from: inventoryFile)
    }

    var stateDirectory: StateDirectory {
        StateDirectory(stateDir)
    }

    var pinStore: PinStore { PinStore(directory: stateDirectory.url) }

    func secretSource() throws -> SecretSource {
        try SecretSource(secretsFile: secrets.map { URL(fileURLWithPath: $0) })
    }

    func loadTemplates() throws -> ApplianceTemplates {
        if let templates { return try ApplianceTemplates(directory: URL(fileURLWithPath: templates)) }
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let starts = [
            executable.deletingLastPathComponent(), URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
        ]
        for start in starts {
            if let directory = ApplianceTemplates.locate(from: start) {
                return try ApplianceTemplates(directory: directory)
            }
        }
        throw CommandError("cannot find the Templates/ directory; give --templates DIR or set APPLIANCE_TEMPLATES")
    }

    /// The hypervisor an appliance lives on, with `--connect` applied.
    func target(for hypervisor: ApplianceInventory.Hypervisor) -> HypervisorTarget {
        InventoryProvisioner.target(for: hypervisor, connect: connect)
    }
}

/// Where the image is built and which applianced goes into it.
struct ImageOptions: ParsableArguments {
    @Option(help: "The applianced binary to put in the image (default: the one next to appliancectl).")
    var applianced: String?

    @Option(help: "Image cache directory (default: <state dir>/images).")
    var imageCache: String?

    @Option(
        name: .customLong("vendor-key"),
        help: "A vendor public key (PEM) new virtual appliances trust for packages; repeatable."
    )
    var vendorKeys: [String] = []

    /// The base64 bodies of the vendor keys, for the kernel command line.
    func vendorKeyTokens() throws -> [String] {
        try vendorKeys.map { path in
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw CommandError("cannot read the vendor key \(path); give the .pub file of `vendor keygen`")
            }
            // Read the way applianced reads --vendor-key, so a key the VM would refuse is refused here.
            guard let key = try? Ed25519PublicKey(pem: text) else {
                throw CommandError("\(path) is not an Ed25519 PEM public key; give the .pub file of `vendor keygen`")
            }
            return key.pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        }
    }

    func recipe(stateDirectory: StateDirectory) throws -> ImageRecipe {
        let binary =
            applianced
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("applianced").path
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw CommandError("no applianced binary at \(binary); build it (swift build) or give --applianced PATH")
        }
        let cache = imageCache.map { URL(fileURLWithPath: $0) } ?? stateDirectory.images
        return ImageRecipe(applianced: URL(fileURLWithPath: binary), cacheRoot: cache)
    }

    /// Builds the image, or finds it in the cache.
    func build(stateDirectory: StateDirectory, quiet: Bool = false) throws -> BuiltImage {
        try recipe(stateDirectory: stateDirectory).build { line in
            if !quiet { Terminal.note("image: \(line)") }
        }
    }
}

extension BuiltImage {
    var files: ImageFiles {
        ImageFiles(
            key: key,
            kernel: kernelURL,
            initrd: initrdURL,
            disk: diskURL,
            baseCommandLine: baseCommandLine,
            guestPort: guestPort
        )
    }
}
