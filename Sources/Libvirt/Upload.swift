import CLibvirt

#if canImport(Glibc)
    import Glibc
#endif

extension LibvirtConnection {
    /// Uploads the local file at `path` into an existing volume (`virStorageVolUpload` over a `virStream`), in 1 MiB
    /// pieces so memory stays flat. Works on remote hypervisors too: the bytes travel over the libvirt connection.
    /// `progress` gets the bytes sent so far. The volume must be at least as large as the file.
    public func uploadVolume(
        pool poolName: String,
        name volumeName: String,
        from path: String,
        progress: (UInt64) -> Void = { _ in }
    ) throws {
        let operation = "upload \(path) into volume '\(volumeName)' of storage pool '\(poolName)'"
        let descriptor = Glibc.open(path, O_RDONLY)
        guard descriptor >= 0 else {
            throw LibvirtError(
                code: .invalidArgument,
                message: "could not \(operation): cannot open the file (errno \(errno)); check the path"
            )
        }
        defer { _ = Glibc.close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw LibvirtError(code: .invalidArgument, message: "could not \(operation): cannot stat the file")
        }
        let length = UInt64(info.st_size)
        let connection = try connection(operation)
        let pool = try poolPointer(poolName, operation, connection: connection)
        guard let volumePointer = virStorageVolLookupByName(pool.pointer, volumeName) else {
            throw LibvirtError.last(operation)
        }
        let volume = StorageVolumeHandle(volumePointer, pool: pool)
        guard let streamPointer = virStreamNew(connection.pointer, 0) else {
            throw LibvirtError.last(operation)
        }
        let stream = StreamHandle(streamPointer, connection: connection)
        try withExtendedLifetime((volume, stream)) {
            guard virStorageVolUpload(volume.pointer, stream.pointer, 0, length, 0) == 0 else {
                throw LibvirtError.last(operation)
            }
            let bufferSize = 1 << 20
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 16)
            defer { buffer.deallocate() }
            var sent: UInt64 = 0
            while sent < length {
                let count = read(descriptor, buffer, bufferSize)
                guard count > 0 else {
                    virStreamAbort(stream.pointer)
                    throw LibvirtError(
                        code: .invalidArgument,
                        message: "could not \(operation): the file ended early or could not be read (errno \(errno))"
                    )
                }
                var offset = 0
                while offset < count {
                    let written = virStreamSend(
                        stream.pointer,
                        buffer.advanced(by: offset).assumingMemoryBound(to: CChar.self),
                        count - offset
                    )
                    guard written > 0 else {
                        let error = LibvirtError.last(operation)
                        virStreamAbort(stream.pointer)
                        throw error
                    }
                    offset += Int(written)
                }
                sent += UInt64(count)
                progress(sent)
            }
            guard virStreamFinish(stream.pointer) == 0 else {
                throw LibvirtError.last(operation)
            }
        }
    }

    /// The pool handle for `name`, failing with libvirt's error.
    private func poolPointer(
        _ name: String,
        _ operation: String,
        connection: ConnectionHandle
    ) throws -> StoragePoolHandle {
        guard let pointer = virStoragePoolLookupByName(connection.pointer, name) else {
            throw LibvirtError.last(operation)
        }
        return StoragePoolHandle(pointer, connection: connection)
    }

    /// Whether the hypervisor offers domains of `virtType` ("kvm" or "qemu") for x86_64 q35 guests
    /// (`virConnectGetDomainCapabilities`). "kvm" being offered does not prove a guest runs: probe with a boot.
    public func offersDomainType(_ virtType: String) throws -> Bool {
        let connection = try connection("read the domain capabilities")
        guard let xml = virConnectGetDomainCapabilities(connection.pointer, nil, "x86_64", "q35", virtType, 0) else {
            return false
        }
        shim_free(xml)
        return true
    }
}
