import ApplianceAPI
import Foundation
import Testing

@testable import ApplianceServer

/// The fix rule for two primaries, without I/O: shared address, then newest data, then the operator's name.
@Suite struct FailoverFixRuleTests {
    static let shared = "127.9.0.50"
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func box(_ id: String, _ host: String, holds: Bool? = nil, newest: Date? = nil) -> FixFacts {
        var addresses = [PeerAddress(address: host, enabled: true, listening: true)]
        if let holds { addresses.append(PeerAddress(address: shared, enabled: holds, listening: holds)) }
        return FixFacts(applianceId: id, address: "\(host):9443", addresses: addresses, newestDataAt: newest)
    }

    @Test func theHolderOfTheSharedAddressWinsOverNewerData() throws {
        let here = Self.box("a", "127.9.0.1", holds: true, newest: Self.now)
        let peer = Self.box("b", "127.9.0.2", holds: false, newest: Self.now.addingTimeInterval(60))
        let decision = try FixRule.decide(here: here, peer: peer, winner: nil)
        #expect(decision.rule == .sharedAddress && decision.hereWins && decision.hereHolds == [Self.shared])
        let fromPeer = try FixRule.decide(here: peer, peer: here, winner: nil)
        #expect(fromPeer.rule == .sharedAddress && !fromPeer.hereWins, "the same box wins whichever box is asked")
    }

    @Test(arguments: [true, false]) func aSharedAddressHeldByBothOrNeitherLeavesItToTheNewestData(both: Bool) throws {
        let here = Self.box("a", "127.9.0.1", holds: both, newest: Self.now)
        let peer = Self.box("b", "127.9.0.2", holds: both, newest: Self.now.addingTimeInterval(0.002))
        let decision = try FixRule.decide(here: here, peer: peer, winner: nil)
        #expect(decision.rule == .newestData && !decision.hereWins, "\(decision.reason)")
    }

    @Test func anAddressOnOnlyOneBoxIsNotShared() throws {
        var here = Self.box("a", "127.9.0.1", newest: Self.now)
        here.addresses.append(PeerAddress(address: Self.shared, enabled: true, listening: true))
        let peer = Self.box("b", "127.9.0.2", newest: Self.now.addingTimeInterval(1))
        #expect(try FixRule.decide(here: here, peer: peer, winner: nil).rule == .newestData)
    }

    @Test func dataOnOneSideOnlyIsNewer() throws {
        let decision = try FixRule.decide(
            here: Self.box("a", "127.9.0.1"),
            peer: Self.box("b", "127.9.0.2", newest: Self.now),
            winner: nil
        )
        #expect(decision.rule == .newestData && !decision.hereWins)
    }

    @Test func aTieBelowAMillisecondNeedsTheOperator() throws {
        let here = Self.box("a", "127.9.0.1", newest: Self.now)
        let peer = Self.box("b", "127.9.0.2", newest: Self.now.addingTimeInterval(0.0001))
        #expect(throws: ApplianceServerError.self) { try FixRule.decide(here: here, peer: peer, winner: nil) }
        do {
            _ = try FixRule.decide(here: here, peer: peer, winner: nil)
        } catch let error as ApplianceServerError {
            #expect(error.code == "failover_fix_needs_winner" && error.message.contains("--winner"))
            #expect(error.message.contains("127.9.0.1:9443") && error.message.contains("127.9.0.2:9443"))
        }
        for name in ["b", "127.9.0.2", "127.9.0.2:9443", " B "] {
            let decision = try FixRule.decide(here: here, peer: peer, winner: name)
            #expect(decision.rule == .named && !decision.hereWins, "\(name)")
        }
        #expect(try FixRule.decide(here: here, peer: peer, winner: "a").hereWins)
    }

    @Test func aWinnerThatContradictsTheRuleOrNamesNeitherOrBothIsRefused() throws {
        let here = Self.box("a", "127.9.0.1", holds: true, newest: Self.now)
        let peer = Self.box("b", "127.9.0.2", holds: false, newest: Self.now)
        for (winner, code) in [
            ("b", "failover_fix_winner_contradicts"), ("nobody", "invalid_input"), (Self.shared, "invalid_input"),
        ] {
            do {
                _ = try FixRule.decide(here: here, peer: peer, winner: winner)
                Issue.record("winner \(winner) was accepted")
            } catch let error as ApplianceServerError {
                #expect(error.code == code, "\(winner): \(error.message)")
                #expect(error.message.contains("nothing was changed"))
            }
        }
        #expect(try FixRule.decide(here: here, peer: peer, winner: "a").rule == .sharedAddress)
    }
}
