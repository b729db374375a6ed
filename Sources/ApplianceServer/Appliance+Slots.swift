import ApplianceAPI
import ApplianceStore
import Foundation
import HTTPTypes
import Logging
import ProcessSpawn
import SoftwarePackages

/// X4: A/B software slots. Before an install changes the software, what ran before is kept as the previous slot
/// (`DATA_DIR/software/slots.json` and the payloads in `DATA_DIR/software/slot-<id>/`); a rollback returns to it,
/// once. `slots.json` is the record of what is installed: after a crash the box database is brought in line with it.
extension Appliance {
    /// `DATA_DIR/software`: `slots.json`, the previous slot's payloads, the last self-test's output.
    var softwareDirectory: URL { directory.root.appendingPathComponent("software", isDirectory: true) }

    var slotStore: SoftwareSlotStore { SoftwareSlotStore(directory: softwareDirectory) }

    /// The file name of an installed package's payload among `packagesDirectory`.
    static func payloadFileName(name: String, version: String) -> String {
        "\(name)-\(version).payload"
    }

    /// The recorded slots, or the installed software as the only slot before the first install.
    func softwareSlots() throws -> SoftwareSlots {
        if let slots = try slotStore.load() { return slots }
        return SoftwareSlots(current: try slotFromBox(id: "factory"), previous: nil)
    }

    func slotsResponse() throws -> SoftwareSlotsResponse {
        let slots = try softwareSlots()
        return SoftwareSlotsResponse(current: Self.info(slots.current), previous: slots.previous.map(Self.info))
    }

    /// The software the box database records, as a slot.
    private func slotFromBox(id: String) throws -> SoftwareSlot {
        let records = try box.installedPackageRecords()
        let packages = records.map { record in
            let payload = Self.payloadFileName(name: record.name, version: record.version)
            let exists = FileManager.default.fileExists(atPath: packagesDirectory.appendingPathComponent(payload).path)
            return SoftwareSlot.Package(
                name: record.name,
                kind: record.kind,
                version: record.version,
                payload: exists ? payload : nil,
                installedAt: record.installedAt
            )
        }
        return SoftwareSlot(
            id: id,
            installedAt: records.map(\.installedAt).max() ?? startedAt,
            packages: packages,
            siteHash: try box.siteHash()
        )
    }

    private static func versions(_ slot: SoftwareSlot) -> Set<String> {
        Set(slot.packages.map { "\($0.name) \($0.version)" })
    }

    /// Makes the box database record exactly the software of `slot`.
    private func apply(_ slot: SoftwareSlot) throws {
        try box.replaceInstalledSoftware(
            slot.packages.map {
                InstalledPackageRecord(name: $0.name, kind: $0.kind, version: $0.version, installedAt: $0.installedAt)
            },
            siteHash: slot.siteHash
        )
    }

    /// Removes installed payloads the current slot does not use (the previous slot keeps its own links).
    private func prunePayloads(keeping slot: SoftwareSlot) {
        let keep = Set(slot.packages.compactMap(\.payload))
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: packagesDirectory.path)) ?? []
        where name.hasSuffix(".payload") && !keep.contains(name) {
            try? fm.removeItem(at: packagesDirectory.appendingPathComponent(name))
        }
    }

    /// At start-up: finishes a software change a crash interrupted (the database follows `slots.json`), marks a
    /// self-test that was running as failed, and removes slot directories nothing refers to.
    func recoverSoftwareSlots() throws {
        guard var slots = try slotStore.load() else {
            slotStore.removeSlotDirectories(except: [])
            return
        }
        let recorded = try slotFromBox(id: slots.current.id)
        if Self.versions(recorded) != Self.versions(slots.current) || recorded.siteHash != slots.current.siteHash {
            logger.notice(
                "Finishing an interrupted software change",
                metadata: ["slot.id": "\(slots.current.id)"]
            )
            try apply(slots.current)
        }
        if slots.current.selfTest == .running {
            slots.current.selfTest = .failed
            slots.current.selfTestMessage =
                "applianced stopped while the self-test ran, so it did not pass; roll back with `appliancectl "
                + "updates rollback ADDRESS`, or install a fixed package"
            try slotStore.save(slots)
        }
        slotStore.removeSlotDirectories(except: Set([slots.previous?.id].compactMap { $0 }))
        prunePayloads(keeping: slots.current)
    }

    /// Called by an install (inside the exclusive section, the payload already among the installed payloads):
    /// keeps the software that runs now as the previous slot and makes the new set current, in that order, each
    /// step atomic. Returns the new current slot.
    func enterSlot(installing manifest: PackageManifest) throws -> SoftwareSlot {
        let fromBox = try slotFromBox(id: UUID().uuidString.lowercased())
        // The recorded current slot, unless the database says otherwise (then the database is what runs).
        let before =
            try slotStore.load().map(\.current).flatMap {
                Self.versions($0) == Self.versions(fromBox) ? $0 : nil
            } ?? fromBox
        try slotStore.keep(before, payloadsFrom: packagesDirectory)
        crash(at: "install:kept")
        let now = Date()
        var packages = before.packages.filter { $0.name != manifest.name }
        packages.append(
            SoftwareSlot.Package(
                name: manifest.name,
                kind: manifest.kind.rawValue,
                version: manifest.version,
                payload: Self.payloadFileName(name: manifest.name, version: manifest.version),
                installedAt: now
            )
        )
        let current = SoftwareSlot(
            id: UUID().uuidString.lowercased(),
            installedAt: now,
            packages: packages,
            siteHash: manifest.kind == .site ? BoxDatabase.newSiteHash() : before.siteHash,
            selfTest: manifest.selfTest == nil ? .none : .running,
            selfTestPackage: manifest.selfTest == nil ? nil : "\(manifest.name) \(manifest.version)"
        )
        try slotStore.save(SoftwareSlots(current: current, previous: before))
        crash(at: "install:recorded")
        try apply(current)
        crash(at: "install:applied")
        slotStore.removeSlotDirectories(except: [before.id])
        prunePayloads(keeping: current)
        return current
    }

    /// X4: returns base, site and add-on versions to the previous slot. Only that one step back: afterwards
    /// there is no previous slot until the next install. Every user is logged out, as after an install.
    func rollback() throws -> RollbackResponse {
        try beginExclusive("software rollback")
        defer { endExclusive() }
        guard let slots = try slotStore.load(), let previous = slots.previous else {
            throw ApplianceServerError(
                .conflict,
                "no_previous_slot",
                "there is no previous software slot to roll back to: the appliance keeps only the software it ran "
                    + "before its last install, and a rollback uses it up; to change the software now, install a "
                    + "newer package (`appliancectl updates install ADDRESS NAME`), or restore the box from a backup"
            )
        }
        let rolledBack = try box.installedSoftware()
        try slotStore.restorePayloads(of: previous, to: packagesDirectory)
        crash(at: "rollback:payloads")
        try slotStore.save(SoftwareSlots(current: previous, previous: nil))
        crash(at: "rollback:recorded")
        try apply(previous)
        crash(at: "rollback:applied")
        slotStore.removeSlotDirectories(except: [])
        prunePayloads(keeping: previous)
        try site.logoutEveryone()
        let software = try box.installedSoftware()
        logger.notice(
            "Software rolled back",
            metadata: [
                "slot.id": "\(previous.id)", "software.base": "\(software.baseVersion)",
                "software.site": "\(software.siteVersion)",
            ]
        )
        let siteChanged = rolledBack.siteVersion != software.siteVersion
        return RollbackResponse(
            software: software,
            rolledBack: rolledBack,
            siteHash: try box.siteHash(),
            installersGeneration: Int(try box.meta("installersGeneration") ?? "1") ?? 1,
            message: "Rolled back to the previous software slot; there is no further step back. "
                + (siteChanged
                    ? "The site version changed: client installers generated since the install are invalid, "
                        + "regenerate them; restore the pre-upgrade backup for the site data of that version. " : "")
                + "Every user was logged out."
        )
    }

    // MARK: Post-install self-test

    /// Runs the package's self-test on a thread of its own (it blocks while the program runs) and records the
    /// outcome in the current slot. Returns nil when the package has none.
    func runSelfTest(of manifest: PackageManifest) async throws -> SelfTestReport? {
        guard let test = manifest.selfTest else { return nil }
        let log = slotStore.directory.appendingPathComponent("self-test.log")
        let payload = packagesDirectory.appendingPathComponent(
            Self.payloadFileName(name: manifest.name, version: manifest.version)
        )
        let environment = [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "PACKAGE_NAME=\(manifest.name)", "PACKAGE_VERSION=\(manifest.version)", "PACKAGE_PAYLOAD=\(payload.path)",
        ]
        logger.info("Running the package self-test", metadata: ["package.name": "\(manifest.name)"])
        // The outcome, or why the program could not be started.
        let outcome: Result<Spawn.Outcome, SelfTestStartFailure> = await withCheckedContinuation { continuation in
            Thread {
                do {
                    let outcome = try Spawn.run(
                        "/bin/sh",
                        arguments: ["-c", test.command],
                        environment: environment,
                        output: log.path,
                        timeout: .seconds(test.timeoutSeconds)
                    )
                    continuation.resume(returning: .success(outcome))
                } catch {
                    continuation.resume(returning: .failure(SelfTestStartFailure(description: "\(error)")))
                }
            }.start()
        }
        let failure: String?
        switch outcome {
        case .success(.exited(0)): failure = nil
        case .success(.exited(let status)): failure = "it exited with status \(status)"
        case .success(.timedOut): failure = "it ran longer than its limit of \(test.timeoutSeconds) s and was killed"
        case .failure(let error): failure = "it could not be started (\(error.description))"
        }
        let report = SelfTestReport(
            passed: failure == nil,
            message: failure.map { reason in
                let output = Self.tail(of: log)
                return "the self-test of \(manifest.name) \(manifest.version) failed: \(reason)"
                    + (output.isEmpty ? "" : "; its output ends: \(output)")
            }
        )
        if var slots = try slotStore.load() {
            slots.current.selfTest = report.passed ? .passed : .failed
            slots.current.selfTestMessage = report.message
            try slotStore.save(slots)
        }
        if let message = report.message {
            logger.error("Package self-test failed", metadata: ["package.name": "\(manifest.name)"])
            logger.debug("Self-test output", metadata: ["selftest.message": "\(message)"])
        }
        return report
    }

    /// Why `/health` must answer 500: the current slot's self-test failed. nil otherwise.
    func selfTestFailure() -> String? {
        guard let slot = (try? slotStore.load())?.current, slot.selfTest == .failed else { return nil }
        return "self-test failed for \(slot.selfTestPackage ?? "the last installed package"): "
            + "\(slot.selfTestMessage ?? "no detail recorded"); roll back with `appliancectl updates rollback "
            + "ADDRESS`, or install a fixed package"
    }

    private static func tail(of file: URL) -> String {
        guard let data = try? Data(contentsOf: file) else { return "" }
        let text = String(decoding: data.suffix(400), as: UTF8.self)
        return text.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "\n", with: " | ")
    }

    static func info(_ slot: SoftwareSlot) -> SoftwareSlotInfo {
        SoftwareSlotInfo(
            id: slot.id,
            installedAt: slot.installedAt,
            software: InstalledSoftware(
                baseVersion: slot.packages.first { $0.kind == "base" }?.version ?? "0",
                siteVersion: slot.packages.first { $0.kind == "site" }?.version ?? "0",
                addons: slot.packages.filter { $0.kind == "addon" }.map { "\($0.name) \($0.version)" }.sorted()
            ),
            selfTest: slot.selfTest.rawValue,
            selfTestPackage: slot.selfTestPackage,
            selfTestMessage: slot.selfTestMessage
        )
    }
}

/// Why a self-test program could not be started.
struct SelfTestStartFailure: Error {
    var description: String
}
