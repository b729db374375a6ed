import ApplianceProvisioning
import ApplianceTemplates
import Foundation
import Libvirt
import Testing

/// appliancectl's own libvirt session daemon, real: started unprivileged, a directory pool in it, an image file
/// uploaded through a libvirt stream and a copy-on-write overlay over it.
@Suite(.serialized) struct SessionDaemonTests {
    @Test func theSessionDaemonStartsAndKeepsAPool() async throws {
        let daemon = SessionDaemon(root: ProvisioningTestSupport.scratch("daemon"))
        defer { daemon.stop() }
        let uri = try daemon.ensureRunning()
        let pid = try #require(daemon.runningPid())
        #expect(try daemon.ensureRunning() == uri, "a second call reuses the running daemon")
        #expect(daemon.runningPid() == pid)

        let templates = try ApplianceTemplates(directory: ProvisioningTestSupport.templates)
        let hypervisor = try await Hypervisor.open(HypervisorTarget(name: "local", pool: "test-pool"), daemon: daemon)
        #expect(hypervisor.poolPath.hasPrefix(daemon.root.path))
        #expect(try await hypervisor.connection.offersDomainType("qemu"))

        // An "image": three files, uploaded once; the second install finds the ready marker and uploads nothing.
        let files = ProvisioningTestSupport.scratch("image-files")
        var image = ImageFiles(
            key: String(repeating: "ab", count: 32),
            kernel: files.appendingPathComponent("vmlinuz"),
            initrd: files.appendingPathComponent("initrd.img"),
            disk: files.appendingPathComponent("disk.qcow2"),
            baseCommandLine: "console=ttyS0",
            guestPort: 443
        )
        try Data((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }).write(to: image.kernel)
        try Data(repeating: 0x42, count: 1_500_000).write(to: image.initrd)
        try ProvisioningTestSupport.run("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", image.disk.path, "64M"])
        let volumes = try await hypervisor.install(image, templates: templates)
        let uploaded = try Data(contentsOf: URL(fileURLWithPath: volumes.kernel))
        #expect(uploaded == (try Data(contentsOf: image.kernel)), "the kernel volume holds the file's bytes")
        image.kernel = files.appendingPathComponent("missing")
        let again = try await hypervisor.install(image, templates: templates)
        #expect(again == volumes, "a complete image in the pool is not uploaded again")

        let overlay = try await hypervisor.connection.createVolume(
            pool: "test-pool",
            xml: try templates.render(
                VolumeSpec(name: "box-disk.qcow2", capacityBytes: 1 << 30, backingPath: volumes.disk)
            )
        )
        let info = try ProvisioningTestSupport.run("/usr/bin/qemu-img", ["info", overlay.path])
        #expect(info.contains("backing file: \(volumes.disk)"), "\(info)")
        try await hypervisor.connection.deleteVolume(pool: "test-pool", name: "box-disk.qcow2")
        #expect(try await hypervisor.connection.volume(pool: "test-pool", name: "box-disk.qcow2") == nil)
    }

    @Test func aHomeTooLongForQEMUSocketsIsRefusedBeforeAnythingStarts() throws {
        let root = URL(fileURLWithPath: "/tmp/" + String(repeating: "x", count: SessionDaemon.longestRoot))
        #expect {
            try SessionDaemon(root: root).ensureRunning()
        } throws: { error in
            "\(error)".contains("too long") && "\(error)".contains("APPLIANCECTL_LIBVIRT_HOME")
        }
        #expect(!FileManager.default.fileExists(atPath: root.path), "nothing is created")
    }

    @Test func aRemoteURIWithoutThePoolIsAClearError() async throws {
        let daemon = SessionDaemon(root: ProvisioningTestSupport.scratch("daemon2"))
        defer { daemon.stop() }
        let uri = try daemon.ensureRunning()
        // Given as a URI, the hypervisor is not ours to change: a missing pool is reported, not created.
        await #expect {
            _ = try await Hypervisor.open(HypervisorTarget(name: "remote", uri: uri, pool: "nope"), daemon: daemon)
        } throws: { error in
            "\(error)".contains("has no storage pool 'nope'") && "\(error)".contains("virsh pool-define-as")
        }
    }
}
