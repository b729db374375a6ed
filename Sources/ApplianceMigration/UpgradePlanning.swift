public import ApplianceAPI
import BackupFormat
import Foundation
import ProcedureEngine
import SoftwarePackages

/// One package an upgrade installs.
public struct UpgradePlanEntry: Codable, Sendable, Hashable {
    public var name: String
    public var kind: String
    public var version: String

    public init(name: String, kind: String, version: String) {
        self.name = name
        self.kind = kind
        self.version = version
    }

    /// "site 24.2.0".
    public var label: String { "\(name) \(version)" }
}

/// The pure decisions of an upgrade: what to install, what is refused before anything changes, and what the
/// verification compares. No I/O.
public enum UpgradePlanning {
    /// Why upgrading a box running site `installed` to `target` is refused before anything changes (a
    /// downgrade, or the version it runs already); nil when `target` is newer or absent.
    public static func downgradeRefusal(box: String, target: String?, installed: String) -> String? {
        guard let target, let wanted = try? SoftwareVersion(target), let current = try? SoftwareVersion(installed)
        else { return nil }
        if wanted == current {
            return "\(box) already runs site version \(installed); there is nothing to upgrade and nothing was changed"
        }
        if wanted < current {
            return "the target site version \(target) is older than the \(installed) \(box) runs: a downgrade is "
                + "refused and nothing was changed; give a newer target (to go back, restore a backup made before "
                + "the last upgrade, or `appliancectl updates rollback ADDRESS` for one step)"
        }
        return nil
    }

    /// The packages to install, dependencies first, from the box's update plan (`updates`, in installation
    /// order), or why the upgrade is refused before anything changes.
    ///
    /// With a target, every applicable base and add-on update comes first, then the site package of that
    /// version. Without one, every applicable update. Refused: a downgrade, a target the source does not offer
    /// (unknown), a site update waiting for a package the source lacks (missing dependency), nothing to do.
    public static func plan(
        box: String,
        target: String?,
        installed: InstalledSoftware,
        updates: UpdatesResponse
    ) -> Result<[UpgradePlanEntry], MigrationError> {
        func refuse(_ message: String) -> Result<[UpgradePlanEntry], MigrationError> {
            .failure(MigrationError(.refused, message))
        }
        if let refusal = downgradeRefusal(box: box, target: target, installed: installed.siteVersion) {
            return refuse(refusal)
        }
        let source = updates.source ?? "the box's update source"
        let applicable = updates.updates.filter { $0.status == "applicable" }
        let blocked = updates.updates.filter { $0.status != "applicable" }
        guard let target else {
            guard !applicable.isEmpty else {
                if let waiting = blocked.first {
                    let why = waiting.message ?? "it waits for \(waiting.waitingFor ?? "a required package")"
                    return refuse(
                        "\(waiting.name) \(waiting.version) cannot be installed: \(why); add the missing package to "
                            + "\(source); nothing was changed"
                    )
                }
                return refuse(
                    "\(box) is up to date with \(source); there is nothing to upgrade and nothing was changed"
                )
            }
            return .success(applicable.map(entry))
        }
        let wanted = (try? SoftwareVersion(target))
        guard let site = updates.updates.first(where: { $0.kind == "site" }),
            let offered = try? SoftwareVersion(site.version), let wanted, offered >= wanted
        else {
            let newest = updates.updates.first { $0.kind == "site" }.map { "its newest site version is \($0.version)" }
            return refuse(
                "site version \(target) is unknown to \(source) (\(newest ?? "it offers no newer site version")): "
                    + "there is no known upgrade path to it and nothing was changed; add the package to the "
                    + "repository (appliancectl vendor repo-add) or give another target"
            )
        }
        if offered == wanted && site.status != "applicable" {
            return refuse(
                "site \(target) cannot be installed: \(site.message ?? "it waits for a required package"); "
                    + "add the missing dependency to \(source); nothing was changed"
            )
        }
        let dependencies = applicable.filter { $0.kind != "site" }.map(entry)
        return .success(dependencies + [UpgradePlanEntry(name: site.name, kind: "site", version: target)])
    }

    static func entry(_ update: UpdateEntry) -> UpgradePlanEntry {
        UpgradePlanEntry(name: update.name, kind: update.kind, version: update.version)
    }

    /// Installed packages as name → version ("base", "site", and each add-on "name version").
    public static func versions(_ software: InstalledSoftware) -> [String: String] {
        var versions = ["base": software.baseVersion, "site": software.siteVersion]
        for addon in software.addons {
            let parts = addon.split(separator: " ", maxSplits: 1)
            if parts.count == 2 { versions[String(parts[0])] = String(parts[1]) }
        }
        return versions
    }

    /// The planned packages the box does not have at their planned version (`installed`: name → version).
    public static func missing(_ plan: [UpgradePlanEntry], installed: [String: String]) -> [UpgradePlanEntry] {
        plan.filter { installed[$0.name] != $0.version }
    }

    /// The site summaries before and after, every item but the site version (which an upgrade changes).
    public static func dataComparison(before: SiteSummary, after: SiteSummary) -> [ComparisonItem] {
        ComparisonItem.compare(before, after).filter { $0.item != "site version" }
    }

    /// "base 7.2.0, site 24.1.0" (with add-ons).
    public static func describe(_ software: InstalledSoftware) -> String {
        (["base \(software.baseVersion)", "site \(software.siteVersion)"] + software.addons).joined(separator: ", ")
    }

    /// Whether a health answer is final: a failed self-test does not heal by waiting.
    public static func healthIsFinal(_ health: HealthResponse) -> Bool {
        health.status == "self_test_failed"
    }
}

/// What an install step did so far (online or offline), for its journal detail and its messages.
struct InstallTally: Sendable {
    var installed: [String] = []
    var selfTests: [String] = []
    /// Offline: the package files uploaded (manual install); nil online.
    var uploaded: [String]?

    /// Records an install's answer; a failed self-test stops the install here (the box reports itself unhealthy).
    mutating func record(_ result: InstallResponse, of entry: UpgradePlanEntry, box: String) throws {
        installed.append("\(result.name) \(result.version)")
        guard let test = result.selfTest else { return }
        selfTests.append("\(entry.label): \(test.passed ? "passed" : "FAILED")")
        guard test.passed else {
            throw MigrationError(.upgrade, "\(box): \(test.message ?? "the self-test of \(entry.label) failed")")
        }
    }

    /// The refusal when the operator does not accept the EULA of `entry`.
    func declined(_ entry: UpgradePlanEntry) -> MigrationError {
        MigrationError(
            .declined,
            "the EULA of \(entry.label) was not accepted; "
                + (installed.isEmpty ? "nothing was installed" : "installed so far: \(installed)")
                + " (give --accept-eula)"
        )
    }

    var detail: StepDetail {
        var detail = [
            "installed": installed.isEmpty ? "none needed" : installed.joined(separator: ", "),
            "selfTests": selfTests.isEmpty ? "none" : selfTests.joined(separator: "; "),
        ]
        if let uploaded { detail["uploaded"] = uploaded.isEmpty ? "none needed" : uploaded.joined(separator: ", ") }
        return detail
    }
}

/// What the steps of an upgrade found, as typed values read from the journal.
struct UpgradeFacts: Sendable {
    var applianceId: String?
    var softwareBefore: InstalledSoftware?
    var summaryBefore: SiteSummary?
    var pinBefore: String?
    var plan: [UpgradePlanEntry]?
    var backupFile: String?
    /// Offline: the package files fetched into the run directory.
    var offlineFiles: [FetchedPackage]?

    init(_ detail: StepDetail) throws {
        applianceId = detail["applianceId"]
        pinBefore = detail["pinBefore"]
        backupFile = detail["backupFile"]
        softwareBefore = try Self.decode(detail, "softwareBefore")
        summaryBefore = try Self.decode(detail, "summaryBefore")
        plan = try Self.decode(detail, "plan")
        offlineFiles = try Self.decode(detail, "offlineFiles")
    }

    static func decode<T: Decodable>(_ detail: StepDetail, _ key: String) throws -> T? {
        guard let text = detail[key] else { return nil }
        do {
            return try JSONDecoder().decode(T.self, from: Data(text.utf8))
        } catch {
            throw MigrationError(
                .journal,
                "the journal's '\(key)' of this upgrade cannot be read (\(error)); it was written by another "
                    + "appliancectl version: resume with that one, or abort the run"
            )
        }
    }

    static func encode(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    func required<T>(_ value: T?, _ key: String) throws -> T {
        guard let value else {
            throw MigrationError(
                .journal,
                "the journal has no '\(key)' for this upgrade; abort the run (`appliancectl abort RUN`) and start anew"
            )
        }
        return value
    }
}
