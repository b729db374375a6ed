import Foundation
import Testing

@testable import ApplianceImage

@Suite("Guest scripts")
struct GuestScriptsTests {
    static let scripts: [(String, String)] = [
        ("init", GuestScripts.initramfsInit),
        ("appliance-init", GuestScripts.applianceInit),
        ("power button", GuestScripts.powerButton),
        ("udhcpc", GuestScripts.udhcpcScript),
        ("bare init", GuestScripts.bareInit),
    ]

    @Test("every script is valid POSIX shell", arguments: scripts.map(\.0))
    func scriptParses(name: String) throws {
        let text = try #require(Self.scripts.first { $0.0 == name }?.1)
        #expect(text.hasPrefix("#!/bin/sh\n"))
        let result = try ExternalTool.run("sh", ["-n"], input: Data(text.utf8))
        #expect(result.status == 0, "\(name): \(result.stderr)")
    }

    @Test("the probe check comes before anything that needs drivers or the disk")
    func probeComesFirst() throws {
        let script = GuestScripts.initramfsInit
        let probe = try #require(script.range(of: "APPLIANCE-PROBE-OK"))
        let insmod = try #require(script.range(of: "insmod"))
        #expect(probe.lowerBound < insmod.lowerBound)
        #expect(script.contains("poweroff -f"))
    }

    @Test("the command line helpers add only what is given")
    func commandLines() {
        let file = ImageManifest.File(name: "x", size: 0, sha256: "")
        let manifest = ImageManifest(
            key: "k",
            recipeVersion: 1,
            kernelPackage: .init(name: "linux-image-x", version: "1"),
            kernelVersion: "x",
            busyboxPackage: .init(name: "busybox-static", version: "1"),
            appliancedSHA256: "",
            kernel: file,
            initrd: file,
            disk: file,
            bareInitrd: file,
            diskVirtualSize: 0,
            modules: [],
            baseCommandLine: "console=ttyS0",
            guestPort: 443
        )
        let image = BuiltImage(directory: URL(fileURLWithPath: "/cache/k"), manifest: manifest)
        #expect(image.commandLine() == "console=ttyS0")
        #expect(
            image.commandLine(applianceId: "u", hostname: "h", port: 8443)
                == "console=ttyS0 appliance.id=u appliance.hostname=h appliance.port=8443"
        )
        #expect(image.probeCommandLine == "console=ttyS0 appliance.probe=1")
        #expect(image.kernelURL.path == "/cache/k/x")
    }
}
