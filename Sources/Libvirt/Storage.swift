import CLibvirt

/// The state of a storage pool (`virStoragePoolState`).
public enum StoragePoolState: String, Hashable, Sendable, CustomStringConvertible {
    case inactive
    case building
    case running
    case degraded
    case inaccessible

    init(libvirt value: Int32) {
        switch virStoragePoolState(rawValue: UInt32(bitPattern: value)) {
        case VIR_STORAGE_POOL_BUILDING: self = .building
        case VIR_STORAGE_POOL_RUNNING: self = .running
        case VIR_STORAGE_POOL_DEGRADED: self = .degraded
        case VIR_STORAGE_POOL_INACCESSIBLE: self = .inaccessible
        default: self = .inactive
        }
    }

    public var description: String {
        rawValue
    }
}

/// A snapshot of a storage pool, taken when the call returned. Sizes are in bytes.
public struct StoragePoolInfo: Hashable, Sendable {
    public var name: String
    public var uuid: String
    public var state: StoragePoolState
    public var capacity: UInt64
    public var allocation: UInt64
    public var available: UInt64

    public init(
        name: String,
        uuid: String,
        state: StoragePoolState,
        capacity: UInt64,
        allocation: UInt64,
        available: UInt64
    ) {
        self.name = name
        self.uuid = uuid
        self.state = state
        self.capacity = capacity
        self.allocation = allocation
        self.available = available
    }
}

/// A snapshot of a storage volume, taken when the call returned. Sizes are in bytes.
public struct VolumeInfo: Hashable, Sendable {
    public var name: String
    /// The volume's path on the host, for a domain's `<disk><source file=…/>`.
    public var path: String
    /// libvirt's unique key for the volume (often the path).
    public var key: String
    public var capacity: UInt64
    public var allocation: UInt64

    public init(name: String, path: String, key: String, capacity: UInt64, allocation: UInt64) {
        self.name = name
        self.path = path
        self.key = key
        self.capacity = capacity
        self.allocation = allocation
    }
}

extension LibvirtConnection {
    /// Defines (but does not build or start) a persistent storage pool (`virStoragePoolDefineXML`).
    public func definePool(xml: String) throws -> StoragePoolInfo {
        let operation = "define a storage pool"
        let connection = try connection(operation)
        guard let pointer = virStoragePoolDefineXML(connection.pointer, xml, 0) else {
            throw LibvirtError.last(operation)
        }
        return try Self.info(of: StoragePoolHandle(pointer, connection: connection))
    }

    /// The storage pool called `name`, or nil when there is none.
    public func pool(named name: String) throws -> StoragePoolInfo? {
        do {
            return try withPool(name, "look up storage pool '\(name)'") { try Self.info(of: $0) }
        } catch let error as LibvirtError where error.code == .notFound {
            return nil
        }
    }

    /// Every storage pool on the connection, active and inactive (`virConnectListAllStoragePools`).
    public func listPools() throws -> [StoragePoolInfo] {
        let operation = "list storage pools"
        let connection = try connection(operation)
        var list: UnsafeMutablePointer<OpaquePointer?>?
        let count = virConnectListAllStoragePools(connection.pointer, &list, 0)
        guard count >= 0, let list else {
            throw LibvirtError.last(operation)
        }
        let handles = (0..<Int(count)).compactMap { index in
            list[index].map { StoragePoolHandle($0, connection: connection) }
        }
        shim_free(list)
        return try snapshots(of: handles) { try Self.info(of: $0) }
    }

    /// Starts the pool (`virStoragePoolCreate`).
    public func startPool(named name: String) throws {
        try poolCall(name, "start storage pool '\(name)'") { virStoragePoolCreate($0, 0) }
    }

    /// Builds the pool's underlying storage, for example creates its directory (`virStoragePoolBuild`).
    public func buildPool(named name: String) throws {
        try poolCall(name, "build storage pool '\(name)'") { virStoragePoolBuild($0, 0) }
    }

    /// Stops the pool; its volumes and data are kept (`virStoragePoolDestroy`).
    public func destroyPool(named name: String) throws {
        try poolCall(name, "stop storage pool '\(name)'") { virStoragePoolDestroy($0) }
    }

    /// Removes the pool's definition; its data is kept (`virStoragePoolUndefine`).
    public func undefinePool(named name: String) throws {
        try poolCall(name, "undefine storage pool '\(name)'") { virStoragePoolUndefine($0) }
    }

    /// Rescans the pool for volumes created outside libvirt (`virStoragePoolRefresh`).
    public func refreshPool(named name: String) throws {
        try poolCall(name, "refresh storage pool '\(name)'") { virStoragePoolRefresh($0, 0) }
    }

    /// The volumes in a running pool (`virStoragePoolListAllVolumes`).
    public func listVolumes(pool name: String) throws -> [VolumeInfo] {
        let operation = "list the volumes of storage pool '\(name)'"
        return try withPool(name, operation) { pool in
            var list: UnsafeMutablePointer<OpaquePointer?>?
            let count = virStoragePoolListAllVolumes(pool.pointer, &list, 0)
            guard count >= 0, let list else {
                throw LibvirtError.last(operation)
            }
            let handles = (0..<Int(count)).compactMap { index in
                list[index].map { StorageVolumeHandle($0, pool: pool) }
            }
            shim_free(list)
            return try snapshots(of: handles) { try Self.info(of: $0) }
        }
    }

    /// Creates a volume in a running pool from its XML description (`virStorageVolCreateXML`). For a copy-on-write
    /// overlay, give a qcow2 `<target><format type='qcow2'/></target>` and a `<backingStore>` with the base image.
    public func createVolume(pool name: String, xml: String) throws -> VolumeInfo {
        let operation = "create a volume in storage pool '\(name)'"
        return try withPool(name, operation) { pool in
            guard let pointer = virStorageVolCreateXML(pool.pointer, xml, 0) else {
                throw LibvirtError.last(operation)
            }
            return try Self.info(of: StorageVolumeHandle(pointer, pool: pool))
        }
    }

    /// The volume called `volumeName` in the pool, or nil when the pool has no such volume. Throws `.notFound` when
    /// the pool itself does not exist.
    public func volume(pool name: String, name volumeName: String) throws -> VolumeInfo? {
        do {
            return try withVolume(pool: name, name: volumeName, "look up volume '\(volumeName)'") {
                try Self.info(of: $0)
            }
        } catch let error as LibvirtError
            where error.code == .notFound && error.libvirtCode == Int32(VIR_ERR_NO_STORAGE_VOL.rawValue)
        {
            return nil
        }
    }

    /// Deletes the volume and its data (`virStorageVolDelete`).
    public func deleteVolume(pool name: String, name volumeName: String) throws {
        let operation = "delete volume '\(volumeName)' of storage pool '\(name)'"
        try withVolume(pool: name, name: volumeName, operation) { volume in
            guard virStorageVolDelete(volume.pointer, 0) == 0 else {
                throw LibvirtError.last(operation)
            }
        }
    }

    /// The pool's XML description (`virStoragePoolGetXMLDesc`), for example to read its target directory.
    public func poolXML(named name: String) throws -> String {
        let operation = "read the description of storage pool '\(name)'"
        return try withPool(name, operation) { pool in
            guard let xml = virStoragePoolGetXMLDesc(pool.pointer, 0) else {
                throw LibvirtError.last(operation)
            }
            return takeString(xml)
        }
    }

    /// Marks the pool to start with its daemon (`virStoragePoolSetAutostart`).
    public func setPoolAutostart(named name: String, _ autostart: Bool) throws {
        try poolCall(name, "set autostart of storage pool '\(name)'") {
            virStoragePoolSetAutostart($0, autostart ? 1 : 0)
        }
    }

    /// Looks the pool up and runs `body` with its handle kept alive until `body` returns.
    private func withPool<Result>(
        _ name: String,
        _ operation: String,
        _ body: (StoragePoolHandle) throws -> Result
    ) throws -> Result {
        let connection = try connection(operation)
        guard let pointer = virStoragePoolLookupByName(connection.pointer, name) else {
            throw LibvirtError.last(operation)
        }
        let pool = StoragePoolHandle(pointer, connection: connection)
        return try withExtendedLifetime(pool) { try body(pool) }
    }

    /// Runs one libvirt pool function that returns 0 on success.
    private func poolCall(_ name: String, _ operation: String, _ call: (OpaquePointer) -> Int32) throws {
        try withPool(name, operation) { pool in
            guard call(pool.pointer) == 0 else {
                throw LibvirtError.last(operation)
            }
        }
    }

    /// Looks the volume up and runs `body` with its handle kept alive until `body` returns.
    private func withVolume<Result>(
        pool poolName: String,
        name: String,
        _ operation: String,
        _ body: (StorageVolumeHandle) throws -> Result
    ) throws -> Result {
        try withPool(poolName, operation) { pool in
            guard let pointer = virStorageVolLookupByName(pool.pointer, name) else {
                throw LibvirtError.last(operation)
            }
            let volume = StorageVolumeHandle(pointer, pool: pool)
            return try withExtendedLifetime(volume) { try body(volume) }
        }
    }

    private static func info(of pool: StoragePoolHandle) throws -> StoragePoolInfo {
        try withExtendedLifetime(pool) {
            guard let namePointer = virStoragePoolGetName(pool.pointer) else {
                throw LibvirtError.last("read a storage pool's name")
            }
            let name = String(cString: namePointer)
            guard let uuid = uuidString({ virStoragePoolGetUUIDString(pool.pointer, $0) }) else {
                throw LibvirtError.last("read the UUID of storage pool '\(name)'")
            }
            var info = virStoragePoolInfo()
            guard virStoragePoolGetInfo(pool.pointer, &info) == 0 else {
                throw LibvirtError.last("read the information of storage pool '\(name)'")
            }
            return StoragePoolInfo(
                name: name,
                uuid: uuid,
                state: StoragePoolState(libvirt: info.state),
                capacity: info.capacity,
                allocation: info.allocation,
                available: info.available
            )
        }
    }

    private static func info(of volume: StorageVolumeHandle) throws -> VolumeInfo {
        try withExtendedLifetime(volume) {
            guard let namePointer = virStorageVolGetName(volume.pointer) else {
                throw LibvirtError.last("read a volume's name")
            }
            let name = String(cString: namePointer)
            guard let keyPointer = virStorageVolGetKey(volume.pointer) else {
                throw LibvirtError.last("read the key of volume '\(name)'")
            }
            let key = String(cString: keyPointer)
            guard let pathPointer = virStorageVolGetPath(volume.pointer) else {
                throw LibvirtError.last("read the path of volume '\(name)'")
            }
            let path = takeString(pathPointer)
            var info = virStorageVolInfo()
            guard virStorageVolGetInfo(volume.pointer, &info) == 0 else {
                throw LibvirtError.last("read the information of volume '\(name)'")
            }
            return VolumeInfo(
                name: name,
                path: path,
                key: key,
                capacity: info.capacity,
                allocation: info.allocation
            )
        }
    }
}
