import Foundation
import Libvirt
import Testing

/// Tests against libvirt's in-memory `test:///default` driver. Its state is shared by the whole process, so every
/// test uses names with a unique suffix.
@Suite("Libvirt against test:///default")
struct LibvirtTests {
    static let uri = "test:///default"

    static func unique(_ prefix: String) -> String {
        "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
    }

    static func domainXML(_ name: String) -> String {
        """
        <domain type='test'><name>\(name)</name><memory unit='KiB'>65536</memory><vcpu>1</vcpu>\
        <os><type arch='x86_64'>hvm</type></os></domain>
        """
    }

    @Test func opensAndReadsHostInformation() async throws {
        let connection = try await LibvirtConnection.open(Self.uri)
        #expect(try await connection.uri() == Self.uri)
        #expect(try await !connection.hostname().isEmpty)
        let version = try await connection.libvirtVersion()
        #expect(version >= LibvirtVersion(major: 9, minor: 0, release: 0))
        #expect(try await connection.freeMemory() > 0)
        await connection.close()
    }

    @Test func closedConnectionThrowsInvalidOperation() async throws {
        let connection = try await LibvirtConnection.open(Self.uri)
        await connection.close()
        await connection.close()
        let error = await #expect(throws: LibvirtError.self) { try await connection.listDomains() }
        #expect(error?.code == .invalidOperation)
    }

    @Test func openingAnUnknownDriverFails() async throws {
        let error = await #expect(throws: LibvirtError.self) {
            _ = try await LibvirtConnection.open("nosuchdriver:///nowhere")
        }
        #expect(error?.code == .connectionFailed)
        #expect(error?.message.contains("nosuchdriver") == true)
    }

    @Test func domainLifecycle() async throws {
        let connection = try await LibvirtConnection.open(Self.uri)
        let name = Self.unique("lifecycle")
        let defined = try await connection.defineDomain(xml: Self.domainXML(name))
        #expect(defined.name == name)
        #expect(defined.uuid.count == 36)
        #expect(defined.state == .shutoff)
        #expect(defined.maxMemoryKiB == 65536)
        #expect(defined.vcpus == 1)
        #expect(try await connection.listDomains().contains { $0.name == name })

        try await connection.start(domain: name)
        #expect(try await connection.state(domain: name) == .running)
        #expect(try await connection.domain(named: name)?.state == .running)
        #expect(try await connection.xml(domain: name).contains("<name>\(name)</name>"))

        try await connection.destroy(domain: name)
        let status = try await connection.status(domain: name)
        #expect(status.state == .shutoff)

        try await connection.undefine(domain: name, flags: [.managedSave, .snapshotsMetadata])
        #expect(try await connection.domain(named: name) == nil)
        #expect(try await !connection.listDomains().contains { $0.name == name })
    }

    @Test func shutdownStopsARunningDomain() async throws {
        let connection = try await LibvirtConnection.open(Self.uri)
        let name = Self.unique("shutdown")
        _ = try await connection.defineDomain(xml: Self.domainXML(name))
        try await connection.start(domain: name)
        try await connection.shutdown(domain: name)
        #expect(try await connection.state(domain: name) == .shutoff)
        try await connection.undefine(domain: name)
    }

    @Test func malformedDomainXMLThrowsLibvirtsMessage() async throws {
        let connection = try await LibvirtConnection.open(Self.uri)
        let error = await #expect(throws: LibvirtError.self) {
            _ = try await connection.defineDomain(xml: "<domain type='test'><name>broken</name")
        }
        #expect(error?.code == .invalidArgument)
        #expect(error?.libvirtCode != 0)
        #expect(error?.message.contains("could not define a domain:") == true)
        #expect(error?.message.lowercased().contains("xml") == true)
    }

    @Test func startingARunningDomainThrows() async throws {
        let connection = try await LibvirtConnection.open(Self.uri)
        let name = Self.unique("twice")
        _ = try await connection.defineDomain(xml: Self.domainXML(name))
        try await connection.start(domain: name)
        let error = await #expect(throws: LibvirtError.self) { try await connection.start(domain: name) }
        // test:///default reports VIR_ERR_INTERNAL_ERROR (1) here, not VIR_ERR_OPERATION_INVALID.
        #expect(error?.libvirtCode != 0)
        #expect(error?.message.contains("already running") == true)
        try await connection.destroy(domain: name)
        try await connection.undefine(domain: name)
    }

    @Test func unknownDomainIsNotFound() async throws {
        let connection = try await LibvirtConnection.open(Self.uri)
        let name = Self.unique("missing")
        #expect(try await connection.domain(named: name) == nil)
        let error = await #expect(throws: LibvirtError.self) { try await connection.start(domain: name) }
        #expect(error?.code == .notFound)
        #expect(error?.message.contains(name) == true)
    }

    @Test func definingADuplicateDomainFails() async throws {
        let connection = try await LibvirtConnection.open(Self.uri)
        let name = Self.unique("duplicate")
        _ = try await connection.defineDomain(xml: Self.domainXML(name))
        try await connection.start(domain: name)
        // A running domain cannot be redefined with a new UUID.
        await #expect(throws: LibvirtError.self) {
            _ = try await connection.defineDomain(xml: Self.domainXML(name))
        }
        try await connection.destroy(domain: name)
        try await connection.undefine(domain: name)
    }

    @Test func storagePoolAndVolumes() async throws {
        let connection = try await LibvirtConnection.open(Self.uri)
        let poolName = Self.unique("pool")
        let pool = try await connection.definePool(
            xml: "<pool type='dir'><name>\(poolName)</name><target><path>/tmp/\(poolName)</path></target></pool>"
        )
        #expect(pool.name == poolName)
        #expect(pool.state == .inactive)
        try await connection.buildPool(named: poolName)
        try await connection.startPool(named: poolName)
        #expect(try await connection.pool(named: poolName)?.state == .running)
        #expect(try await connection.listPools().contains { $0.name == poolName })

        let volume = try await connection.createVolume(
            pool: poolName,
            xml: "<volume><name>disk.img</name><capacity unit='MiB'>16</capacity></volume>"
        )
        #expect(volume.name == "disk.img")
        #expect(volume.capacity == 16 * 1024 * 1024)
        #expect(volume.path.hasSuffix("disk.img"))
        #expect(try await connection.listVolumes(pool: poolName).map(\.name) == ["disk.img"])
        #expect(try await connection.volume(pool: poolName, name: "disk.img") == volume)

        try await connection.refreshPool(named: poolName)
        try await connection.deleteVolume(pool: poolName, name: "disk.img")
        #expect(try await connection.volume(pool: poolName, name: "disk.img") == nil)
        #expect(try await connection.listVolumes(pool: poolName).isEmpty)

        try await connection.destroyPool(named: poolName)
        try await connection.undefinePool(named: poolName)
        #expect(try await connection.pool(named: poolName) == nil)
    }

    @Test func volumeInAnUnknownPoolIsNotFound() async throws {
        let connection = try await LibvirtConnection.open(Self.uri)
        let error = await #expect(throws: LibvirtError.self) {
            _ = try await connection.volume(pool: Self.unique("nopool"), name: "disk.img")
        }
        #expect(error?.code == .notFound)
    }

    @Test func networkLifecycle() async throws {
        let connection = try await LibvirtConnection.open(Self.uri)
        let name = Self.unique("net")
        let defined = try await connection.defineNetwork(xml: "<network><name>\(name)</name></network>")
        #expect(defined.name == name)
        #expect(!defined.isActive)
        #expect(defined.isPersistent)

        try await connection.startNetwork(named: name)
        #expect(try await connection.network(named: name)?.isActive == true)
        #expect(try await connection.listNetworks().contains { $0.name == name && $0.isActive })

        try await connection.destroyNetwork(named: name)
        #expect(try await connection.network(named: name)?.isActive == false)
        try await connection.undefineNetwork(named: name)
        #expect(try await connection.network(named: name) == nil)
    }

    @Test func concurrentCallsOnOneConnectionComplete() async throws {
        let connection = try await LibvirtConnection.open(Self.uri)
        let names = (0..<8).map { _ in Self.unique("concurrent") }
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            for name in names {
                group.addTask {
                    _ = try await connection.defineDomain(xml: Self.domainXML(name))
                    var seen = 0
                    for _ in 0..<20 {
                        try await connection.start(domain: name)
                        if try await connection.state(domain: name) == .running { seen += 1 }
                        try await connection.destroy(domain: name)
                        _ = try await connection.listDomains()
                        _ = try await connection.domain(named: Self.unique("absent"))
                    }
                    try await connection.undefine(domain: name)
                    return seen
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(results == 8 * 20)
        let remaining = try await connection.listDomains().map(\.name)
        #expect(names.allSatisfy { !remaining.contains($0) })
    }
}
