import ApplianceAPI
import ApplianceClient
import ApplianceImage
import ApplianceInventory
import ApplianceProvisioning
import ApplianceTemplates
import Foundation
import Libvirt
import Testing

/// Real virtual appliances: the image is built from Debian packages, appliancectl starts its own libvirt session
/// daemon, QEMU boots the VM (TCG here: KVM does not work on this machine), and the tests talk to its applianced
/// over TLS. Nothing is simulated.
@Suite(.serialized) final class VirtualApplianceTests {
    /// One directory for the whole suite, so the image is built and uploaded into the pool once. Each test stops
    /// the daemon when it ends; the next one starts it again (a tenth of a second).
    static let sharedRoot = ProvisioningTestSupport.scratch("vm")
    var root: URL { Self.sharedRoot }
    let password = "Correct-Horse-42"
    var daemon: SessionDaemon { SessionDaemon(root: root.appendingPathComponent("libvirt")) }
    var inventory: URL { root.appendingPathComponent("inventory.yml") }

    deinit {
        daemon.stop()
    }

    /// Writes an inventory with one virtual appliance `name` on the local session daemon.
    func writeInventory(_ name: String, memoryMiB: Int = 256) throws {
        try? FileManager.default.removeItem(at: inventory)
        let text = """
            # written by VirtualApplianceTests
            hypervisors:
              local:
                pool: appliances
            appliances:
              \(name):
                virtual:
                  hypervisor: local
                  memory_mib: \(memoryMiB)
                password: VM_TEST_PASSWORD

            """
        try Data(text.utf8).write(to: inventory)
    }

    /// appliancectl's environment: this suite's state, daemon and password.
    var environment: [String: String] {
        [
            "APPLIANCECTL_HOME": root.appendingPathComponent("state").path,
            "APPLIANCECTL_LIBVIRT_HOME": daemon.root.path,
            "VM_TEST_PASSWORD": password,
            "APPLIANCE_PASSWORD": password,
            "APPLIANCE_TEMPLATES": ProvisioningTestSupport.templates.path,
        ]
    }

    /// Runs appliancectl with this suite's state, daemon and password.
    @discardableResult
    func appliancectl(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try ProvisioningTestSupport.capture(
            ProvisioningTestSupport.binary("appliancectl").path,
            arguments,
            environment: environment
        )
    }

    func connection() async throws -> LibvirtConnection {
        try await LibvirtConnection.open(daemon.uri)
    }

    /// The pool's volumes whose names start with `name-`.
    func leftovers(_ name: String) async throws -> (domain: Bool, volumes: [String]) {
        let libvirt = try await connection()
        try await libvirt.refreshPool(named: "appliances")
        let volumes = try await libvirt.listVolumes(pool: "appliances").map(\.name).filter { $0.hasPrefix("\(name)-") }
        return (try await libvirt.domain(named: name) != nil, volumes)
    }

    func summary(_ address: String) throws -> String {
        let result = try appliancectl(["summary", address])
        #expect(result.status == 0, "\(result.stderr)")
        return result.stdout
    }

    @Test(.timeLimit(.minutes(12)))
    func provisionTalkRebootKeepDataDestroy() async throws {
        let name = "vm-\(getpid())"
        try writeInventory(name)
        let first = try appliancectl(["provision", name, "--inventory", inventory.path, "--json"])
        try #require(first.status == 0, "provision failed: \(first.stderr)")
        let result = try JSONDecoder().decode(ProvisionResult.self, from: Data(first.stdout.utf8))
        #expect(!result.adopted)

        // The inventory now records address, id and pin, and the comment is still there.
        let recorded = try Inventory.load(from: inventory).appliance(named: name)
        #expect(recorded.address == result.address)
        #expect(recorded.id == result.applianceId)
        #expect(recorded.pin == result.pin)
        #expect(try String(contentsOf: inventory, encoding: .utf8).hasPrefix("# written by VirtualApplianceTests"))

        // TLS with the recorded pin; the appliance answers with the id it was created with, and the inventory's
        // password (not the factory one) logs in.
        let hostPort = try #require(HostPort(result.address))
        let pin = try #require(TLSPin(result.pin))
        let appliance = ApplianceConnection(host: hostPort.host, port: hostPort.port, pin: pin)
        let (healthy, health, _) = try await appliance.health()
        #expect(healthy)
        #expect(health.applianceId == result.applianceId)
        let login = try await appliance.login(username: "admin", password: password)
        #expect(!login.passwordChangeRequired)
        await #expect(throws: (any Error).self) {
            _ = try await appliance.login(username: "admin", password: "password")
        }

        // Data on its disk, then a reboot: shut down through the API, the VM powers off, provision starts it again.
        let populate = try appliancectl(["populate", result.address, "--size", "1MiB"])
        #expect(populate.status == 0, "\(populate.stderr)")
        let before = try summary(result.address)
        #expect(try appliancectl(["shutdown", result.address]).status == 0)
        let libvirt = try await connection()
        let deadline = ContinuousClock.now + .seconds(60)
        while try await libvirt.state(domain: name) != .shutoff, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(try await libvirt.state(domain: name) == .shutoff, "the guest powers off after applianced exits 0")
        let again = try appliancectl(["provision", name, "--inventory", inventory.path, "--json"])
        try #require(again.status == 0, "adopting the stopped VM failed: \(again.stderr)")
        let adopted = try JSONDecoder().decode(ProvisionResult.self, from: Data(again.stdout.utf8))
        #expect(adopted.adopted)
        #expect(adopted.applianceId == result.applianceId)
        #expect(adopted.pin == result.pin, "same disk, same key")
        #expect(try summary(result.address) == before, "settings, users, history and files survived the reboot")

        // A reboot through the API (A8): the guest's init reboots the VM, which comes back with the same data.
        let rebooted = try appliancectl(["reboot", result.address, "--timeout", "240"])
        #expect(rebooted.status == 0, "\(rebooted.stderr)")
        #expect(rebooted.stdout.contains("rebooted and is healthy again"), "\(rebooted.stdout)")
        #expect(try await libvirt.state(domain: name) == .running)
        #expect(try summary(result.address) == before, "the data survived the reboot through the API")

        // Idempotent while running: adopts again, changes nothing.
        let third = try appliancectl(["provision", name, "--inventory", inventory.path, "--json"])
        #expect(third.status == 0, "\(third.stderr)")
        #expect(try await libvirt.state(domain: name) == .running)

        let listed = try appliancectl(["list", "--inventory", inventory.path])
        #expect(listed.stdout.contains(name) && listed.stdout.contains("running"), "\(listed.stdout)")

        let destroyed = try appliancectl(["destroy", name, "--inventory", inventory.path])
        #expect(destroyed.status == 0, "\(destroyed.stderr)")
        let left = try await leftovers(name)
        #expect(!left.domain, "no domain left")
        #expect(left.volumes.isEmpty, "no volume left: \(left.volumes)")
    }

    @Test(.timeLimit(.minutes(8)))
    func everyFailedStageLeavesNothingBehind() async throws {
        let name = "fail-\(getpid())"
        try writeInventory(name)

        // A bad template value: libvirt refuses the domain, and the disk made before it is removed.
        let badTemplates = root.appendingPathComponent("bad-templates")
        try FileManager.default.copyItem(at: ProvisioningTestSupport.templates, to: badTemplates)
        let domainTemplate = badTemplates.appendingPathComponent("domain.xml.mustache")
        let text = try String(contentsOf: domainTemplate, encoding: .utf8)
        try Data(text.replacingOccurrences(of: "<vcpu>{{vcpus}}</vcpu>", with: "<vcpu>{{vcpus}}x</vcpu>").utf8)
            .write(to: domainTemplate)
        let bad = try appliancectl(
            ["provision", name, "--inventory", inventory.path, "--templates", badTemplates.path])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("failed at step 'defineDomain'"), "\(bad.stderr)")
        #expect(bad.stderr.contains("removed volume \(name)-disk.qcow2"), "\(bad.stderr)")
        var left = try await leftovers(name)
        #expect(!left.domain && left.volumes.isEmpty, "\(left)")

        // The image missing from the pool (its disk volume deleted behind appliancectl's back).
        let libvirt = try await connection()
        let image = try #require(
            try await libvirt.listVolumes(pool: "appliances").first {
                $0.name.hasPrefix("appliance-image-") && $0.name.hasSuffix("-disk.qcow2")
            }
        )
        try await libvirt.deleteVolume(pool: "appliances", name: image.name)
        let missing = try appliancectl(["provision", name, "--inventory", inventory.path])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("failed at step 'image'"), "\(missing.stderr)")
        left = try await leftovers(name)
        #expect(!left.domain && left.volumes.isEmpty, "\(left)")
        // As the error says: delete the marker, and the next run uploads the image again.
        let marker = image.name.replacingOccurrences(of: "-disk.qcow2", with: "-ready")
        #expect(missing.stderr.contains(marker))
        try await libvirt.deleteVolume(pool: "appliances", name: marker)

        // Never ready: the domain is stopped and undefined, its disk and console log deleted.
        let slow = try appliancectl(["provision", name, "--inventory", inventory.path, "--ready-timeout", "2"])
        #expect(slow.status != 0)
        #expect(slow.stderr.contains("failed at step 'waitReady'"), "\(slow.stderr)")
        #expect(slow.stderr.contains("removed running domain \(name)"), "\(slow.stderr)")
        left = try await leftovers(name)
        #expect(!left.domain && left.volumes.isEmpty, "\(left)")

        // --keep-failed keeps them for inspection; destroy then removes them.
        let kept = try appliancectl(
            ["provision", name, "--inventory", inventory.path, "--ready-timeout", "1", "--keep-failed"])
        #expect(kept.status != 0)
        left = try await leftovers(name)
        #expect(left.domain && left.volumes.contains("\(name)-disk.qcow2"), "\(left)")
        #expect(try appliancectl(["destroy", name, "--inventory", inventory.path]).status == 0)
        left = try await leftovers(name)
        #expect(!left.domain && left.volumes.isEmpty, "\(left)")
    }

    /// The KVM probe's mechanism, shown with TCG: the probe guest powers itself off, which is what tells a
    /// working hypervisor type from one that pauses the guest (nested KVM here). KVM itself is not offered to
    /// the unprivileged daemon on this machine, so the default choice is TCG.
    @Test(.timeLimit(.minutes(5)))
    func theProbeGuestPowersItselfOff() async throws {
        let built = try appliancectl(["image", "build", "--json"])
        try #require(built.status == 0, "\(built.stderr)")
        let image = try JSONDecoder().decode(BuiltImage.self, from: Data(built.stdout.utf8))
        let hypervisor = try await Hypervisor.open(HypervisorTarget(name: "local"), daemon: daemon)
        let templates = try ApplianceTemplates(directory: ProvisioningTestSupport.templates)
        let volumes = try await hypervisor.install(
            ImageFiles(
                key: image.key,
                kernel: image.kernelURL,
                initrd: image.initrdURL,
                disk: image.diskURL,
                baseCommandLine: image.baseCommandLine,
                guestPort: image.guestPort
            ),
            templates: templates
        )
        #expect(try await hypervisor.probeBoot(domainType: "qemu", image: volumes, templates: templates))
        if try await !hypervisor.connection.offersDomainType("kvm") {
            #expect(try await hypervisor.domainType(image: volumes, templates: templates) == "qemu")
        }
        let domains = try await hypervisor.connection.listDomains().map(\.name)
        #expect(!domains.contains { $0.hasPrefix("appliancectl-probe-") }, "the probe domain is removed")
    }

    @Test func aSecondRunOnTheSameNameIsRefusedAtOnce() throws {
        let name = "locked-\(getpid())"
        try writeInventory(name)
        let lock = try NameLock.acquire(
            name: name,
            directory: root.appendingPathComponent("state/locks"),
            command: "a test holding the lock"
        )
        defer { lock.release() }
        let refused = try appliancectl(["provision", name, "--inventory", inventory.path])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("pid \(getpid())"), "\(refused.stderr)")
    }

    @Test func aPhysicalApplianceOrAnUnknownNameIsRefusedWithWhatToDo() throws {
        let text = """
            appliances:
              old-box:
                physical:
                  address: 127.0.0.11:9443
                password: OLD_BOX_PASSWORD

            """
        try Data(text.utf8).write(to: inventory)
        let physical = try appliancectl(["provision", "old-box", "--inventory", inventory.path])
        #expect(physical.status != 0)
        #expect(physical.stderr.contains("physical"), "\(physical.stderr)")
        let unknown = try appliancectl(["provision", "old-bx", "--inventory", inventory.path])
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("old-box"), "names the known appliances: \(unknown.stderr)")
    }
}
