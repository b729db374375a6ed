import ApplianceTemplates
import Foundation
import Testing

/// The XML in `Templates/` renders from checked values and passes libvirt's own schema check.
@Suite struct TemplateTests {
    static let templates = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Templates")

    /// Runs `virt-xml-validate FILE TYPE` (libvirt-clients) on the rendered XML.
    static func validate(_ xml: String, as type: String) throws -> (status: Int32, output: String) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(UUID().uuidString).xml")
        try Data(xml.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["virt-xml-validate", file.path, type]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    static func domain(_ networking: ApplianceNetworking, type: String = "qemu") -> DomainSpec {
        DomainSpec(
            name: "appliance-01",
            uuid: UUID(),
            applianceId: UUID().uuidString.lowercased(),
            domainType: type,
            memoryMiB: 256,
            vcpus: 1,
            kernel: "/var/lib/appliance/image/vmlinuz",
            initrd: "/var/lib/appliance/image/initrd.img",
            cmdline: "console=ttyS0 quiet appliance.data=/dev/vda",
            dataDisk: "/var/lib/appliance/pool/appliance-01-data.qcow2",
            consoleLog: "/var/lib/appliance/console/appliance-01.log",
            networking: networking
        )
    }

    @Test(arguments: [
        ApplianceNetworking.userMode(hostPort: 18443, guestPort: 443), .libvirtNetwork("appliances"),
    ])
    func domainXMLIsValid(networking: ApplianceNetworking) throws {
        let renderer = try ApplianceTemplates(directory: Self.templates)
        for type in ["qemu", "kvm"] {
            let xml = try renderer.render(Self.domain(networking, type: type))
            let result = try Self.validate(xml, as: "domain")
            #expect(result.status == 0, "virt-xml-validate: \(result.output)\n\(xml)")
            #expect(xml.contains("<domain type='\(type)'"))
            #expect(xml.contains("<tb-cache") == (type == "qemu"), "TCG gets a smaller translation cache")
            if case .userMode = networking {
                #expect(xml.contains("hostfwd=tcp:127.0.0.1:18443-:443"))
            } else {
                #expect(xml.contains("<source network='appliances'/>"))
            }
        }
    }

    @Test func aDisklessDomainIsValid() throws {
        let renderer = try ApplianceTemplates(directory: Self.templates)
        var spec = Self.domain(.userMode(hostPort: 18443, guestPort: 443))
        spec.dataDisk = nil
        let xml = try renderer.render(spec)
        #expect(try Self.validate(xml, as: "domain").status == 0, "\(xml)")
        #expect(!xml.contains("<disk"))
    }

    @Test func aGuestForwardRendersAsASocatCommandAndRefusesBadTargets() throws {
        let renderer = try ApplianceTemplates(directory: Self.templates)
        var spec = Self.domain(.userMode(hostPort: 18443, guestPort: 8443))
        spec.guestForwards = [GuestForward(guestPort: 8443, targetHost: "127.0.0.11", targetPort: 8443)]
        let xml = try renderer.render(spec)
        #expect(try Self.validate(xml, as: "domain").status == 0, "\(xml)")
        #expect(
            xml.contains(
                "restrict=on,hostfwd=tcp:127.0.0.1:18443-:8443,guestfwd=tcp:10.0.2.100:8443-cmd:socat - TCP:127.0.0.11:8443'"
            ),
            "\(xml)"
        )
        // The target lands in a QEMU option and a shell command: nothing but a host name or address passes.
        for bad in ["127.0.0.1,hostfwd=tcp::22-:22", "host; rm -rf /", "", "a b"] {
            spec.guestForwards = [GuestForward(guestPort: 8443, targetHost: bad, targetPort: 8443)]
            #expect(throws: TemplateError.self) { try renderer.render(spec) }
        }
        spec.guestForwards = [GuestForward(guestPort: 0, targetHost: "127.0.0.11", targetPort: 8443)]
        #expect(throws: TemplateError.self) { try renderer.render(spec) }
        var bridged = Self.domain(.libvirtNetwork("appliances"))
        bridged.guestForwards = [GuestForward(guestPort: 8443, targetHost: "127.0.0.11", targetPort: 8443)]
        #expect(throws: TemplateError.self) { try renderer.render(bridged) }
    }

    @Test func volumeAndNetworkXMLAreValid() throws {
        let renderer = try ApplianceTemplates(directory: Self.templates)
        let overlay = try renderer.render(
            VolumeSpec(
                name: "appliance-01-data.qcow2",
                capacityBytes: 1 << 30,
                backingPath: "/var/lib/appliance/base.qcow2"
            )
        )
        #expect(try Self.validate(overlay, as: "storagevol").status == 0, "\(overlay)")
        #expect(overlay.contains("<backingStore>"))
        let plain = try renderer.render(VolumeSpec(name: "scratch", capacityBytes: 1 << 30))
        #expect(try Self.validate(plain, as: "storagevol").status == 0)
        #expect(!plain.contains("backingStore"))
        let raw = try renderer.render(VolumeSpec(name: "vmlinuz", capacityBytes: 8 << 20, format: "raw"))
        #expect(try Self.validate(raw, as: "storagevol").status == 0)
        #expect(raw.contains("<format type='raw'/>"))
        #expect(throws: TemplateError.self) {
            try renderer.render(VolumeSpec(name: "v", capacityBytes: 1 << 30, backingPath: "/b", format: "raw"))
        }
        let nat = try renderer.render(
            NetworkSpec(
                name: "appliances",
                mode: .nat(
                    gateway: "10.77.0.1",
                    netmask: "255.255.255.0",
                    dhcpStart: "10.77.0.10",
                    dhcpEnd: "10.77.0.99"
                )
            )
        )
        #expect(try Self.validate(nat, as: "network").status == 0, "\(nat)")
        let bridge = try renderer.render(NetworkSpec(name: "lan", mode: .bridge("br0")))
        #expect(try Self.validate(bridge, as: "network").status == 0, "\(bridge)")
    }

    @Test func badValuesAreRefusedBeforeRendering() throws {
        let renderer = try ApplianceTemplates(directory: Self.templates)
        var spec = Self.domain(.userMode(hostPort: 18443, guestPort: 443))
        spec.name = "evil'/><script"
        #expect(throws: TemplateError.self) { try renderer.render(spec) }
        spec = Self.domain(.userMode(hostPort: 18443, guestPort: 443))
        spec.memoryMiB = 64
        #expect(throws: TemplateError.self) { try renderer.render(spec) }
        spec = Self.domain(.userMode(hostPort: 18443, guestPort: 443))
        spec.kernel = "relative/vmlinuz"
        #expect(throws: TemplateError.self) { try renderer.render(spec) }
        spec = Self.domain(.userMode(hostPort: 70_000, guestPort: 443))
        #expect(throws: TemplateError.self) { try renderer.render(spec) }
        #expect(throws: TemplateError.self) { try renderer.render(VolumeSpec(name: "v", capacityBytes: 10)) }
        // A value with XML characters that passes the checks (the command line) is escaped, not interpreted.
        spec = Self.domain(.userMode(hostPort: 18443, guestPort: 443))
        spec.cmdline = "console=ttyS0 x=<a&b>"
        let xml = try renderer.render(spec)
        #expect(xml.contains("x=&lt;a&amp;b&gt;"))
        #expect(try Self.validate(xml, as: "domain").status == 0)
    }

    @Test func missingTemplatesDirectoryIsAClearError() {
        #expect(throws: TemplateError.self) {
            _ = try ApplianceTemplates(directory: URL(fileURLWithPath: "/nonexistent"))
        }
    }
}
