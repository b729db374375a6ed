import ApplianceAPI
import ApplianceClient
import ApplianceInventory
import ApplianceMigration
import ApplianceProvisioning
import ArgumentParser
import Foundation
import Synchronization

/// Runs or resumes one journaled run with the terminal, the inventory and the hypervisor wired in.
struct MigrationSession {
    let options: InventoryOptions
    let run: RunOptions

    /// Locks the appliances of a run, so no other run or provision touches them meanwhile.
    static func lock(_ settings: MigrationSettings, options: InventoryOptions) throws -> [NameLock] {
        try lock(names: Array(Set([settings.old.name, settings.new.name])).sorted(), options: options)
    }

    static func lock(names: [String], options: InventoryOptions) throws -> [NameLock] {
        var held: [NameLock] = []
        do {
            for name in names {
                held.append(
                    try NameLock.acquire(
                        name: name,
                        directory: options.stateDirectory.appendingPathComponent("locks"),
                        command: "appliancectl run/resume"
                    )
                )
            }
        } catch {
            held.forEach { $0.release() }
            throw error
        }
        return held
    }

    /// The run's environment: terminal questions and progress, provisioning and pin recording.
    func environment(_ record: RunRecord, directory: URL, console: MigrationConsole) -> MigrationEnvironment {
        let options = options
        let run = run
        let newName = record.settings.new.name
        return MigrationEnvironment(
            runDirectory: directory,
            confirm: { question in
                console.pause()
                return run.yes || (question.contains("EULA") && run.acceptEula) || Confirmation.ask(question)
            },
            events: { console.handle($0) },
            installVirtual: {
                let (result, _) = try await provisionVirtualAppliance(
                    name: newName,
                    options: options,
                    image: run.image,
                    keepFailed: false,
                    readyTimeout: run.readyTimeout,
                    lockHeld: true
                )
                return BoxReference(name: newName, address: result.address, pin: result.pin, isVirtual: true)
            },
            recordPin: { name, address, pin in
                if let parsed = TLSPin(pin) { try options.pinStore.record(parsed, for: address) }
                _ = try Inventory.record(appliance: name, address: nil, id: nil, pin: pin, in: options.inventoryFile)
            }
        )
    }

    func runDirectory(_ record: RunRecord) throws -> URL {
        let directory = options.stateDirectory.appendingPathComponent("runs").appendingPathComponent(record.id)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    func execute(
        _ record: RunRecord,
        journal: Journal,
        secrets: MigrationSecrets,
        verifiedElsewhere: Bool = false
    ) async throws {
        let directory = try runDirectory(record)
        let console = MigrationConsole(quiet: options.json)
        let runner = try MigrationRunner(
            record: record,
            journal: journal,
            secrets: secrets,
            environment: environment(record, directory: directory, console: console),
            verifiedElsewhere: verifiedElsewhere
        )
        let beforeFile = directory.appendingPathComponent("before.json")
        let before: [BoxSnapshot]
        if let data = try? Data(contentsOf: beforeFile),
            let saved = try? APICoding.decoder().decode([BoxSnapshot].self, from: data)
        {
            before = saved
        } else {
            before = await runner.snapshots()
            try APICoding.encoder().encode(before).write(to: beforeFile, options: .atomic)
        }
        var failure: (any Error)?
        do {
            try await runner.run()
        } catch {
            failure = error
        }
        console.pause()
        try await writeReport(record, runner: runner, journal: journal, before: before, failure: failure)
        if let failure {
            throw CommandError(
                ExitStatus.isRefusal(failure) ? .refused : .failed,
                Self.advice(failure, runId: record.id)
            )
        }
    }

    /// The failure with what to do next: resume where resuming can help, abort otherwise.
    static func advice(_ failure: any Error, runId: String) -> String {
        let code = (failure as? MigrationError)?.code
        switch code {
        case .refused?, .declined?, .verification?:
            return "\(failure)"  // these say themselves what to do
        default:
            return "\(failure)\nFix the cause, then continue with `appliancectl resume \(runId)`, or end the run with "
                + "`appliancectl abort \(runId)` (the old appliance serves as before)"
        }
    }

    /// Writes report.json and report.md and prints where they are (or the report itself with --json).
    func writeReport(
        _ record: RunRecord,
        runner: MigrationRunner,
        journal: Journal,
        before: [BoxSnapshot]?,
        failure: (any Error)?
    ) async throws {
        let directory = try runDirectory(record)
        let saved = (try? Data(contentsOf: directory.appendingPathComponent("before.json")))
            .flatMap { try? APICoding.decoder().decode([BoxSnapshot].self, from: $0) }
        let after = await runner.snapshots()
        let report = MigrationReport(
            record: record,
            machine: await runner.state,
            entries: try journal.entries(record.id),
            error: failure.map { "\($0)" },
            before: before ?? saved ?? [],
            after: after
        )
        let (json, markdown) = try report.write(to: directory)
        if options.json {
            try printJSON(report)
        } else {
            print("Run \(record.id): \(report.state.rawValue)")
            if !report.comparison.isEmpty {
                let matched = report.comparison.filter(\.matches).count
                print("Verification: \(matched) of \(report.comparison.count) items matched")
            }
            if let downtime = report.downtimeSeconds {
                print("Downtime: \(String(format: "%.1f", downtime)) s (site writes refused from the freeze on)")
            }
            print("Report: \(markdown.path) and \(json.path)")
        }
    }

    /// `appliancectl abort RUN`: ends the run; the old appliance serves as before.
    func abort(_ record: RunRecord, journal: Journal, secrets: MigrationSecrets) async throws {
        let directory = try runDirectory(record)
        let console = MigrationConsole(quiet: options.json)
        let runner = try MigrationRunner(
            record: record,
            journal: journal,
            secrets: secrets,
            environment: environment(record, directory: directory, console: console),
            verifiedElsewhere: record.kind == "decommission"
        )
        for line in try await runner.abort() { Terminal.note(line) }
        try await writeReport(record, runner: runner, journal: journal, before: nil, failure: nil)
    }
}

/// Turns run events into spinners and progress bars on standard error (P10).
final class MigrationConsole: Sendable {
    let quiet: Bool
    private let state = Mutex<(spinner: Spinner?, bars: [String: ProgressBar])>((nil, [:]))

    init(quiet: Bool) {
        self.quiet = quiet
    }

    func pause() {
        state.withLock { $0.spinner?.pause() }
    }

    func handle(_ event: MigrationEvent) {
        guard !quiet else { return }
        switch event {
        case .stepStarted(let step, let resuming):
            let spinner = Spinner((resuming ? "(resuming) " : "") + step.title)
            state.withLock { $0.spinner = spinner }
        case .stepDone:
            let spinner = state.withLock { state -> Spinner? in
                defer { state.spinner = nil }
                return state.spinner
            }
            spinner?.finish("✔")
        case .note(let text):
            pause()
            Terminal.note("  \(text)")
        case .bytes(let label, let done, let total):
            let bar = state.withLock { state -> ProgressBar in
                state.spinner?.pause()
                if let bar = state.bars[label] { return bar }
                let bar = ProgressBar(label: "  " + label, total: total)
                state.bars[label] = bar
                return bar
            }
            bar.update(done)
        case .transferFinished(let label):
            let bar = state.withLock { $0.bars.removeValue(forKey: label) }
            bar?.finish()
        }
    }
}
