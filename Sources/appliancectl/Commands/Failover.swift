import ApplianceAPI
import ApplianceClient
import ArgumentParser
import Foundation

/// `appliancectl failover …` (A7): the inter-appliance key, establishing, syncing, roles and breaking a pair.
struct Failover: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Keep two appliances in step: a primary and a backup that pulls incremental data syncs.",
        subcommands: [Key.self, Establish.self, Status.self, Sync.self, BecomePrimary.self, Break.self, Fix.self]
    )

    struct Key: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set or show the inter-appliance pre-shared key (shown only as a fingerprint).",
            subcommands: [Set.self, Show.self]
        )

        struct Set: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Set (or rotate) the key; give both appliances of a pair the same one."
            )

            @OptionGroup var box: BoxOptions

            @Option(help: "Environment variable holding the key.")
            var keyEnv: String = "FAILOVER_KEY"

            @Option(help: "File (mode 0600) holding the key; wins over --key-env.")
            var keyFile: String?

            func run() async throws {
                let key = try requiredSecret(environment: keyEnv, file: keyFile, what: "inter-appliance key")
                let status: FailoverKeyStatus = try await box.session().call(
                    .setFailoverKey,
                    body: FailoverKeyRequest(key: key)
                )
                if box.json { return try printJSON(status) }
                print("\(box.address): inter-appliance key set, fingerprint \(status.fingerprint ?? "-")")
            }
        }

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Show the key's fingerprint.")

            @OptionGroup var box: BoxOptions

            func run() async throws {
                let status: FailoverKeyStatus = try await box.session().call(.failoverKey)
                if box.json { return try printJSON(status) }
                print("\(box.address): \(status.isSet ? "fingerprint \(status.fingerprint ?? "-")" : "no key set")")
            }
        }
    }

    struct Establish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make ADDRESS the primary and the appliance at --backup its backup.",
            discussion: """
                Both directions are validated with the inter-appliance key before anything changes. The backup \
                pulls its first sync after --first-sync-delay seconds (60, as the vendor's), then every --interval.
                """
        )

        @OptionGroup var box: BoxOptions

        @Option(help: "How the primary reaches the new backup, HOST:PORT (not the shared site hostname).")
        var backup: String

        @Option(help: "How the backup reaches the primary back, HOST:PORT.")
        var reverse: String

        @Option(help: "Seconds between syncs.")
        var interval: Int = 300

        @Option(help: "Seconds until the first sync.")
        var firstSyncDelay: Int = 60

        func validate() throws {
            guard HostPort(backup) != nil, HostPort(reverse) != nil else {
                throw ValidationError("--backup and --reverse must be HOST:PORT, e.g. 127.0.0.12:8443")
            }
        }

        func run() async throws {
            let status: FailoverStatus = try await box.session().call(
                .establishFailover,
                body: EstablishRequest(
                    backup: backup,
                    reverse: reverse,
                    intervalSeconds: interval,
                    firstSyncDelaySeconds: firstSyncDelay
                )
            )
            if box.json { return try printJSON(status) }
            print("\(box.address) is primary; \(backup) is its backup (first sync in \(firstSyncDelay) s).")
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Role, peer, last sync and the sync history.")

        @OptionGroup var box: BoxOptions

        func run() async throws {
            let status: FailoverStatus = try await box.session().call(.failoverStatus)
            if box.json { return try printJSON(status) }
            print("Role        \(status.role)\(status.peer.map { " (peer \($0))" } ?? "")")
            print("Key         \(status.key.fingerprint ?? "not set")")
            if let conflict = status.conflict { print("CONFLICT    \(conflict)") }
            if let last = status.lastSync {
                print(
                    "Last sync   \(APICoding.formatDate(last.finishedAt)) \(last.result)\(last.error.map { ": \($0)" } ?? "")"
                )
                print(
                    "            \(String(format: "%.3f", last.durationSeconds)) s, \(last.bytes) bytes, "
                        + "\(last.historyRows) history rows, \(last.files) files, \(last.recordings) recordings"
                )
            }
            if let lag = status.lagSeconds { print("Lag         \(String(format: "%.1f", lag)) s") }
            if let next = status.nextSyncAt { print("Next sync   \(APICoding.formatDate(next))") }
        }
    }

    struct Sync: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make the backup at ADDRESS pull a sync now.")

        @OptionGroup var box: BoxOptions

        @Flag(help: "Wait until the sync has finished and print its result.")
        var wait = false

        func run() async throws {
            let session = try await box.session()
            guard wait else {
                try await session.perform(.syncNow, body: SyncNowRequest(wait: false))
                print("\(box.address): sync started.")
                return
            }
            let record: SyncRecord = try await session.call(.syncNow, body: SyncNowRequest(wait: true))
            if box.json { return try printJSON(record) }
            print(
                "\(box.address): sync \(record.result) in \(String(format: "%.3f", record.durationSeconds)) s: "
                    + "\(record.bytes) bytes, \(record.historyRows) history rows, \(record.files) files, "
                    + "\(record.recordings) recordings"
            )
        }
    }

    struct BecomePrimary: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "become-primary",
            abstract: "Make the backup at ADDRESS the primary; the peer, if reachable, becomes the backup."
        )

        @OptionGroup var box: BoxOptions

        @Flag(help: "Pull a final sync first (users on the primary are logged out meanwhile).")
        var syncFirst = false

        @Flag(help: "Become primary even if the peer cannot be reached.")
        var force = false

        func run() async throws {
            let status: FailoverStatus = try await box.session().call(
                .becomePrimary,
                body: BecomePrimaryRequest(syncFirst: syncFirst, force: force)
            )
            if box.json { return try printJSON(status) }
            print("\(box.address) is now \(status.role).")
        }
    }

    struct Break: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "End the relationship; nothing but the relationship is lost on either appliance."
        )

        @OptionGroup var box: BoxOptions

        func run() async throws {
            let status: FailoverStatus = try await box.session().call(.breakFailover)
            if box.json { return try printJSON(status) }
            print("\(box.address) is \(status.role) again.")
        }
    }

    struct Fix: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "End a conflict of two primaries: one stays primary, the other merges into it and becomes backup.",
            discussion: """
                The rule, in order: (1) the box that holds the enabled shared address (an address configured on \
                both boxes, enabled and listening on only one) stays primary; (2) else the box with the newest data \
                (newest history row's end, or change of a file or recording the other lacks); (3) else the box \
                named with --winner. The winner first takes from the loser every history row it lacks (by uid, \
                once) and the files and recordings it lacks; then the loser becomes its backup and its next sync \
                makes it equal. Settings and users: the winner's replace the loser's. --dry-run shows all this and \
                changes nothing.
                """
        )

        @OptionGroup var box: BoxOptions

        @Flag(help: "Say what each box would become and what would be merged or overwritten; change nothing.")
        var dryRun = false

        @Option(help: "The box to keep as primary when the rule cannot decide: its appliance id or address.")
        var winner: String?

        func validate() throws {
            if let winner, winner.trimmingCharacters(in: .whitespaces).isEmpty {
                throw ValidationError("--winner needs an appliance id or an address, e.g. 127.0.0.12:8443")
            }
        }

        func run() async throws {
            let result: FailoverFixResult = try await box.session().call(
                .fixFailover,
                body: FailoverFixRequest(dryRun: dryRun, winner: winner)
            )
            if box.json { return try printJSON(result) }
            print(result.dryRun ? "Dry run: nothing was changed." : "Fixed.")
            print("Rule        \(result.reason)")
            for side in [result.winner, result.loser] {
                print(
                    "\(side.address.padding(toLength: 22, withPad: " ", startingAt: 0)) \(side.role) -> "
                        + "\(side.becomes) (\(side.applianceId), \(side.historyRows) history rows)"
                )
            }
            let merged = result.merged
            print(
                "\(result.dryRun ? "Would merge" : "Merged")  \(merged.historyRows) history rows, \(merged.files) "
                    + "files, \(merged.recordings) recordings from \(result.loser.address) into \(result.winner.address)"
            )
            let receives = result.loserReceives
            print(
                "Then sync   \(receives.historyRows) history rows, \(receives.files) files, \(receives.recordings) "
                    + "recordings to \(result.loser.address)"
            )
            let lost = result.overwritten
            let replaced =
                lost.files.map { "file \($0)" } + lost.recordings.map { "recording \($0)" }
                + lost.settings.map { "setting \($0)" } + lost.users.map { "user \($0)" }
                + (lost.securityPolicy ? ["the security policy"] : [])
            print(
                "Overwritten \(replaced.isEmpty ? "nothing" : replaced.joined(separator: ", ")) on \(result.loser.address)"
            )
            print(result.next)
        }
    }
}
