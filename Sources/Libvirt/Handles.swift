import CLibvirt

// Owning wrappers around libvirt object pointers. They never leave this module and never cross an isolation
// boundary: each is created, used and dropped inside one synchronous method of `LibvirtConnection`, so they are
// deliberately not Sendable. Children hold their parent connection handle so the connection outlives them (libvirt
// also keeps its own reference).
//
// Keep a handle alive across the call that may fail *and* the error capture with `withExtendedLifetime`: its
// `deinit` calls a libvirt `*Free` function, which would clear the thread's last error.

final class ConnectionHandle {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        virConnectClose(pointer)
    }
}

final class DomainHandle {
    let pointer: OpaquePointer
    let connection: ConnectionHandle

    init(_ pointer: OpaquePointer, connection: ConnectionHandle) {
        self.pointer = pointer
        self.connection = connection
    }

    deinit {
        virDomainFree(pointer)
    }
}

final class StoragePoolHandle {
    let pointer: OpaquePointer
    let connection: ConnectionHandle

    init(_ pointer: OpaquePointer, connection: ConnectionHandle) {
        self.pointer = pointer
        self.connection = connection
    }

    deinit {
        virStoragePoolFree(pointer)
    }
}

final class StorageVolumeHandle {
    let pointer: OpaquePointer
    let pool: StoragePoolHandle

    init(_ pointer: OpaquePointer, pool: StoragePoolHandle) {
        self.pointer = pointer
        self.pool = pool
    }

    deinit {
        virStorageVolFree(pointer)
    }
}

final class NetworkHandle {
    let pointer: OpaquePointer
    let connection: ConnectionHandle

    init(_ pointer: OpaquePointer, connection: ConnectionHandle) {
        self.pointer = pointer
        self.connection = connection
    }

    deinit {
        virNetworkFree(pointer)
    }
}

/// Takes ownership of a string that libvirt allocated for the caller.
func takeString(_ pointer: UnsafeMutablePointer<CChar>) -> String {
    defer { shim_free(pointer) }
    return String(cString: pointer)
}

/// Runs a libvirt `*GetUUIDString` function and returns the UUID, or nil when it failed.
func uuidString(_ body: (UnsafeMutablePointer<CChar>) -> Int32) -> String? {
    // VIR_UUID_STRING_BUFLEN: 36 characters and the terminating NUL.
    withUnsafeTemporaryAllocation(of: CChar.self, capacity: 37) { buffer -> String? in
        guard let base = buffer.baseAddress else { return nil }
        base.initialize(repeating: 0, count: 37)
        guard body(base) == 0 else { return nil }
        return String(cString: base)
    }
}

/// Snapshots each listed object, leaving out those that vanished (were undefined, possibly through another
/// connection) between the listing and the snapshot.
func snapshots<Handle, Info>(of handles: [Handle], _ info: (Handle) throws -> Info) throws -> [Info] {
    try handles.compactMap { handle in
        do {
            return try info(handle)
        } catch let error as LibvirtError where error.code == .notFound {
            return nil
        }
    }
}

final class StreamHandle {
    let pointer: OpaquePointer
    let connection: ConnectionHandle

    init(_ pointer: OpaquePointer, connection: ConnectionHandle) {
        self.pointer = pointer
        self.connection = connection
    }

    deinit {
        virStreamFree(pointer)
    }
}
