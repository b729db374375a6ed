import CLibvirt

/// A snapshot of a virtual network, taken when the call returned.
public struct NetworkInfo: Hashable, Sendable {
    public var name: String
    public var uuid: String
    public var isActive: Bool
    public var isPersistent: Bool

    public init(name: String, uuid: String, isActive: Bool, isPersistent: Bool) {
        self.name = name
        self.uuid = uuid
        self.isActive = isActive
        self.isPersistent = isPersistent
    }
}

extension LibvirtConnection {
    /// Defines (but does not start) a persistent virtual network (`virNetworkDefineXML`).
    public func defineNetwork(xml: String) throws -> NetworkInfo {
        let operation = "define a network"
        let connection = try connection(operation)
        guard let pointer = virNetworkDefineXML(connection.pointer, xml) else {
            throw LibvirtError.last(operation)
        }
        return try Self.info(of: NetworkHandle(pointer, connection: connection))
    }

    /// The network called `name`, or nil when there is none.
    public func network(named name: String) throws -> NetworkInfo? {
        do {
            return try withNetwork(name, "look up network '\(name)'") { try Self.info(of: $0) }
        } catch let error as LibvirtError where error.code == .notFound {
            return nil
        }
    }

    /// Every network on the connection, active and inactive (`virConnectListAllNetworks`).
    public func listNetworks() throws -> [NetworkInfo] {
        let operation = "list networks"
        let connection = try connection(operation)
        var list: UnsafeMutablePointer<OpaquePointer?>?
        let count = virConnectListAllNetworks(connection.pointer, &list, 0)
        guard count >= 0, let list else {
            throw LibvirtError.last(operation)
        }
        let handles = (0..<Int(count)).compactMap { index in
            list[index].map { NetworkHandle($0, connection: connection) }
        }
        shim_free(list)
        return try snapshots(of: handles) { try Self.info(of: $0) }
    }

    /// Starts the network (`virNetworkCreate`).
    public func startNetwork(named name: String) throws {
        try networkCall(name, "start network '\(name)'") { virNetworkCreate($0) }
    }

    /// Stops the network (`virNetworkDestroy`).
    public func destroyNetwork(named name: String) throws {
        try networkCall(name, "stop network '\(name)'") { virNetworkDestroy($0) }
    }

    /// Removes the network's definition (`virNetworkUndefine`). A running network becomes transient.
    public func undefineNetwork(named name: String) throws {
        try networkCall(name, "undefine network '\(name)'") { virNetworkUndefine($0) }
    }

    /// Looks the network up and runs `body` with its handle kept alive until `body` returns.
    private func withNetwork<Result>(
        _ name: String,
        _ operation: String,
        _ body: (NetworkHandle) throws -> Result
    ) throws -> Result {
        let connection = try connection(operation)
        guard let pointer = virNetworkLookupByName(connection.pointer, name) else {
            throw LibvirtError.last(operation)
        }
        let network = NetworkHandle(pointer, connection: connection)
        return try withExtendedLifetime(network) { try body(network) }
    }

    /// Runs one libvirt network function that returns 0 on success.
    private func networkCall(_ name: String, _ operation: String, _ call: (OpaquePointer) -> Int32) throws {
        try withNetwork(name, operation) { network in
            guard call(network.pointer) == 0 else {
                throw LibvirtError.last(operation)
            }
        }
    }

    private static func info(of network: NetworkHandle) throws -> NetworkInfo {
        try withExtendedLifetime(network) {
            guard let namePointer = virNetworkGetName(network.pointer) else {
                throw LibvirtError.last("read a network's name")
            }
            let name = String(cString: namePointer)
            guard let uuid = uuidString({ virNetworkGetUUIDString(network.pointer, $0) }) else {
                throw LibvirtError.last("read the UUID of network '\(name)'")
            }
            let active = virNetworkIsActive(network.pointer)
            guard active >= 0 else {
                throw LibvirtError.last("read whether network '\(name)' is active")
            }
            let persistent = virNetworkIsPersistent(network.pointer)
            guard persistent >= 0 else {
                throw LibvirtError.last("read whether network '\(name)' is persistent")
            }
            return NetworkInfo(name: name, uuid: uuid, isActive: active == 1, isPersistent: persistent == 1)
        }
    }
}
