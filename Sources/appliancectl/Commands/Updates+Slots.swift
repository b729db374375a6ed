import ApplianceAPI
import ApplianceClient
import ArgumentParser
import Foundation

/// `appliancectl updates slots|rollback` (X4): the previous software slot and the one step back to it.
extension Updates {
    struct Slots: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the installed software slot and the previous one a rollback returns to."
        )

        @OptionGroup var box: BoxOptions

        func run() async throws {
            let answer = try await box.session().softwareSlots()
            if box.json { return try printJSON(answer) }
            print("Current:  \(Self.describe(answer.current))")
            if let previous = answer.previous {
                print("Previous: \(Self.describe(previous))")
            } else {
                print("Previous: none (nothing to roll back to)")
            }
        }

        static func describe(_ slot: SoftwareSlotInfo) -> String {
            let software = slot.software
            var text = "base \(software.baseVersion), site \(software.siteVersion)"
            if !software.addons.isEmpty { text += ", " + software.addons.joined(separator: ", ") }
            text += " (installed \(APICoding.formatDate(slot.installedAt)))"
            if slot.selfTest == "failed" {
                text += " — self-test of \(slot.selfTestPackage ?? "the package") FAILED: \(slot.selfTestMessage ?? "")"
            }
            return text
        }
    }

    struct Rollback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Return base, site and add-on versions to the previous slot (one step back only).",
            discussion: "The site data is not changed: restore the pre-upgrade backup for the older site version."
        )

        @OptionGroup var box: BoxOptions

        func run() async throws {
            let answer = try await box.session().rollback()
            if box.json { return try printJSON(answer) }
            let software = answer.software
            print(
                "Rolled back \(box.address) to base \(software.baseVersion), site \(software.siteVersion). "
                    + answer.message
            )
        }
    }
}
