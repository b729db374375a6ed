import ApplianceImage
import Foundation
import Testing

/// The shape of applianced's `/health` answer that these tests read.
private struct Health: Decodable {
    var applianceId: String
    var status: String
}

extension ImageTests {
    @Suite(
        "Boot with QEMU (TCG)",
        .enabled(if: QEMUGuest.isAvailable, "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
    )
    struct Boot {
        @Test("the appliance answers /health with its id, powers off on the ACPI button and keeps its data")
        func applianceBootsAndKeepsItsData() async throws {
            let image = try await ImageFixture.shared.image().image
            let directory = try ExternalTool.temporaryDirectory("boot")
            defer { try? FileManager.default.removeItem(at: directory) }
            let overlay = directory.appendingPathComponent("overlay.qcow2")
            let create = try ExternalTool.run(
                "qemu-img",
                ["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", image.diskURL.path, overlay.path, "4G"]
            )
            try #require(create.status == 0, "\(create.stderr)")

            let id = UUID().uuidString.lowercased()
            let port = try freeLocalPort()
            let first = try QEMUGuest(
                kernel: image.kernelURL,
                initrd: image.initrdURL,
                commandLine: image.commandLine(applianceId: id, hostname: "testvm"),
                disk: overlay,
                forward: (port, image.guestPort),
                directory: directory
            )
            let url = "https://127.0.0.1:\(port)/health"
            let body = try first.poll(url, timeout: 90) { (try? JSONDecoder().decode(Health.self, from: $0)) != nil }
            print(
                "appliance boot to /health (TCG): \(String(format: "%.1f", first.elapsed)) s, "
                    + "QEMU RSS \(first.residentMiB.map { "\($0) MiB" } ?? "unknown")"
            )
            let health = try JSONDecoder().decode(Health.self, from: body)
            #expect(health.applianceId == id)
            let console = first.serialText
            // The 4 GiB overlay is larger than the image's file system, which the guest grows at first boot.
            #expect(console.contains("appliance-init: root file system resized to fill /dev/vda"))
            #expect(console.contains(BuiltImage.networkMarker + "10.0.2.15"))
            #expect(console.contains(BuiltImage.startedMarker))

            // The ACPI power button (virsh shutdown) stops applianced and powers the guest off by itself.
            let pressed = Date()
            first.pressPowerButton()
            let exited = first.waitForExit(timeout: 60)
            #expect(exited, "QEMU still runs 60 s after the power button; console:\n\(first.serialText)")
            first.stop()
            print("power button to QEMU exit: \(String(format: "%.1f", Date().timeIntervalSince(pressed))) s")
            #expect(first.serialText.contains("appliance-init: applianced stopped (status 0)"))

            // Booting the same disk with another id: applianced keeps the id stored on the disk.
            let second = try QEMUGuest(
                kernel: image.kernelURL,
                initrd: image.initrdURL,
                commandLine: image.commandLine(applianceId: UUID().uuidString.lowercased(), hostname: "testvm"),
                disk: overlay,
                forward: (port, image.guestPort),
                directory: directory
            )
            defer { second.stop() }
            let again = try second.poll(url, timeout: 90) { (try? JSONDecoder().decode(Health.self, from: $0)) != nil }
            print("second boot to /health (TCG): \(String(format: "%.1f", second.elapsed)) s")
            #expect(try JSONDecoder().decode(Health.self, from: again).applianceId == id)
            #expect(!second.serialText.contains("resized"), "the file system already fills the disk")
        }

        @Test("a probe boot prints the marker and QEMU exits by itself")
        func probeBootPowersOff() async throws {
            let image = try await ImageFixture.shared.image().image
            let directory = try ExternalTool.temporaryDirectory("probe")
            defer { try? FileManager.default.removeItem(at: directory) }
            let guest = try QEMUGuest(
                kernel: image.kernelURL,
                initrd: image.initrdURL,
                commandLine: image.probeCommandLine,
                disk: nil,
                forward: nil,
                directory: directory
            )
            defer { guest.stop() }
            let exited = guest.waitForExit(timeout: 60)
            print("probe boot until QEMU exit (TCG): \(String(format: "%.1f", guest.elapsed)) s")
            #expect(exited, "QEMU did not exit within 60 s; console:\n\(guest.serialText)")
            let lines = guest.serialText.split(whereSeparator: \.isNewline).map(String.init)
            #expect(lines.contains(BuiltImage.probeMarker), "console:\n\(guest.serialText)")
        }

        @Test("the bare image serves its page on port 80")
        func bareImageServesPage() async throws {
            let image = try await ImageFixture.shared.image().image
            let directory = try ExternalTool.temporaryDirectory("bare")
            defer { try? FileManager.default.removeItem(at: directory) }
            let port = try freeLocalPort()
            let guest = try QEMUGuest(
                kernel: image.kernelURL,
                initrd: image.bareInitrdURL,
                commandLine: image.baseCommandLine,
                disk: nil,
                forward: (port, 80),
                directory: directory
            )
            defer { guest.stop() }
            let body = try guest.poll("http://127.0.0.1:\(port)/", timeout: 60) { _ in true }
            print(
                "bare boot to HTTP (TCG): \(String(format: "%.1f", guest.elapsed)) s, "
                    + "QEMU RSS \(guest.residentMiB.map { "\($0) MiB" } ?? "unknown")"
            )
            #expect(String(decoding: body, as: UTF8.self) == "bare ok\n")
            #expect(guest.serialText.contains(BuiltImage.bareMarker))
        }
    }
}
