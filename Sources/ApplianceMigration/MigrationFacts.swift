import ApplianceClient
import ProcedureEngine

/// What a migration's done steps found, as typed fields: read from the journal's step details (which keep
/// them as text, for the report and for older versions) and kept up to date as steps finish.
struct MigrationFacts: Sendable, Equatable {
    var oldApplianceId: String?
    var oldHostname: String?
    var oldSiteVersion: String?
    /// The key the old box presented at pre-flight.
    var oldPin: TLSPin?
    /// About what the old site takes on the new box (pre-flight's estimate).
    var siteBytes: Int64?
    var newAddress: String?
    var newPin: TLSPin?
    var newApplianceId: String?
    /// The proven backup of step 2.
    var backupFile: String?
    /// The certificate's name on the new box, or `factory` when the old box served its factory one.
    var certificate: String?
    var certificateId: Int64?
    /// The key the new box presents once the certificate is assigned (step 4).
    var certificatePin: TLSPin?
    /// The old box's address entry that let go of the site address at the cutover.
    var oldReleasedAddressId: String?
    /// The old box was factory-reset (decommission).
    var oldReset = false

    init(_ detail: StepDetail = [:]) {
        learn(detail)
    }

    /// Takes in what a step found; keys it does not name are the report's alone.
    mutating func learn(_ detail: StepDetail) {
        func text(_ key: String, _ field: inout String?) {
            if let value = detail[key] { field = value }
        }
        func pin(_ key: String, _ field: inout TLSPin?) {
            if let value = detail[key].flatMap(TLSPin.init) { field = value }
        }
        func number(_ key: String, _ field: inout Int64?) {
            if let value = detail[key].flatMap(Int64.init) { field = value }
        }
        text("oldApplianceId", &oldApplianceId)
        text("oldHostname", &oldHostname)
        text("oldSiteVersion", &oldSiteVersion)
        pin("oldPin", &oldPin)
        number("siteBytes", &siteBytes)
        text("newAddress", &newAddress)
        pin("newPin", &newPin)
        text("newApplianceId", &newApplianceId)
        text("backupFile", &backupFile)
        text("certificate", &certificate)
        number("certificateId", &certificateId)
        pin("certificatePin", &certificatePin)
        text("oldReleasedAddressId", &oldReleasedAddressId)
        if detail["oldReset"] == "yes" { oldReset = true }
    }
}
