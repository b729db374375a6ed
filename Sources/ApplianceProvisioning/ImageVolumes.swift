public import ApplianceTemplates
public import Foundation
import Libvirt

/// The image files on this machine (what `appliancectl image build` made).
public struct ImageFiles: Sendable, Equatable {
    /// The image's content key (hex); volumes in a pool are named after it.
    public var key: String
    public var kernel: URL
    public var initrd: URL
    /// The root filesystem (qcow2) that appliance disks are copy-on-write overlays of.
    public var disk: URL
    /// The kernel command line every boot starts with.
    public var baseCommandLine: String
    /// The port `applianced` listens on inside the guest.
    public var guestPort: Int

    public init(key: String, kernel: URL, initrd: URL, disk: URL, baseCommandLine: String, guestPort: Int) {
        self.key = key
        self.kernel = kernel
        self.initrd = initrd
        self.disk = disk
        self.baseCommandLine = baseCommandLine
        self.guestPort = guestPort
    }
}

/// The image installed in a hypervisor's storage pool: paths as the hypervisor sees them.
public struct ImageVolumes: Sendable, Equatable {
    public var key: String
    public var kernel: String
    public var initrd: String
    public var disk: String
    public var baseCommandLine: String
    public var guestPort: Int

    /// The volume name prefix of an image (the key's first 16 hex digits).
    public static func prefix(_ key: String) -> String { "appliance-image-\(key.prefix(16))" }
}

extension Hypervisor {
    /// Puts the image into the pool, unless a complete copy is there already. The files travel through libvirt's
    /// volume upload, so a remote hypervisor gets them too. A `-ready` marker volume is created last: volumes of an
    /// image without it are from an interrupted upload and are replaced.
    public func install(
        _ image: ImageFiles,
        templates: ApplianceTemplates,
        progress: @Sendable (String) -> Void = { _ in }
    ) async throws -> ImageVolumes {
        let prefix = ImageVolumes.prefix(image.key)
        let pool = target.pool
        let files: [(suffix: String, file: URL)] = [
            ("vmlinuz", image.kernel), ("initrd.img", image.initrd), ("disk.qcow2", image.disk),
        ]
        let marker = "\(prefix)-ready"
        if try await connection.volume(pool: pool, name: marker) == nil {
            for (suffix, file) in files {
                let name = "\(prefix)-\(suffix)"
                guard let size = (try? FileManager.default.attributesOfItem(atPath: file.path))?[.size] as? Int64 else {
                    throw ProvisioningError(
                        .image,
                        "the image file \(file.path) is missing; run `appliancectl image build` again"
                    )
                }
                if try await connection.volume(pool: pool, name: name) != nil {
                    try await connection.deleteVolume(pool: pool, name: name)
                }
                progress("uploading \(file.lastPathComponent) (\(size / 1_048_576) MiB) into pool \(pool)")
                let xml = try templates.render(
                    VolumeSpec(name: name, capacityBytes: max(size, 1 << 20), format: "raw")
                )
                _ = try await connection.createVolume(pool: pool, xml: xml)
                try await connection.uploadVolume(pool: pool, name: name, from: file.path)
            }
            _ = try await connection.createVolume(
                pool: pool,
                xml: try templates.render(VolumeSpec(name: marker, capacityBytes: 1 << 20, format: "raw"))
            )
        }
        var paths: [String] = []
        for (suffix, _) in files {
            guard let volume = try await connection.volume(pool: pool, name: "\(prefix)-\(suffix)") else {
                throw ProvisioningError(
                    .image,
                    "pool \(pool) has the image marker \(marker) but not \(prefix)-\(suffix); delete \(marker) "
                        + "(virsh vol-delete) and provision again"
                )
            }
            paths.append(volume.path)
        }
        return ImageVolumes(
            key: image.key,
            kernel: paths[0],
            initrd: paths[1],
            disk: paths[2],
            baseCommandLine: image.baseCommandLine,
            guestPort: image.guestPort
        )
    }
}
