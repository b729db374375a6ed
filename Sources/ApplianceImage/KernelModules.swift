import Foundation

/// The loadable modules of an unpacked Debian kernel package, and the order to `insmod` them in.
///
/// The package ships no `modules.dep` (depmod runs at install time, and we never install), so dependencies come from
/// each module's own `.modinfo` section: `depends=` and the `pre:` part of `softdep=`. Modules listed in
/// `modules.builtin` are part of the kernel image and need no loading.
struct KernelModules {
    /// `lib/modules/<version>` in the unpacked package.
    let directory: URL
    /// Module name (dashes as underscores) to its `.ko` file.
    let files: [String: URL]
    /// Names of the modules built into the kernel image.
    let builtin: Set<String>

    init(directory: URL) throws {
        self.directory = directory
        var files: [String: URL] = [:]
        let kernelDirectory = directory.appendingPathComponent("kernel", isDirectory: true)
        guard
            let enumerator = FileManager.default.enumerator(
                at: kernelDirectory,
                includingPropertiesForKeys: nil
            )
        else {
            throw ImageError(code: .fileSystem, message: "cannot list kernel modules in \(kernelDirectory.path)")
        }
        for case let url as URL in enumerator where url.pathExtension == "ko" {
            files[Self.moduleName(url.lastPathComponent)] = url
        }
        guard !files.isEmpty else {
            throw ImageError(
                code: .invalidInput,
                message: "no kernel modules (*.ko) in \(kernelDirectory.path); compressed modules are not supported"
            )
        }
        self.files = files
        let builtinList =
            (try? String(contentsOf: directory.appendingPathComponent("modules.builtin"), encoding: .utf8))
        builtin = Set(
            (builtinList ?? "").split(separator: "\n").map {
                Self.moduleName(String($0.split(separator: "/").last ?? ""))
            }
        )
    }

    /// `virtio-net.ko` and `virtio_net` both become `virtio_net`, the name the kernel uses.
    static func moduleName(_ fileOrName: String) -> String {
        var name = fileOrName
        if name.hasSuffix(".ko") {
            name.removeLast(3)
        }
        return name.replacingOccurrences(of: "-", with: "_")
    }

    /// Whether `name` is available at all: built in or as a loadable module.
    func isAvailable(_ name: String) -> Bool {
        let name = Self.moduleName(name)
        return builtin.contains(name) || files[name] != nil
    }

    /// The modules to load, dependencies first, for `wanted` (built-in ones left out).
    ///
    /// - Throws: `ImageError.invalidInput` when a wanted module is neither built in nor shipped.
    func loadOrder(for wanted: [String]) throws -> [String] {
        var order: [String] = []
        var visiting: Set<String> = []
        var done: Set<String> = []

        func visit(_ rawName: String, required: Bool) throws {
            let name = Self.moduleName(rawName)
            if done.contains(name) || builtin.contains(name) || visiting.contains(name) {
                return
            }
            guard let file = files[name] else {
                if required {
                    throw ImageError(
                        code: .invalidInput,
                        message: "the kernel package has no module \(name) and does not build it in"
                    )
                }
                return
            }
            visiting.insert(name)
            let info = try Self.modinfo(of: file)
            for dependency in info.depends {
                try visit(dependency, required: true)
            }
            for dependency in info.softPre {
                try visit(dependency, required: false)
            }
            visiting.remove(name)
            done.insert(name)
            order.append(name)
        }

        for name in wanted {
            try visit(name, required: true)
        }
        return order
    }

    /// The files of `names` (from `loadOrder(for:)`), in the same order.
    func files(of names: [String]) -> [Initramfs.Module] {
        names.compactMap { name in files[name].map { Initramfs.Module(name: name, file: $0) } }
    }

    struct ModuleInfo {
        var depends: [String] = []
        var softPre: [String] = []
    }

    /// Reads `depends=` and `softdep=pre:` from the ELF `.modinfo` section of a module file.
    static func modinfo(of file: URL) throws -> ModuleInfo {
        let data: Data
        do {
            data = try Data(contentsOf: file)
        } catch {
            throw ImageError(code: .fileSystem, message: "cannot read \(file.path): \(error)")
        }
        guard let section = ELFSections(data).section(named: ".modinfo") else {
            throw ImageError(code: .invalidInput, message: "\(file.path) is not an ELF64 kernel module")
        }
        var info = ModuleInfo()
        for field in section.split(separator: 0) {
            let text = String(decoding: field, as: UTF8.self)
            if text.hasPrefix("depends=") {
                info.depends = text.dropFirst("depends=".count).split(separator: ",").map(String.init)
            } else if text.hasPrefix("softdep=") {
                // "softdep=pre: crc32c post: foo"
                var inPre = false
                for word in text.dropFirst("softdep=".count).split(separator: " ") {
                    if word.hasSuffix(":") {
                        inPre = word == "pre:"
                    } else if inPre {
                        info.softPre.append(String(word))
                    }
                }
            }
        }
        return info
    }
}

/// Just enough of ELF64 (little-endian) to find a section's bytes by name.
struct ELFSections {
    private let data: Data

    init(_ data: Data) {
        self.data = data
    }

    private func integer(at offset: Int, size: Int) -> Int? {
        guard offset >= 0, offset + size <= data.count else {
            return nil
        }
        var value = 0
        for index in (0..<size).reversed() {
            value = value << 8 | Int(data[data.startIndex + offset + index])
        }
        return value
    }

    func section(named wanted: String) -> Data? {
        guard data.count > 64, data.prefix(4) == Data([0x7F, 0x45, 0x4C, 0x46]), data[data.startIndex + 4] == 2,
            data[data.startIndex + 5] == 1,
            let tableOffset = integer(at: 0x28, size: 8),
            let entrySize = integer(at: 0x3A, size: 2),
            let count = integer(at: 0x3C, size: 2),
            let namesIndex = integer(at: 0x3E, size: 2),
            namesIndex < count
        else {
            return nil
        }
        func header(_ index: Int) -> (name: Int, offset: Int, size: Int)? {
            let base = tableOffset + index * entrySize
            guard let name = integer(at: base, size: 4), let offset = integer(at: base + 0x18, size: 8),
                let size = integer(at: base + 0x20, size: 8), offset + size <= data.count
            else {
                return nil
            }
            return (name, offset, size)
        }
        guard let names = header(namesIndex) else {
            return nil
        }
        for index in 0..<count {
            guard let entry = header(index) else {
                continue
            }
            let nameStart = names.offset + entry.name
            guard nameStart < names.offset + names.size else {
                continue
            }
            let nameBytes = data[(data.startIndex + nameStart)...].prefix(while: { $0 != 0 })
            if String(decoding: nameBytes, as: UTF8.self) == wanted {
                let start = data.startIndex + entry.offset
                return data[start..<(start + entry.size)]
            }
        }
        return nil
    }
}
