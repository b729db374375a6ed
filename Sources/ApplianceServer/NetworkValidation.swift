import ApplianceAPI
import ApplianceStore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The refusals of SPEC A3, checked on the whole address list as it would be after a change.
enum NetworkValidation {
    static func validate(_ addresses: [AddressConfig]) throws {
        var seen = Set<String>()
        for entry in addresses {
            try validate(entry)
            let key = normalized(entry.address)
            guard seen.insert(key).inserted else {
                throw ApplianceServerError.conflict("the address \(entry.address) is configured twice; remove one")
            }
        }
        guard addresses.contains(where: { $0.enabled && $0.access.servesAppliance }) else {
            throw ApplianceServerError.conflict(
                "this change would leave no enabled address that reaches /appliance; keep at least one enabled "
                    + "address with access 'both' or 'admin'"
            )
        }
    }

    static func validate(_ entry: AddressConfig) throws {
        guard entry.port.range(of: #"^eth[0-9]{1,2}$"#, options: .regularExpression) != nil else {
            throw ApplianceServerError.badRequest("network port '\(entry.port)' is not valid; use eth0, eth1, …")
        }
        if let v4 = ipv4(entry.address) {
            guard let mask = ipv4(entry.subnetMask), isContiguousMask(mask), mask != 0 else {
                throw ApplianceServerError.badRequest(
                    "subnet mask '\(entry.subnetMask)' is not valid; use a mask such as 255.255.255.0"
                )
            }
            let host = v4 & ~mask
            if mask != 0xFFFF_FFFF && mask != 0xFFFF_FFFE && (host == 0 || host == ~mask) {
                throw ApplianceServerError.badRequest(
                    "\(entry.address) is the network or broadcast address of its subnet; use a host address"
                )
            }
            if v4 == 0 || v4 >> 28 == 0xE || v4 == 0xFFFF_FFFF {
                throw ApplianceServerError.badRequest(
                    "\(entry.address) cannot be an interface address; use a unicast host address"
                )
            }
        } else if isIPv6(entry.address) {
            guard let prefix = Int(entry.subnetMask), (1...128).contains(prefix) else {
                throw ApplianceServerError.badRequest(
                    "for an IPv6 address give the prefix length (1–128) as subnet mask, not '\(entry.subnetMask)'"
                )
            }
        } else {
            throw ApplianceServerError.badRequest("'\(entry.address)' is not a valid IPv4 or IPv6 address")
        }
    }

    static func validate(_ settings: NetworkSettings) throws {
        let label = #"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"#
        let labels = settings.hostname.split(separator: ".", omittingEmptySubsequences: false)
        guard !settings.hostname.isEmpty, settings.hostname.count <= 253,
            labels.allSatisfy({ String($0).range(of: label, options: .regularExpression) != nil })
        else {
            throw ApplianceServerError.badRequest(
                "hostname '\(settings.hostname)' is not valid; use letters, digits and '-' in dot-separated labels"
            )
        }
        if let gateway = settings.defaultGateway, !gateway.isEmpty, ipv4(gateway) == nil, !isIPv6(gateway) {
            throw ApplianceServerError.badRequest("default gateway '\(gateway)' is not an IP address")
        }
        for server in settings.dnsServers where ipv4(server) == nil && !isIPv6(server) {
            throw ApplianceServerError.badRequest("DNS server '\(server)' is not an IP address")
        }
        for server in settings.ntpServers where server.isEmpty || server.contains(" ") {
            throw ApplianceServerError.badRequest("NTP server '\(server)' is not a host name or address")
        }
    }

    static func ipv4(_ text: String) -> UInt32? {
        var address = in_addr()
        guard inet_pton(AF_INET, text, &address) == 1 else { return nil }
        return UInt32(bigEndian: address.s_addr)
    }

    static func isIPv6(_ text: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET6, text, &address) == 1
    }

    static func isContiguousMask(_ mask: UInt32) -> Bool {
        let inverted = ~mask
        return inverted & (inverted &+ 1) == 0
    }

    static func normalized(_ address: String) -> String {
        if let v4 = ipv4(address) { return "v4:\(v4)" }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, address, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { "v6:" + $0.map { String($0, radix: 16) }.joined(separator: ":") }
        }
        return address
    }
}
