import Foundation
import Testing

@testable import ApplianceImage

@Suite("Errors say what to do")
struct ImageErrorTests {
    /// apt options that make it see no package lists at all, as on a fresh machine before `apt-get update`.
    private func emptyPackageLists() throws -> (options: [String], directory: URL) {
        let directory = try ExternalTool.temporaryDirectory("lists")
        try FileManager.default.createDirectory(
            at: directory.appendingPathComponent("partial"),
            withIntermediateDirectories: true
        )
        let options = [
            "-o", "Dir::State::Lists=\(directory.path)", "-o", "Dir::Cache::pkgcache=", "-o",
            "Dir::Cache::srcpkgcache=",
        ]
        return (options, directory)
    }

    @Test("empty package lists: the cache key asks for apt-get update")
    func emptyListsAskForUpdate() throws {
        let lists = try emptyPackageLists()
        defer { try? FileManager.default.removeItem(at: lists.directory) }
        var recipe = ImageRecipe(applianced: URL(fileURLWithPath: "/bin/sh"), cacheRoot: lists.directory)
        recipe.debian.aptOptions = lists.options
        let error = try #require(throws: ImageError.self) { try recipe.cacheKey() }
        #expect(error.code == .packageLookup)
        #expect(error.message.contains("run apt-get update"))
    }

    @Test("empty package lists: a download asks for apt-get update")
    func emptyListsDownloadAsksForUpdate() throws {
        let lists = try emptyPackageLists()
        defer { try? FileManager.default.removeItem(at: lists.directory) }
        let archive = DebianArchive(aptOptions: lists.options)
        let error = try #require(throws: ImageError.self) {
            try archive.download(DebianPackage(name: "busybox-static", version: "1:1.0-1"), into: lists.directory)
        }
        #expect(error.code == .download)
        #expect(error.message.contains("run apt-get update"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: lists.directory.path).sorted() == ["partial"])
    }

    @Test("a missing tool names the package to install")
    func missingToolNamesPackage() {
        let tool = HostTool(name: "no-such-tool-\(UUID().uuidString)", package: "some-package")
        let error = #expect(throws: ImageError.self) { try tool.require() }
        #expect(error?.code == .missingTool)
        #expect(error?.message.contains("apt-get install some-package") == true)
    }

    @Test("a missing applianced binary says to build it")
    func missingApplianced() throws {
        let root = try ExternalTool.temporaryDirectory("missing")
        defer { try? FileManager.default.removeItem(at: root) }
        let recipe = ImageRecipe(applianced: root.appendingPathComponent("applianced"), cacheRoot: root)
        let error = try #require(throws: ImageError.self) { try recipe.build() }
        #expect(error.code == .invalidInput)
        #expect(error.message.contains("build it first"))
    }

    @Test("a failing tool's standard error is in the message")
    func toolFailureCarriesStandardError() {
        let error = #expect(throws: ImageError.self) {
            try Command.run(.dpkgDeb, ["-x", "/nonexistent.deb", "/nonexistent"])
        }
        #expect(error?.code == .toolFailed)
        #expect(error?.message.contains("dpkg-deb") == true)
        #expect(error?.message.contains("nonexistent.deb") == true)
    }
}
