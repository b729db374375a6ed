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

    @Test("vendor keys on the kernel command line become PEM files passed to applianced with --vendor-key")
    func vendorKeysFromCommandLine() throws {
        let directory = try ExternalTool.temporaryDirectory("vendorkeys")
        defer { try? FileManager.default.removeItem(at: directory) }
        // The script's own argument parsing and key writing, against a command line file and a key directory of
        // this test's, stopping where applianced would start: it prints the arguments it would pass.
        let script = GuestScripts.applianceInit
        let start = try #require(script.range(of: "hostname=\"\"\n"))
        let end = try #require(script.range(of: "while [ ! -e /run/appliance-poweroff ]"))
        let loop = try #require(script.range(of: "hostname \"${hostname:-appliance}\""))
        let network = try #require(script.range(of: "set -- --data-dir"))
        let fragment =
            String(script[start.lowerBound..<loop.lowerBound]) + "address=10.0.2.15\n"
            + String(script[network.lowerBound..<end.lowerBound]) + "printf '%s\\n' \"$@\"\n"
        let keyA = "MCowBQYDK2VwAyEAaaaa+/bbbb="
        let keyB = "MCowBQYDK2VwAyEAcccc"
        try "console=ttyS0 appliance.vendorkey=\(keyA) appliance.port=8443 appliance.vendorkey=\(keyB)\n"
            .write(to: directory.appendingPathComponent("cmdline"), atomically: true, encoding: .utf8)
        let text =
            "#!/bin/sh\nset -e\n"
            + fragment
            .replacingOccurrences(of: "/proc/cmdline", with: directory.appendingPathComponent("cmdline").path)
            .replacingOccurrences(of: "/etc/appliance", with: directory.appendingPathComponent("etc").path)
            .replacingOccurrences(of: "@PORT@", with: "443")
        let result = try ExternalTool.run("sh", ["-s"], input: Data(text.utf8))
        #expect(result.status == 0, "\(result.stderr)")
        let etc = directory.appendingPathComponent("etc").path
        let arguments = result.text.split(separator: "\n").map(String.init)
        #expect(arguments.contains("10.0.2.15:8443"))
        #expect(arguments.filter { $0 == "--vendor-key" }.count == 2)
        #expect(arguments.contains("\(etc)/vendor-1.pem") && arguments.contains("\(etc)/vendor-2.pem"))
        let first = try String(contentsOfFile: "\(etc)/vendor-1.pem", encoding: .utf8)
        #expect(first == "-----BEGIN PUBLIC KEY-----\n\(keyA)\n-----END PUBLIC KEY-----\n")
        let second = try String(contentsOfFile: "\(etc)/vendor-2.pem", encoding: .utf8)
        #expect(second.contains(keyB))
    }
}
