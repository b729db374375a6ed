import ApplianceAPI
import ApplianceClient
import Foundation
import Testing

/// A3: every enabled address is a live TLS listener; changes take effect within a second; refusals change nothing.
@Suite struct NetworkTests {
    /// Whether a health probe over TLS answers on `host` within `timeout`.
    static func answers(_ box: TestBox, on host: String, within timeout: Duration = .seconds(1)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        repeat {
            if (try? await box.connection(host: host).health()) != nil { return true }
            try? await Task.sleep(for: .milliseconds(50))
        } while ContinuousClock.now < deadline
        return false
    }

    /// Whether `host` stops answering within `timeout`.
    static func stopsAnswering(_ box: TestBox, on host: String, within timeout: Duration = .seconds(1)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        repeat {
            if (try? await box.connection(host: host).health()) == nil { return true }
            try? await Task.sleep(for: .milliseconds(50))
        } while ContinuousClock.now < deadline
        return false
    }

    @Test func enablingAndDisablingAnAddressTakesEffectWithinASecond() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        let admin = try await box.admin()
        let extra = TestSupport.nextAddress()
        #expect(!(await Self.answers(box, on: extra, within: .milliseconds(200))))

        let added: AddressChangeResponse = try await admin.call(
            .addAddress,
            body: AddressInput(enabled: true, port: "eth1", address: extra, subnetMask: "255.0.0.0", access: .both)
        )
        let entry = try #require(added.address)
        #expect(entry.listening)
        #expect(added.warning.contains("not in use"))
        #expect(await Self.answers(box, on: extra))

        var input = AddressInput(enabled: false, port: "eth1", address: extra, subnetMask: "255.0.0.0", access: .both)
        let _: AddressChangeResponse = try await admin.call(
            .updateAddress,
            parameters: ["id": "\(entry.id)"],
            body: input
        )
        #expect(await Self.stopsAnswering(box, on: extra))
        // The factory address is untouched.
        #expect(await Self.answers(box, on: box.address))

        input.enabled = true
        let _: AddressChangeResponse = try await admin.call(
            .updateAddress,
            parameters: ["id": "\(entry.id)"],
            body: input
        )
        #expect(await Self.answers(box, on: extra))

        // Survives a restart: the configuration is real state, not process memory.
        await box.stop()
        try await box.start()
        #expect(await Self.answers(box, on: extra))
        let network: NetworkResponse = try await box.admin().call(.network)
        #expect(network.addresses.filter(\.listening).count == 2)
    }

    /// Disabling an address also ends the connections already accepted on it: a client kept alive on it is
    /// disconnected by the server, so nothing reaches the box through an address it gave up (the live migration's
    /// unlink relies on it).
    @Test func disablingAnAddressClosesConnectionsAlreadyAcceptedOnIt() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        let admin = try await box.admin()
        let extra = TestSupport.nextAddress()
        let added: AddressChangeResponse = try await admin.call(
            .addAddress,
            body: AddressInput(enabled: true, port: "eth1", address: extra, subnetMask: "255.0.0.0", access: .both)
        )
        let entry = try #require(added.address)
        #expect(await Self.answers(box, on: extra))
        let outcome = try await RawTLSExchange.run(
            host: extra,
            port: TestBox.port,
            request: "GET /health HTTP/1.1\r\nHost: \(extra)\r\n\r\n",
            timeout: .seconds(15)
        ) {
            // Answered, and kept alive: now the address is disabled under it.
            let input = AddressInput(
                enabled: false,
                port: "eth1",
                address: extra,
                subnetMask: "255.0.0.0",
                access: .both
            )
            let _: AddressChangeResponse = try await admin.call(
                .updateAddress,
                parameters: ["id": "\(entry.id)"],
                body: input
            )
        }
        #expect(outcome.output.contains("HTTP/1.1 200"), "\(outcome.output)")
        #expect(!outcome.output.lowercased().contains("connection: close"), "the server did not keep it alive")
        #expect(outcome.closedByServer, "the kept-alive connection outlived the address")
    }

    @Test func refusalsChangeNothing() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        let admin = try await box.admin()
        let before: NetworkResponse = try await admin.call(.network)
        let factory = try #require(before.addresses.first)
        let free = TestSupport.nextAddress()

        func add(_ input: AddressInput) async -> String? {
            await refusal { let _: AddressChangeResponse = try await admin.call(.addAddress, body: input) }
        }
        #expect(
            await add(.init(enabled: true, port: "eth1", address: "300.1.1.1", subnetMask: "255.0.0.0", access: .both))
                == "invalid_input"
        )
        #expect(
            await add(.init(enabled: true, port: "eth1", address: free, subnetMask: "255.0.255.0", access: .both))
                == "invalid_input"
        )
        #expect(
            await add(.init(enabled: true, port: "eth1", address: free, subnetMask: "banana", access: .both))
                == "invalid_input"
        )
        #expect(
            await add(.init(enabled: true, port: "wlan0", address: free, subnetMask: "255.0.0.0", access: .both))
                == "invalid_input"
        )
        #expect(
            await add(.init(enabled: true, port: "eth1", address: box.address, subnetMask: "255.0.0.0", access: .both))
                == "conflict"
        )
        // The network address of a subnet is not a host address.
        #expect(
            await add(.init(enabled: true, port: "eth1", address: "127.0.0.0", subnetMask: "255.0.0.0", access: .both))
                == "invalid_input"
        )

        // The last address reaching /appliance can be neither removed, disabled, nor made public-only.
        #expect(
            await refusal { try await admin.perform(.deleteAddress, parameters: ["id": "\(factory.id)"]) } == "conflict"
        )
        for change in [
            AddressInput(
                enabled: false,
                port: "eth0",
                address: factory.address,
                subnetMask: factory.subnetMask,
                access: .both
            ),
            AddressInput(
                enabled: true,
                port: "eth0",
                address: factory.address,
                subnetMask: factory.subnetMask,
                access: .publicOnly
            ),
        ] {
            let code = await refusal {
                let _: AddressChangeResponse = try await admin.call(
                    .updateAddress,
                    parameters: ["id": "\(factory.id)"],
                    body: change
                )
            }
            #expect(code == "conflict")
        }
        let after: NetworkResponse = try await admin.call(.network)
        #expect(after.addresses == before.addresses)
        #expect(await NetworkTests.answers(box, on: box.address))
        #expect(!(await NetworkTests.answers(box, on: free, within: .milliseconds(200))))
    }

    @Test func accessTypesSeparateApplianceAndSite() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        let admin = try await box.admin()
        let publicAddress = TestSupport.nextAddress()
        let _: AddressChangeResponse = try await admin.call(
            .addAddress,
            body: AddressInput(
                enabled: true,
                port: "eth1",
                address: publicAddress,
                subnetMask: "255.0.0.0",
                access: .publicOnly
            )
        )
        let viaPublic = box.connection(host: publicAddress)
        let login = try await viaPublic.login(username: "admin", password: TestBox.adminPassword)
        let session = viaPublic.authenticated(login.token)
        let settings: [String: String] = try await session.call(.settings)
        #expect(settings.isEmpty)
        #expect(await refusal { let _: StatusResponse = try await session.call(.status) } == "wrong_address")

        // Now that another admin-capable address exists, the factory one may become public-only … no: it is the
        // only admin address, so that stays refused; add an admin address and then it is allowed.
        let adminAddress = TestSupport.nextAddress()
        let _: AddressChangeResponse = try await admin.call(
            .addAddress,
            body: AddressInput(
                enabled: true,
                port: "eth2",
                address: adminAddress,
                subnetMask: "255.0.0.0",
                access: .adminOnly
            )
        )
        let viaAdmin = box.connection(host: adminAddress).authenticated(login.token)
        let _: StatusResponse = try await viaAdmin.call(.status)
        #expect(await refusal { let _: [String: String] = try await viaAdmin.call(.settings) } == "wrong_address")

        let settingsUpdate = NetworkSettings(
            hostname: "bad host name!",
            defaultGateway: nil,
            dnsServers: [],
            ntpServers: []
        )
        #expect(
            await refusal {
                let _: NetworkResponse = try await viaAdmin.call(.updateNetworkSettings, body: settingsUpdate)
            } == "invalid_input"
        )
        let good = NetworkSettings(
            hostname: "pra-test-01",
            defaultGateway: "127.0.0.1",
            dnsServers: ["127.0.0.53"],
            ntpServers: ["ntp.example.test"]
        )
        let updated: NetworkResponse = try await viaAdmin.call(.updateNetworkSettings, body: good)
        #expect(updated.settings == good)
    }
}
