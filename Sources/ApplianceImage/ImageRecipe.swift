public import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The recipe for the virtual appliance image (P11): a Debian cloud kernel, an initramfs and an ext4 root disk
/// holding applianced, built from Debian packages and cached under a key of everything they are made from.
///
/// Outputs, in `<cacheRoot>/<key>/`: `vmlinuz`, `initrd.img`, `disk.qcow2`, `bare-initrd.img` and `image.json`
/// (see ``ImageManifest``). A build works in `<cacheRoot>/<key>.partial-<random>/` and renames it into place
/// at the end, so an interrupted build never leaves an entry that looks complete. Downloaded packages are kept
/// in `<cacheRoot>/debs/`. Builds that share a cache root take turns (a lock file, `<cacheRoot>/.lock`).
///
/// Nothing is installed on the build host: packages are fetched with `apt-get download` and unpacked with
/// `dpkg-deb -x`. The host needs the tools in ``hostPackages``; the recipe runs as any user that can write the
/// cache root (`apt-get download` needs no root).
public struct ImageRecipe: Sendable {
    /// Bumped whenever the recipe's output changes for the same inputs; part of the cache key.
    public static let version = 1
    /// The metapackage naming the current Debian cloud kernel; the recipe uses the kernel package it depends on.
    public static let kernelMetapackage = "linux-image-cloud-amd64"
    /// The Debian package busybox comes from (statically linked, so it needs no libraries in the guest).
    public static let busyboxPackage = "busybox-static"
    /// The kernel command line every boot starts with: console on the first serial port (where the guest prints
    /// its markers), reboot at once on a panic (libvirt's `on_reboot` or QEMU's `-no-reboot` then stops the VM).
    public static let baseCommandLine = "console=ttyS0 panic=-1 quiet"
    /// The port applianced listens on in the guest unless the command line has `appliance.port=`.
    public static let defaultGuestPort = 443
    /// Debian packages that provide the host tools a build runs (`apt-get install` them first).
    public static let hostPackages = ["apt", "dpkg", "e2fsprogs", "qemu-utils", "gzip", "libc-bin", "coreutils"]
    /// All files get this modification time (2023-11-14), like `SOURCE_DATE_EPOCH`, so builds are byte-identical.
    static let modificationTime = 1_700_000_000
    /// Modules `initrd.img` loads (with their dependencies): virtio PCI, network and block devices, the root
    /// file system if it is not built in, and the ACPI power button with the input events busybox acpid reads.
    static let applianceModules = ["virtio_pci", "virtio_net", "virtio_blk", "ext4", "button", "evdev"]
    /// Modules `bare-initrd.img` loads: the network only.
    static let bareModules = ["virtio_pci", "virtio_net"]

    /// The applianced binary to put into the disk.
    public var applianced: URL
    /// The directory holding cache entries (`<key>/`) and downloaded packages (`debs/`).
    public var cacheRoot: URL

    /// How the recipe asks apt; tests give it options.
    var debian = DebianArchive()

    public init(applianced: URL, cacheRoot: URL) {
        self.applianced = applianced
        self.cacheRoot = cacheRoot
    }

    /// Everything the image is made from, resolved on this host.
    struct Inputs {
        var kernelPackage: DebianPackage
        var busyboxPackage: DebianPackage
        var appliancedSHA256: String
        /// The host's resize2fs, which the guest runs to grow its root file system.
        var resize2fs: URL
        /// Shared libraries of applianced and resize2fs with the SHA-256 of each.
        var libraries: [(path: String, sha256: String)]
        var key: String
    }

    /// The cache key for the current inputs: hex SHA-256 over the recipe version and its fixed settings, the
    /// candidate versions of the Debian packages, the applianced binary and the libraries it links on this host,
    /// and the text of the guest scripts.
    ///
    /// - Throws: `ImageError` when apt does not know the packages (run `apt-get update`) or applianced is missing.
    public func cacheKey() throws -> String {
        try resolveInputs().key
    }

    /// The cached image for the current inputs, or nil if it has not been built (or its files are damaged).
    public func cachedImage() throws -> BuiltImage? {
        try validImage(key: resolveInputs().key)
    }

    /// Builds the image, or returns the cached one if it was built from the same inputs.
    ///
    /// - Parameter progress: Called with one line per stage.
    /// - Returns: The image in `<cacheRoot>/<key>/`.
    /// - Throws: `ImageError`; its message says what to install or run when a tool or package list is missing.
    public func build(progress: @Sendable (String) -> Void = { _ in }) throws -> BuiltImage {
        for tool in HostTool.required {
            _ = try tool.require()
        }
        try FileSystem.createDirectory(cacheRoot)
        return try withCacheLock {
            let inputs = try resolveInputs()
            progress(
                "Inputs: \(inputs.kernelPackage.name) \(inputs.kernelPackage.version), "
                    + "\(inputs.busyboxPackage.name) \(inputs.busyboxPackage.version), "
                    + "applianced \(inputs.appliancedSHA256.prefix(12)), \(inputs.libraries.count) libraries; "
                    + "cache key \(inputs.key)"
            )
            if let image = try validImage(key: inputs.key) {
                progress("Cached image found in \(image.directory.path)")
                return image
            }
            removeStalePartialBuilds()
            let partial = cacheRoot.appendingPathComponent(
                "\(inputs.key).partial-\(UUID().uuidString.prefix(8).lowercased())",
                isDirectory: true
            )
            do {
                let manifest = try assemble(inputs, in: partial, progress: progress)
                let destination = cacheRoot.appendingPathComponent(inputs.key, isDirectory: true)
                // An entry that failed validation above is damaged: replace it.
                FileSystem.remove(destination)
                try FileSystem.move(partial, to: destination)
                progress("Image ready in \(destination.path)")
                return BuiltImage(directory: destination, manifest: manifest)
            } catch {
                FileSystem.remove(partial)
                throw error
            }
        }
    }

    // MARK: - Inputs and cache

    func resolveInputs() throws -> Inputs {
        guard FileManager.default.isExecutableFile(atPath: applianced.path) else {
            throw ImageError(
                code: .invalidInput,
                message: "no applianced binary at \(applianced.path); build it first (swift build --product applianced)"
            )
        }
        let kernelName = try debian.dependency(of: Self.kernelMetapackage, prefix: "linux-image-")
        let packages = try debian.candidates([kernelName, Self.busyboxPackage])
        let kernelPackage = packages[0]
        let busyboxPackage = packages[1]
        let resize2fs = URL(fileURLWithPath: try HostTool.resize2fs.require()).resolvingSymlinksInPath()
        var seen: Set<String> = []
        let libraryPaths = try (RootDisk.sharedLibraries(of: applianced) + RootDisk.sharedLibraries(of: resize2fs))
            .filter { seen.insert($0).inserted }
        let digests = try Digest.sha256(
            of: [applianced, resize2fs] + libraryPaths.map { URL(fileURLWithPath: $0).resolvingSymlinksInPath() }
        )
        let libraries = zip(libraryPaths, digests.dropFirst(2)).map { (path: $0, sha256: $1) }

        var material = "appliance-image recipe \(Self.version)\n"
        material += "kernel \(kernelPackage.name) \(kernelPackage.version)\n"
        material += "busybox \(busyboxPackage.name) \(busyboxPackage.version)\n"
        material += "applianced \(digests[0])\nresize2fs \(digests[1])\n"
        for library in libraries {
            material += "library \(library.path) \(library.sha256)\n"
        }
        material += "command-line \(Self.baseCommandLine)\nguest-port \(Self.defaultGuestPort)\n"
        material +=
            "modules \(Self.applianceModules.joined(separator: ",")) bare \(Self.bareModules.joined(separator: ","))\n"
        material += "disk \(RootDisk.size) \(RootDisk.fileSystemUUID) \(RootDisk.hashSeed) \(Self.modificationTime)\n"
        let texts = [
            ("mke2fs.conf", RootDisk.mke2fsConfiguration),
            ("init", GuestScripts.initramfsInit),
            ("appliance-init", GuestScripts.applianceInit),
            ("power-button", GuestScripts.powerButton),
            ("udhcpc", GuestScripts.udhcpcScript),
            ("bare-init", GuestScripts.bareInit),
        ]
        for (name, text) in texts {
            material += "text \(name) \(text.utf8.count)\n\(text)\n"
        }
        let key = try Digest.sha256(of: Data(material.utf8))
        return Inputs(
            kernelPackage: kernelPackage,
            busyboxPackage: busyboxPackage,
            appliancedSHA256: digests[0],
            resize2fs: resize2fs,
            libraries: libraries,
            key: key
        )
    }

    /// The entry `<cacheRoot>/<key>/` if its `image.json` is readable and every file it lists has the recorded size
    /// and SHA-256.
    func validImage(key: String) throws -> BuiltImage? {
        let directory = cacheRoot.appendingPathComponent(key, isDirectory: true)
        let manifestURL = directory.appendingPathComponent("image.json")
        guard let data = try? Data(contentsOf: manifestURL),
            let manifest = try? JSONDecoder().decode(ImageManifest.self, from: data),
            manifest.key == key
        else {
            return nil
        }
        let image = BuiltImage(directory: directory, manifest: manifest)
        for file in manifest.files where FileSystem.size(image.url(of: file)) != file.size {
            return nil
        }
        let digests = try Digest.sha256(of: manifest.files.map(image.url(of:)))
        guard digests == manifest.files.map(\.sha256) else {
            return nil
        }
        return image
    }

    /// Runs `body` holding an exclusive lock on `<cacheRoot>/.lock`, so builds sharing the cache take turns.
    private func withCacheLock<T>(_ body: () throws -> T) throws -> T {
        let lockPath = cacheRoot.appendingPathComponent(".lock").path
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw ImageError(code: .fileSystem, message: "cannot open \(lockPath): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw ImageError(
                    code: .fileSystem,
                    message: "cannot lock \(lockPath): \(String(cString: strerror(errno)))"
                )
            }
        }
        return try body()
    }

    /// Removes what interrupted builds left behind. Called with the cache lock held, so no build is running.
    private func removeStalePartialBuilds() {
        for url in (try? FileSystem.contents(of: cacheRoot)) ?? [] where url.lastPathComponent.contains(".partial-") {
            FileSystem.remove(url)
        }
        let debs = cacheRoot.appendingPathComponent("debs", isDirectory: true)
        for url in (try? FileSystem.contents(of: debs)) ?? [] where url.lastPathComponent.hasPrefix(".download-") {
            FileSystem.remove(url)
        }
    }

    // MARK: - Build

    /// Builds every file of the image into `directory` and writes `image.json` last.
    private func assemble(_ inputs: Inputs, in directory: URL, progress: (String) -> Void) throws -> ImageManifest {
        let work = directory.appendingPathComponent("work", isDirectory: true)
        try FileSystem.createDirectory(work)
        let debs = cacheRoot.appendingPathComponent("debs", isDirectory: true)
        try FileSystem.createDirectory(debs)
        func unpack(_ package: DebianPackage) throws -> URL {
            let target = work.appendingPathComponent(package.name, isDirectory: true)
            let kept = debs.appendingPathComponent(package.fileName)
            if FileManager.default.fileExists(atPath: kept.path) {
                progress("Using downloaded \(package.fileName)")
                do {
                    try DebianArchive.extract(kept, into: target)
                    return target
                } catch {
                    // A damaged file from an earlier build: fetch it again.
                    FileSystem.remove(kept)
                    FileSystem.remove(target)
                }
            }
            progress("Downloading \(package.name) \(package.version)")
            try DebianArchive.extract(try debian.download(package, into: debs), into: target)
            return target
        }
        let kernel = try UnpackedKernel(tree: unpack(inputs.kernelPackage), package: inputs.kernelPackage)
        let busybox = try unpack(inputs.busyboxPackage).appendingPathComponent("bin/busybox")
        let applets = String(
            decoding: try Command.run(HostTool(name: busybox.path, package: Self.busyboxPackage), ["--list-full"]),
            as: UTF8.self
        ).split(separator: "\n").map(String.init)
        let applianceModules = try kernel.modules.loadOrder(for: Self.applianceModules)
        let bareModules = try kernel.modules.loadOrder(for: Self.bareModules)

        let kernelURL = directory.appendingPathComponent("vmlinuz")
        try FileSystem.copyFile(kernel.vmlinuz, to: kernelURL, permissions: 0o644)

        progress("Writing initrd.img (modules: \(applianceModules.joined(separator: " ")))")
        let initrdURL = directory.appendingPathComponent("initrd.img")
        let archive = try Initramfs.appliance(
            busybox: busybox,
            applets: applets,
            modules: kernel.modules.files(of: applianceModules),
            modificationTime: Self.modificationTime
        )
        try Initramfs.write(archive, to: initrdURL, work: work)

        progress("Writing bare-initrd.img (modules: \(bareModules.joined(separator: " ")))")
        let bareURL = directory.appendingPathComponent("bare-initrd.img")
        let bareArchive = try Initramfs.bare(
            busybox: busybox,
            applets: applets,
            modules: kernel.modules.files(of: bareModules),
            modificationTime: Self.modificationTime
        )
        try Initramfs.write(bareArchive, to: bareURL, work: work)

        progress("Staging the root file system (applianced, resize2fs and \(inputs.libraries.count) shared libraries)")
        let staging = work.appendingPathComponent("root", isDirectory: true)
        try FileSystem.createDirectory(staging, permissions: 0o755)
        try RootDisk.stage(
            in: staging,
            busybox: busybox,
            applets: applets,
            applianced: applianced,
            resize2fs: inputs.resize2fs,
            libraries: inputs.libraries.map(\.path),
            guestPort: Self.defaultGuestPort
        )
        progress("Making disk.qcow2 (ext4, \(RootDisk.size >> 20) MiB virtual)")
        let diskURL = directory.appendingPathComponent("disk.qcow2")
        try RootDisk.make(from: staging, work: work, qcow2: diskURL, modificationTime: Self.modificationTime)
        FileSystem.remove(work)

        progress("Hashing the image files")
        let urls = [kernelURL, initrdURL, diskURL, bareURL]
        let files = zip(urls, try Digest.sha256(of: urls)).map { url, digest in
            ImageManifest.File(name: url.lastPathComponent, size: FileSystem.size(url) ?? 0, sha256: digest)
        }
        let manifest = ImageManifest(
            key: inputs.key,
            recipeVersion: Self.version,
            kernelPackage: .init(name: inputs.kernelPackage.name, version: inputs.kernelPackage.version),
            kernelVersion: kernel.version,
            busyboxPackage: .init(name: inputs.busyboxPackage.name, version: inputs.busyboxPackage.version),
            appliancedSHA256: inputs.appliancedSHA256,
            kernel: files[0],
            initrd: files[1],
            disk: files[2],
            bareInitrd: files[3],
            diskVirtualSize: RootDisk.size,
            modules: applianceModules,
            baseCommandLine: Self.baseCommandLine,
            guestPort: Self.defaultGuestPort
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let json: Data
        do {
            json = try encoder.encode(manifest) + Data("\n".utf8)
        } catch {
            throw ImageError(code: .fileSystem, message: "cannot encode image.json: \(error)")
        }
        try FileSystem.write(json, to: directory.appendingPathComponent("image.json"))
        return manifest
    }
}

/// The parts of an unpacked kernel package the image uses.
private struct UnpackedKernel {
    /// `boot/vmlinuz-<version>`.
    var vmlinuz: URL
    /// The kernel release, e.g. `6.1.0-56-cloud-amd64`.
    var version: String
    var modules: KernelModules

    init(tree: URL, package: DebianPackage) throws {
        let boot = tree.appendingPathComponent("boot", isDirectory: true)
        guard
            let vmlinuz = try FileSystem.contents(of: boot).first(where: { $0.lastPathComponent.hasPrefix("vmlinuz-") })
        else {
            throw ImageError(code: .invalidInput, message: "\(package.name) \(package.version) has no boot/vmlinuz-*")
        }
        let version = String(vmlinuz.lastPathComponent.dropFirst("vmlinuz-".count))
        self.vmlinuz = vmlinuz
        self.version = version
        // Debian 12 kernels keep modules in /lib/modules; later ones may move them under /usr.
        let candidates = ["lib/modules", "usr/lib/modules"].map {
            tree.appendingPathComponent("\($0)/\(version)", isDirectory: true)
        }
        guard let directory = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) else {
            throw ImageError(code: .invalidInput, message: "\(package.name) has no lib/modules/\(version)")
        }
        modules = try KernelModules(directory: directory)
    }
}
