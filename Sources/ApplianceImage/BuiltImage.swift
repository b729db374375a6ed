public import Foundation

/// A built appliance image: where its files are and what `image.json` says about them.
public struct BuiltImage: Codable, Sendable, Equatable {
    /// The cache entry directory `<cacheRoot>/<key>/` holding the files and `image.json`.
    public var directory: URL
    /// The contents of `image.json`.
    public var manifest: ImageManifest

    public init(directory: URL, manifest: ImageManifest) {
        self.directory = directory
        self.manifest = manifest
    }

    /// The cache key (hex SHA-256 of everything the image is made from).
    public var key: String { manifest.key }
    /// The guest kernel's release string, e.g. `6.1.0-56-cloud-amd64`.
    public var kernelVersion: String { manifest.kernelVersion }
    /// Hex SHA-256 of the applianced binary inside the disk.
    public var appliancedSHA256: String { manifest.appliancedSHA256 }
    /// Kernel command line every boot starts with; see `commandLine(applianceId:hostname:port:)`.
    public var baseCommandLine: String { manifest.baseCommandLine }
    /// The TCP port applianced listens on inside the guest unless `appliance.port=` says otherwise.
    public var guestPort: Int { manifest.guestPort }

    /// The kernel (`vmlinuz`) for direct kernel boot.
    public var kernelURL: URL { url(of: manifest.kernel) }
    /// The initramfs that mounts the disk and starts `/sbin/appliance-init`.
    public var initrdURL: URL { url(of: manifest.initrd) }
    /// The root disk (qcow2). Never boot it directly: create an overlay per VM with it as backing file, of any size
    /// from `manifest.diskVirtualSize` up (the guest grows its file system to fill the overlay).
    public var diskURL: URL { url(of: manifest.disk) }
    /// The baseline initramfs (busybox httpd on port 80) for the boot-time benchmark.
    public var bareInitrdURL: URL { url(of: manifest.bareInitrd) }

    /// The absolute path of one of the image's files.
    public func url(of file: ImageManifest.File) -> URL {
        directory.appendingPathComponent(file.name, isDirectory: false)
    }

    /// The kernel command line for an appliance boot.
    ///
    /// - Parameters:
    ///   - applianceId: The appliance id (UUID) applianced takes at first start; later boots keep the stored one.
    ///   - hostname: The guest's hostname, also applianced's `--hostname` at first start.
    ///   - port: The guest port applianced listens on; nil keeps `guestPort`.
    public func commandLine(applianceId: String? = nil, hostname: String? = nil, port: Int? = nil) -> String {
        var arguments = [manifest.baseCommandLine]
        if let applianceId {
            arguments.append("appliance.id=\(applianceId)")
        }
        if let hostname {
            arguments.append("appliance.hostname=\(hostname)")
        }
        if let port {
            arguments.append("appliance.port=\(port)")
        }
        return arguments.joined(separator: " ")
    }

    /// The kernel command line of a probe boot: the guest prints `probeMarker` on the serial console and powers off
    /// as soon as it reaches user space, without touching the disk.
    public var probeCommandLine: String {
        manifest.baseCommandLine + " appliance.probe=1"
    }

    /// What a probe boot prints on the serial console.
    public static let probeMarker = "APPLIANCE-PROBE-OK"
    /// What the appliance prints on the serial console once it has an address: `appliance-init: network <ip>`.
    public static let networkMarker = "appliance-init: network "
    /// What the appliance prints on the serial console each time it launches applianced.
    public static let startedMarker = "appliance-init: applianced started"
    /// What the bare image prints on the serial console once busybox httpd runs.
    public static let bareMarker = "bare: httpd up"
}

/// The contents of `image.json`, written last in a cache entry.
public struct ImageManifest: Codable, Sendable, Equatable {
    /// One file of the image.
    public struct File: Codable, Sendable, Equatable {
        /// File name inside the cache entry directory.
        public var name: String
        public var size: Int64
        /// Lowercase hex SHA-256 of the contents.
        public var sha256: String

        public init(name: String, size: Int64, sha256: String) {
            self.name = name
            self.size = size
            self.sha256 = sha256
        }
    }

    /// A Debian package the image was made from.
    public struct Package: Codable, Sendable, Equatable {
        public var name: String
        public var version: String

        public init(name: String, version: String) {
            self.name = name
            self.version = version
        }
    }

    public var key: String
    public var recipeVersion: Int
    /// The versioned kernel package, e.g. `linux-image-6.1.0-56-cloud-amd64` 6.1.192-2.
    public var kernelPackage: Package
    public var kernelVersion: String
    public var busyboxPackage: Package
    public var appliancedSHA256: String
    public var kernel: File
    public var initrd: File
    public var disk: File
    public var bareInitrd: File
    /// Virtual size of `disk.qcow2` and of the ext4 file system on it. At boot the guest grows the file system
    /// online to fill a larger disk (an overlay created with a bigger size); it cannot shrink, so a VM's disk must be
    /// at least this large.
    public var diskVirtualSize: Int64
    /// Kernel modules the initramfs loads, in order.
    public var modules: [String]
    public var baseCommandLine: String
    public var guestPort: Int

    public init(
        key: String,
        recipeVersion: Int,
        kernelPackage: Package,
        kernelVersion: String,
        busyboxPackage: Package,
        appliancedSHA256: String,
        kernel: File,
        initrd: File,
        disk: File,
        bareInitrd: File,
        diskVirtualSize: Int64,
        modules: [String],
        baseCommandLine: String,
        guestPort: Int
    ) {
        self.key = key
        self.recipeVersion = recipeVersion
        self.kernelPackage = kernelPackage
        self.kernelVersion = kernelVersion
        self.busyboxPackage = busyboxPackage
        self.appliancedSHA256 = appliancedSHA256
        self.kernel = kernel
        self.initrd = initrd
        self.disk = disk
        self.bareInitrd = bareInitrd
        self.diskVirtualSize = diskVirtualSize
        self.modules = modules
        self.baseCommandLine = baseCommandLine
        self.guestPort = guestPort
    }

    /// The image's files: kernel, initrd, disk, bare initrd.
    public var files: [File] {
        [kernel, initrd, disk, bareInitrd]
    }
}
