import Foundation

/// FileManager calls with their errors turned into `ImageError.fileSystem` naming the path.
enum FileSystem {
    /// Creates `url` and its missing parents, `url` with `permissions`. Each directory it creates gets
    /// `intermediates` when given (the image tree: it must not depend on the umask, and appliancectl runs with
    /// 077), else what the umask leaves.
    static func createDirectory(_ url: URL, permissions: Int? = nil, intermediates: Int? = nil) throws {
        do {
            var missing: [URL] = []
            var next = url.standardizedFileURL
            while !FileManager.default.fileExists(atPath: next.path) && next.path != "/" {
                missing.append(next)
                next = next.deletingLastPathComponent()
            }
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            for created in missing.reversed() {
                guard let intermediates else { break }
                try FileManager.default.setAttributes([.posixPermissions: intermediates], ofItemAtPath: created.path)
            }
            if let permissions {
                try FileManager.default.setAttributes([.posixPermissions: permissions], ofItemAtPath: url.path)
            }
        } catch {
            throw ImageError(code: .fileSystem, message: "cannot create directory \(url.path): \(error)")
        }
    }

    static func write(_ data: Data, to url: URL, permissions: Int = 0o644) throws {
        do {
            try data.write(to: url)
            try FileManager.default.setAttributes([.posixPermissions: permissions], ofItemAtPath: url.path)
        } catch {
            throw ImageError(code: .fileSystem, message: "cannot write \(url.path): \(error)")
        }
    }

    static func read(_ url: URL) throws -> Data {
        do {
            return try Data(contentsOf: url)
        } catch {
            throw ImageError(code: .fileSystem, message: "cannot read \(url.path): \(error)")
        }
    }

    /// Copies the file `source` points to (following symbolic links) to `destination`, keeping its permissions.
    static func copyFile(_ source: URL, to destination: URL, permissions: Int? = nil) throws {
        let resolved = source.resolvingSymlinksInPath()
        do {
            try FileManager.default.copyItem(at: resolved, to: destination)
            // The source's mode unless told otherwise, whatever the umask let the copy have.
            let source = try FileManager.default.attributesOfItem(atPath: resolved.path)
            if let mode = permissions ?? (source[.posixPermissions] as? Int) {
                try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: destination.path)
            }
        } catch {
            throw ImageError(code: .fileSystem, message: "cannot copy \(source.path) to \(destination.path): \(error)")
        }
    }

    static func symlink(_ url: URL, to target: String) throws {
        do {
            try FileManager.default.createSymbolicLink(atPath: url.path, withDestinationPath: target)
        } catch {
            throw ImageError(code: .fileSystem, message: "cannot create symbolic link \(url.path): \(error)")
        }
    }

    static func move(_ source: URL, to destination: URL) throws {
        do {
            try FileManager.default.moveItem(at: source, to: destination)
        } catch {
            throw ImageError(code: .fileSystem, message: "cannot move \(source.path) to \(destination.path): \(error)")
        }
    }

    static func contents(of directory: URL) throws -> [URL] {
        do {
            return try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
                .sorted { $0.lastPathComponent < $1.lastPathComponent }
        } catch {
            throw ImageError(code: .fileSystem, message: "cannot list \(directory.path): \(error)")
        }
    }

    /// Size in bytes of a file, or nil if there is none.
    static func size(_ url: URL) -> Int64? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
            (attributes[.type] as? FileAttributeType) == .typeRegular,
            let size = attributes[.size] as? NSNumber
        else {
            return nil
        }
        return size.int64Value
    }

    static func remove(_ url: URL) {
        try? FileManager.default.removeItem(at: url)
    }
}
