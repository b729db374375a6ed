import Foundation
import Testing

@testable import ApplianceImage

/// A minimal relocatable ELF64 file whose only contents are a `.modinfo` section, like a kernel module's.
private func moduleFile(modinfo: [String]) -> Data {
    var modinfoBytes = Data()
    for field in modinfo {
        modinfoBytes += Data(field.utf8) + Data([0])
    }
    let names = Data("\0.modinfo\0.shstrtab\0".utf8)
    let modinfoOffset = 64
    let namesOffset = modinfoOffset + modinfoBytes.count
    let tableOffset = (namesOffset + names.count + 7) / 8 * 8

    func little(_ value: Int, _ size: Int) -> Data {
        Data((0..<size).map { UInt8((value >> (8 * $0)) & 0xFF) })
    }
    var header = Data([0x7F, 0x45, 0x4C, 0x46, 2, 1, 1]) + Data(count: 9)
    header += little(1, 2) + little(0x3E, 2) + little(1, 4) + little(0, 8) + little(0, 8)
    header += little(tableOffset, 8) + little(0, 4) + little(64, 2) + little(0, 2) + little(0, 2)
    header += little(64, 2) + little(3, 2) + little(2, 2)

    func section(name: Int, type: Int, offset: Int, size: Int) -> Data {
        little(name, 4) + little(type, 4) + little(0, 8) + little(0, 8) + little(offset, 8) + little(size, 8)
            + little(0, 4) + little(0, 4) + little(1, 8) + little(0, 8)
    }
    var file = header + modinfoBytes + names
    file += Data(count: tableOffset - file.count)
    file += Data(count: 64)
    file += section(name: 1, type: 1, offset: modinfoOffset, size: modinfoBytes.count)
    file += section(name: 10, type: 3, offset: namesOffset, size: names.count)
    return file
}

@Suite("Kernel modules")
struct KernelModulesTests {
    /// A `lib/modules/<version>` tree with the given modules and built-in list.
    private func moduleTree(_ modules: [String: [String]], builtin: [String]) throws -> URL {
        let root = try ExternalTool.temporaryDirectory("modules")
        let drivers = root.appendingPathComponent("kernel/drivers", isDirectory: true)
        try FileManager.default.createDirectory(at: drivers, withIntermediateDirectories: true)
        for (name, modinfo) in modules {
            try moduleFile(modinfo: ["license=GPL"] + modinfo + ["name=\(name)"])
                .write(to: drivers.appendingPathComponent(name.replacingOccurrences(of: "_", with: "-") + ".ko"))
        }
        try Data(builtin.map { "kernel/fs/\($0).ko\n" }.joined().utf8)
            .write(to: root.appendingPathComponent("modules.builtin"))
        return root
    }

    @Test("dependencies from .modinfo load first, built-in modules not at all")
    func loadOrderFollowsDependencies() throws {
        let root = try moduleTree(
            [
                "virtio_ring": ["depends="],
                "virtio": ["depends=virtio_ring"],
                "virtio_pci": ["depends=virtio_ring,virtio"],
                "failover": ["depends="],
                "net_failover": ["depends=failover"],
                "virtio_net": ["depends=virtio_ring,virtio,net_failover"],
                "fancy_fs": ["depends=jbd2", "softdep=pre: crc32c post: nothing"],
                "crc32c": ["depends="],
            ],
            builtin: ["jbd2", "ext4"]
        )
        defer { try? FileManager.default.removeItem(at: root) }
        let modules = try KernelModules(directory: root)
        #expect(modules.isAvailable("ext4"))
        #expect(!modules.isAvailable("btrfs"))
        #expect(
            try modules.loadOrder(for: ["virtio_pci", "virtio-net", "ext4"])
                == ["virtio_ring", "virtio", "virtio_pci", "failover", "net_failover", "virtio_net"]
        )
        #expect(try modules.loadOrder(for: ["fancy_fs"]) == ["crc32c", "fancy_fs"])
    }

    @Test("a module that is neither shipped nor built in is an error that names it")
    func missingModuleIsAnError() throws {
        let root = try moduleTree(["virtio_net": ["depends=virtio_ring"]], builtin: [])
        defer { try? FileManager.default.removeItem(at: root) }
        let modules = try KernelModules(directory: root)
        let error = try #require(throws: ImageError.self) { try modules.loadOrder(for: ["virtio_net"]) }
        #expect(error.code == .invalidInput)
        #expect(error.message.contains("virtio_ring"))
    }

    @Test("a file that is not ELF has no module information")
    func notELF() throws {
        #expect(ELFSections(Data("hello".utf8)).section(named: ".modinfo") == nil)
        let section = ELFSections(moduleFile(modinfo: ["depends=a,b"])).section(named: ".modinfo")
        #expect(section.map { String(decoding: $0, as: UTF8.self) } == "depends=a,b\0")
    }
}
