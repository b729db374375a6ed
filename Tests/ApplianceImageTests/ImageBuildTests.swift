import Foundation
import Testing

@testable import ApplianceImage

/// Builds and boots share one parent suite that runs its tests one at a time: a build and a TCG boot each take a
/// whole core, and the measured boot times should not include someone else's build.
@Suite("Appliance image", .serialized)
struct ImageTests {}

extension ImageTests {
    @Suite("Build and cache")
    struct Build {
        @Test("a build writes image.json and files that match it")
        func buildWritesManifestAndFiles() async throws {
            let built = try await ImageFixture.shared.image()
            let image = built.image
            print("cold build: \(String(format: "%.1f", built.seconds)) s")
            for line in built.progress {
                print("  \(line)")
            }

            #expect(image.directory.lastPathComponent == image.key)
            #expect(image.key.count == 64)
            let decoded = try JSONDecoder().decode(
                ImageManifest.self,
                from: try Data(contentsOf: image.directory.appendingPathComponent("image.json"))
            )
            #expect(decoded == image.manifest)
            #expect(image.manifest.kernelPackage.name.hasPrefix("linux-image-"))
            #expect(image.manifest.kernelPackage.name.hasSuffix("-cloud-amd64"))
            #expect(image.kernelVersion == String(image.manifest.kernelPackage.name.dropFirst("linux-image-".count)))
            #expect(image.manifest.busyboxPackage.name == "busybox-static")
            #expect(image.baseCommandLine.contains("console=ttyS0"))
            #expect(image.guestPort == 443)

            // The files are what image.json says, checked with coreutils rather than our own hashing.
            for file in image.manifest.files {
                let url = image.url(of: file)
                let size = try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber
                #expect(size?.int64Value == file.size, "\(file.name)")
                let sum = try ExternalTool.run("sha256sum", [url.path])
                #expect(sum.text.hasPrefix(file.sha256 + " "), "\(file.name)")
                print("\(file.name): \(file.size) bytes")
            }
            let applianced = try ExternalTool.run("sha256sum", [try appliancedBinary().path])
            #expect(applianced.text.hasPrefix(image.appliancedSHA256 + " "))

            // The disk is a qcow2 file of the recorded virtual size that holds only the used blocks.
            let info = try ExternalTool.run("qemu-img", ["info", "--output=json", image.diskURL.path])
            let json = try #require(try JSONSerialization.jsonObject(with: info.stdout) as? [String: Any])
            #expect(json["format"] as? String == "qcow2")
            #expect((json["virtual-size"] as? NSNumber)?.int64Value == image.manifest.diskVirtualSize)
            #expect(image.manifest.disk.size < image.manifest.diskVirtualSize / 2)

            // Modules come after what they depend on (the order that works with busybox insmod).
            let modules = image.manifest.modules
            for (before, after) in [
                ("virtio_ring", "virtio"), ("virtio", "virtio_pci"), ("virtio_pci_modern_dev", "virtio_pci"),
                ("failover", "net_failover"), ("net_failover", "virtio_net"), ("virtio", "virtio_blk"),
            ] {
                let first = try #require(modules.firstIndex(of: before), "\(before) missing from \(modules)")
                let second = try #require(modules.firstIndex(of: after), "\(after) missing from \(modules)")
                #expect(first < second, "\(before) must load before \(after)")
            }
        }

        @Test("a second build with the same inputs is a cache hit")
        func secondBuildIsCacheHit() async throws {
            let cold = try await ImageFixture.shared.image()
            let recipe = ImageRecipe(applianced: try appliancedBinary(), cacheRoot: testCacheRoots[0])
            let key = try recipe.cacheKey()
            #expect(key == cold.image.key)
            let cached = try timedBuild(recipe)
            print("cached build: \(String(format: "%.1f", cached.seconds)) s")
            #expect(cached.image == cold.image)
            #expect(cached.progress.contains { $0.hasPrefix("Cached image found") })
            #expect(!cached.progress.contains { $0.hasPrefix("Making disk.qcow2") })
            #expect(cached.seconds < cold.seconds)
            #expect(try recipe.cachedImage() == cold.image)
        }

        @Test("a cache entry whose files do not match image.json is not used")
        func damagedEntryIsNotUsed() async throws {
            let built = try await ImageFixture.shared.image().image
            let root = try ExternalTool.temporaryDirectory("damaged")
            defer { try? FileManager.default.removeItem(at: root) }
            let entry = root.appendingPathComponent(built.key, isDirectory: true)
            try FileManager.default.createDirectory(at: entry, withIntermediateDirectories: true)
            let recipe = ImageRecipe(applianced: try appliancedBinary(), cacheRoot: root)
            #expect(try recipe.validImage(key: built.key) == nil)

            try FileManager.default.copyItem(
                at: built.directory.appendingPathComponent("image.json"),
                to: entry.appendingPathComponent("image.json")
            )
            #expect(try recipe.validImage(key: built.key) == nil, "files missing")

            // Hard links: the same files, without copying 230 MB.
            for file in built.manifest.files {
                try FileManager.default.linkItem(at: built.url(of: file), to: entry.appendingPathComponent(file.name))
            }
            #expect(try recipe.validImage(key: built.key)?.manifest == built.manifest)

            // Same size, other bytes: only the SHA-256 tells.
            let initrd = entry.appendingPathComponent(built.manifest.initrd.name)
            try FileManager.default.removeItem(at: initrd)
            try Data(count: Int(built.manifest.initrd.size)).write(to: initrd)
            #expect(try recipe.validImage(key: built.key) == nil, "initrd.img changed")
        }

        @Test("two builds from the same inputs give identical bytes")
        func buildsAreReproducible() async throws {
            let first = try await ImageFixture.shared.image().image
            let recipe = ImageRecipe(applianced: try appliancedBinary(), cacheRoot: testCacheRoots[1])
            let second = try timedBuild(recipe)
            defer { try? FileManager.default.removeItem(at: testCacheRoots[1]) }
            print("second cold build: \(String(format: "%.1f", second.seconds)) s")
            #expect(second.image.key == first.key)
            #expect(second.image.directory != first.directory)
            for (a, b) in zip(first.manifest.files, second.image.manifest.files) {
                #expect(a == b, "\(a.name) differs between builds")
            }
        }
    }
}
