public import ApplianceAPI
import ApplianceCrypto
import ApplianceStore
import Foundation
import HTTPTypes
public import Logging
import NIOSSL
import Synchronization

/// How `applianced` was started.
public struct ApplianceConfiguration: Sendable {
    public var dataDirectory: String
    /// The factory management address (`--listen`), bound on first start and after a factory reset.
    public var listenAddress: String
    /// The TLS port every configured address listens on.
    public var port: Int
    /// Hostname at first start; defaults to `appliance-` and the first part of the appliance id.
    public var hostname: String?
    public var factoryBaseVersion: String
    public var factorySiteVersion: String
    /// scrypt work factor (log2 N) of encrypted backups; 18 is what the `age` tool uses.
    public var backupWorkFactor: Int
    /// Vendor public keys (PEM files) whose signed packages this appliance installs (A5).
    public var vendorKeyFiles: [String]
    /// The appliance id to take at first start (a provisioner names the VM it creates); nil makes a new one.
    /// An existing id is never changed.
    public var initialApplianceId: String?
    /// `/health` reports "degraded" when the data file system has less free space than this. An absolute
    /// amount rather than a share of the disk: 2 % of a large disk is many gigabytes that are still plenty.
    public var minimumFreeBytes: Int64

    public init(
        dataDirectory: String,
        listenAddress: String,
        port: Int,
        hostname: String? = nil,
        factoryBaseVersion: String = ApplianceVersions.base,
        factorySiteVersion: String = ApplianceVersions.site,
        backupWorkFactor: Int = 18,
        vendorKeyFiles: [String] = [],
        initialApplianceId: String? = nil,
        minimumFreeBytes: Int64 = 64 * 1024 * 1024
    ) {
        self.minimumFreeBytes = minimumFreeBytes
        self.dataDirectory = dataDirectory
        self.listenAddress = listenAddress
        self.port = port
        self.hostname = hostname
        self.initialApplianceId = initialApplianceId
        self.factoryBaseVersion = factoryBaseVersion
        self.factorySiteVersion = factorySiteVersion
        self.backupWorkFactor = backupWorkFactor
        self.vendorKeyFiles = vendorKeyFiles
    }
}

/// The software versions this build of `applianced` ships with.
public enum ApplianceVersions {
    public static let base = "7.2.0"
    public static let site = "24.1.0"
}

/// The appliance: its stores, its listeners and the operations the API exposes.
public final class Appliance: Sendable {
    public let configuration: ApplianceConfiguration
    public let applianceId: String
    let directory: DataDirectory
    let logger: Logger
    let startedAt = Date()
    let site: SiteDatabase
    private let boxStore: Mutex<BoxDatabase>
    let listeners: ListenerManager
    let served: ServedCertificates
    /// The vendor keys packages must be signed with.
    let vendorKeys: [Ed25519PublicKey]
    /// The appliance's own signing key (download keys); kept across factory resets like the appliance id.
    let applianceKey: Ed25519PrivateKey
    /// Serialises operations that replace stores (restore, factory reset) with each other.
    let exclusive = Mutex<String?>(nil)
    /// Maintenance mode and the site writes in flight (A8).
    let gate = SiteWriteGate()
    let rebootFlag = Mutex(false)
    /// Failover (A7): the backup's sync schedule, and the nonces peers have used.
    let failover = FailoverRuntime()
    let nonces = NonceCache()
    private let shutdownSignal: AsyncStream<Void>.Continuation
    let shutdownRequests: AsyncStream<Void>

    public init(configuration: ApplianceConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        directory = DataDirectory(configuration.dataDirectory)
        try directory.prepare(logger: logger)
        applianceId = try Self.loadOrCreateId(directory, initial: configuration.initialApplianceId)
        applianceKey = try Self.loadOrCreateKey(directory)
        vendorKeys = try configuration.vendorKeyFiles.map { path in
            do {
                return try Ed25519PublicKey(pem: try String(contentsOfFile: path, encoding: .utf8))
            } catch {
                throw ApplianceServerError.badRequest(
                    "cannot read the vendor key \(path) (\(error)); give the vendor's Ed25519 public key in PEM"
                )
            }
        }
        boxStore = Mutex(try Self.openBox(directory, configuration, applianceId))
        site = try SiteDatabase(directory: directory)
        (shutdownRequests, shutdownSignal) = AsyncStream.makeStream(of: Void.self)
        listeners = ListenerManager(port: configuration.port, logger: logger)
        served = ServedCertificates(logger: logger)
        try served.reload(from: box)
        gate.set(Self.loadMaintenance(box))
        // A sync that was decided before a crash is finished before anything is served.
        try applyStagedSync()
        // Likewise a software install or rollback: the box database follows slots.json.
        try recoverSoftwareSlots()
        if let relationship = try relationship(), relationship.role == .backup {
            failover.schedule(Date().addingTimeInterval(TimeInterval(min(relationship.intervalSeconds, 60))))
        }
    }

    var box: BoxDatabase { boxStore.withLock { $0 } }

    private static func loadOrCreateId(_ directory: DataDirectory, initial: String?) throws -> String {
        if let text = try? String(contentsOf: directory.applianceIdFile, encoding: .utf8),
            let id = UUID(uuidString: text.trimmingCharacters(in: .whitespacesAndNewlines))
        {
            return id.uuidString.lowercased()
        }
        let id = (initial.flatMap(UUID.init(uuidString:)) ?? UUID()).uuidString.lowercased()
        try Data((id + "\n").utf8).write(to: directory.applianceIdFile, options: .atomic)
        return id
    }

    private static func loadOrCreateKey(_ directory: DataDirectory) throws -> Ed25519PrivateKey {
        let file = directory.root.appendingPathComponent("appliance-key.pem")
        if let text = try? String(contentsOf: file, encoding: .utf8) {
            return try Ed25519PrivateKey(pem: text)
        }
        let key = Ed25519PrivateKey()
        try Data(key.pem.utf8).write(to: file, options: .atomic)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
        return key
    }

    private static func openBox(
        _ directory: DataDirectory,
        _ configuration: ApplianceConfiguration,
        _ id: String
    ) throws -> BoxDatabase {
        let hostname = configuration.hostname ?? "appliance-\(id.prefix(8))"
        let factory = FactorySettings(
            hostname: hostname,
            listenAddress: configuration.listenAddress,
            baseVersion: configuration.factoryBaseVersion,
            siteVersion: configuration.factorySiteVersion
        )
        return try BoxDatabase(directory: directory, factory: factory) {
            try SelfSignedCertificate.make(
                commonName: hostname,
                dnsNames: [hostname],
                ipAddresses: [configuration.listenAddress],
                validDays: 3650
            )
        }
    }

    // MARK: Listeners

    /// The addresses that should have a listener: every enabled entry.
    func desiredListeners() throws -> Set<String> {
        Set(try box.addresses().filter(\.enabled).map(\.address))
    }

    // MARK: A3 network

    static let networkWarning =
        "Network changes interrupt users connected to this appliance; make them when the appliance is not in use."

    public func network() async throws -> NetworkResponse {
        let listening = await listeners.addresses
        return NetworkResponse(
            settings: try box.networkSettings(),
            addresses: try box.addresses().map { entry($0, listening: listening) },
            warning: Self.networkWarning
        )
    }

    func entry(_ config: AddressConfig, listening: Set<String>) -> AddressEntry {
        AddressEntry(
            id: config.id ?? 0,
            enabled: config.enabled,
            port: config.port,
            address: config.address,
            subnetMask: config.subnetMask,
            access: config.access,
            listening: listening.contains(config.address),
            certificateId: config.certificateId
        )
    }

    public func updateNetworkSettings(_ settings: NetworkSettings) throws -> NetworkSettings {
        try NetworkValidation.validate(settings)
        try box.updateNetworkSettings(settings)
        return settings
    }

    /// Changes the address list: validates the result, binds newly enabled addresses first (so an address
    /// that cannot be served is refused before anything is saved), saves, then stops the dropped listeners.
    func changeAddresses(_ change: (inout [AddressConfig]) throws -> Void) async throws -> [AddressConfig] {
        var proposed = try box.addresses()
        try change(&proposed)
        try NetworkValidation.validate(proposed)
        let desired = Set(proposed.filter(\.enabled).map(\.address))
        let current = await listeners.addresses
        var started: [String] = []
        do {
            for address in desired.subtracting(current).sorted() {
                try await listeners.start(address)
                started.append(address)
            }
            let saved = try box.changeAddresses(change, validate: NetworkValidation.validate)
            try served.reload(from: box)
            let dropped = current.subtracting(Set(saved.filter(\.enabled).map(\.address)))
            if !dropped.isEmpty {
                // Let this response leave first when it travels over an address being disabled.
                Task.detached { [listeners] in
                    try? await Task.sleep(for: .milliseconds(100))
                    for address in dropped { await listeners.stop(address) }
                }
            }
            return saved
        } catch {
            for address in started { await listeners.stop(address) }
            throw error
        }
    }

    public func addAddress(_ input: AddressInput) async throws -> AddressEntry {
        let saved = try await changeAddresses { $0.append(AddressConfig(id: nil, input)) }
        guard let added = saved.last else { throw ApplianceServerError.notFound("the new address was not saved") }
        return entry(added, listening: await listeners.addresses)
    }

    public func updateAddress(id: Int64, _ input: AddressInput) async throws -> AddressEntry {
        let saved = try await changeAddresses { list in
            guard let index = list.firstIndex(where: { $0.id == id }) else {
                throw ApplianceServerError.notFound("there is no address entry \(id); list them with GET network")
            }
            var updated = AddressConfig(id: id, input)
            updated.certificateId = list[index].certificateId
            list[index] = updated
        }
        guard let updated = saved.first(where: { $0.id == id }) else {
            throw ApplianceServerError.notFound("address entry \(id) vanished")
        }
        return entry(updated, listening: Set(saved.filter(\.enabled).map(\.address)))
    }

    public func deleteAddress(id: Int64) async throws {
        _ = try await changeAddresses { list in
            guard let index = list.firstIndex(where: { $0.id == id }) else {
                throw ApplianceServerError.notFound("there is no address entry \(id); list them with GET network")
            }
            list.remove(at: index)
        }
    }

    // MARK: A8 factory reset and shutdown

    /// Returns the box to factory state: all site and box data gone, `admin` / `password` back, a new factory
    /// certificate, only the factory address listening. The appliance id stays (it names the hardware).
    /// With `powerOff` the appliance shuts down once the answer has left, instead of serving factory-fresh.
    public func factoryReset(confirmHostname: String, powerOff: Bool = false) async throws {
        let hostname = try box.networkSettings().hostname
        guard confirmHostname == hostname else {
            throw ApplianceServerError.badRequest(
                "type the appliance's hostname '\(hostname)' to confirm the factory reset; nothing was changed"
            )
        }
        try beginExclusive("factory reset")
        defer { endExclusive() }
        logger.notice("Factory reset")
        let fm = FileManager.default
        site.closeForReset()
        try box.close()
        try fm.createDirectory(at: directory.resetTrash, withIntermediateDirectories: true)
        let doomed =
            [directory.site, directory.recordings, directory.tmp, packagesDirectory, softwareDirectory]
            + ["box.sqlite", "box.sqlite-wal", "box.sqlite-shm"].map { directory.root.appendingPathComponent($0) }
        for item in doomed where fm.fileExists(atPath: item.path) {
            try fm.moveItem(at: item, to: directory.resetTrash.appendingPathComponent(item.lastPathComponent))
        }
        try directory.syncDirectory(directory.root)
        try fm.removeItem(at: directory.resetTrash)
        try directory.prepare(logger: logger)
        let fresh = try Self.openBox(directory, configuration, applianceId)
        boxStore.withLock { $0 = fresh }
        gate.set(.off)
        try site.reopen()
        let desired = try desiredListeners()
        // Once this response has left: serve the new factory certificate from the next handshake and stop
        // listening on every address but the factory one.
        Task.detached { [self, listeners, served, fresh] in
            try? await Task.sleep(for: .milliseconds(200))
            if powerOff {
                requestShutdown()
                return
            }
            try? served.reload(from: fresh)
            await listeners.reconcile(desired)
        }
    }

    public func requestShutdown() {
        logger.notice("Shutdown requested")
        shutdownSignal.yield()
    }

    func beginExclusive(_ operation: String) throws {
        let busy = exclusive.withLock { current -> String? in
            if let current { return current }
            current = operation
            return nil
        }
        if let busy {
            throw ApplianceServerError(
                .conflict,
                "busy",
                "a \(busy) is in progress; wait for it to finish and try again"
            )
        }
    }

    func endExclusive() {
        exclusive.withLock { $0 = nil }
    }

    // MARK: Site summary

    public func siteSummary() throws -> SiteSummary {
        let (settings, users, history) = try site.summary()
        let files = try site.files()
        let recordings = try box.recordings()
        return SiteSummary(
            siteVersion: try box.installedSoftware().siteVersion,
            settingsCount: settings.0,
            settingsDigest: settings.1,
            userCount: users.0,
            usersDigest: users.1,
            historyRows: history.0,
            historyDigest: history.1,
            fileCount: files.count,
            fileBytes: files.reduce(0) { $0 + $1.size },
            filesDigest: Self.digest(files),
            recordingCount: recordings.count,
            recordingBytes: recordings.reduce(0) { $0 + $1.size },
            recordingsDigest: Self.digest(recordings)
        )
    }

    static func digest(_ files: [StoredFileInfo]) -> String {
        let hasher = SHA256Hasher()
        for file in files.sorted(by: { $0.name < $1.name }) {
            hasher.update(Array("\(file.name)|\(file.size)|\(file.sha256)\n".utf8))
        }
        return hasher.finalize().hexString
    }
}
