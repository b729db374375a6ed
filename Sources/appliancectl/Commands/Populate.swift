import ApplianceAPI
import ApplianceClient
import ArgumentParser

/// `appliancectl populate ADDRESS --size 1GiB`: fill a box with generated site data (demos, tests, benchmarks).
struct Populate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fill an appliance with realistic generated site data of a given size.",
        discussion: "About 15% history, 35% file store, 50% recordings; the same seed gives the same data."
    )

    @OptionGroup var box: BoxOptions

    @Option(help: "Total size, e.g. 200MiB or 1GiB.")
    var size: String

    @Option(help: "Seed of the generator.")
    var seed: UInt64 = 1

    func validate() throws {
        guard Self.parseSize(size) != nil else {
            throw ValidationError("--size must be a number with an optional unit KiB, MiB or GiB, e.g. 1GiB")
        }
    }

    static func parseSize(_ text: String) -> Int64? {
        let units: [(String, Int64)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            return Int64(text.dropLast(suffix.count)).map { $0 * factor }
        }
        return Int64(text)
    }

    func run() async throws {
        let bytes = Self.parseSize(size) ?? 0
        let summary: SiteSummary = try await box.session().call(
            .generateSiteData,
            body: GenerateSiteDataRequest(bytes: bytes, seed: seed)
        )
        if box.json {
            try printJSON(summary)
        } else {
            print(
                "\(box.address) now holds \(summary.userCount) users, \(summary.settingsCount) settings, "
                    + "\(summary.historyRows) history rows, \(summary.fileCount) files "
                    + "(\(Terminal.bytes(summary.fileBytes))), \(summary.recordingCount) recordings "
                    + "(\(Terminal.bytes(summary.recordingBytes)))"
            )
        }
    }
}

/// `appliancectl summary ADDRESS`: counts and digests of the site, to compare two boxes.
struct Summary: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print counts and digests of an appliance's site.")

    @OptionGroup var box: BoxOptions

    func run() async throws {
        let summary: SiteSummary = try await box.session().call(.siteSummary)
        try printJSON(summary)
    }
}
