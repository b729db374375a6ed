import CLibvirt
import Dispatch

/// A connection to a libvirt hypervisor driver, for example `qemu:///session` or `test:///default`.
///
/// libvirt calls block, so they must not run on Swift's cooperative thread pool. Each connection is an actor whose
/// executor is its own serial dispatch queue (see `QueueExecutor`): every libvirt call for the connection runs there, one at a time, and
/// callers simply `await` the methods.
public actor LibvirtConnection {
    private nonisolated let executor: QueueExecutor
    private var handle: ConnectionHandle?

    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        executor.asUnownedSerialExecutor()
    }

    /// libvirt's one-time set-up for the process: initialise the library and stop it printing errors to stderr
    /// (they are thrown instead). The value is `virInitialize()`'s result.
    private static let initialization: Int32 = {
        let result = virInitialize()
        shim_silence_errors()
        return result
    }()

    private init(label: String) {
        executor = QueueExecutor(label: label)
    }

    /// Opens a read-write connection to the hypervisor at `uri` (`virConnectOpen`).
    public static func open(_ uri: String) async throws -> LibvirtConnection {
        let connection = LibvirtConnection(label: "Libvirt connection \(uri)")
        try await connection.connect(uri)
        return connection
    }

    private func connect(_ uri: String) throws {
        guard Self.initialization == 0 else {
            throw LibvirtError(
                code: .connectionFailed,
                message: "could not open \(uri): libvirt failed to initialise. Check the libvirt installation."
            )
        }
        guard let pointer = virConnectOpen(uri) else {
            throw LibvirtError.last("open \(uri)", code: .connectionFailed)
        }
        handle = ConnectionHandle(pointer)
    }

    /// Closes the connection. Later calls throw `.invalidOperation`. Closing twice does nothing.
    public func close() {
        handle = nil
    }

    /// The open connection, checked to be on this connection's queue.
    func connection(_ operation: String) throws -> ConnectionHandle {
        dispatchPrecondition(condition: .onQueue(executor.queue))
        guard let handle else {
            throw LibvirtError.closed(operation)
        }
        return handle
    }

    /// The canonical URI of the connection (`virConnectGetURI`).
    public func uri() throws -> String {
        let connection = try connection("read the connection URI")
        guard let pointer = virConnectGetURI(connection.pointer) else {
            throw LibvirtError.last("read the connection URI")
        }
        return takeString(pointer)
    }

    /// The host name of the hypervisor's machine (`virConnectGetHostname`).
    public func hostname() throws -> String {
        let connection = try connection("read the host name")
        guard let pointer = virConnectGetHostname(connection.pointer) else {
            throw LibvirtError.last("read the host name")
        }
        return takeString(pointer)
    }

    /// The version of the libvirt library used by the driver (`virConnectGetLibVersion`).
    public func libvirtVersion() throws -> LibvirtVersion {
        let connection = try connection("read the libvirt version")
        var version: UInt = 0
        guard virConnectGetLibVersion(connection.pointer, &version) == 0 else {
            throw LibvirtError.last("read the libvirt version")
        }
        return LibvirtVersion(encoded: UInt64(version))
    }

    /// Free memory on the host in bytes (`virNodeGetFreeMemory`).
    public func freeMemory() throws -> UInt64 {
        let connection = try connection("read the free memory")
        let bytes = virNodeGetFreeMemory(connection.pointer)
        guard bytes != 0 else {
            throw LibvirtError.last("read the free memory")
        }
        return bytes
    }
}

/// A libvirt version, decoded from libvirt's `major * 1,000,000 + minor * 1,000 + release`.
public struct LibvirtVersion: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public var release: Int

    public init(major: Int, minor: Int, release: Int) {
        self.major = major
        self.minor = minor
        self.release = release
    }

    init(encoded: UInt64) {
        self.init(
            major: Int(encoded / 1_000_000),
            minor: Int(encoded / 1_000 % 1_000),
            release: Int(encoded % 1_000)
        )
    }

    public static func < (lhs: LibvirtVersion, rhs: LibvirtVersion) -> Bool {
        (lhs.major, lhs.minor, lhs.release) < (rhs.major, rhs.minor, rhs.release)
    }

    public var description: String {
        "\(major).\(minor).\(release)"
    }
}
