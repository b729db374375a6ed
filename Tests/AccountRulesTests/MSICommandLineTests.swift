import AccountRules
import Testing

@Suite struct MSICommandLineTests {
    typealias Kind = MSICommandLine.Note.Kind

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var options: MSIInstallerOptions
        var line: String
        var notes: [Kind]
        var testDescription: String { name }
    }

    static let prefix = "msiexec /i \"console-win64.msi\""

    static let cases: [Case] = [
        Case(name: "defaults", options: MSIInstallerOptions(), line: prefix, notes: [.manualUpdates]),
        Case(
            name: "all properties, per user, auto-update",
            options: MSIInstallerOptions(
                installDirectory: #"C:\Program Files\Support Console"#,
                runAtStartup: true,
                scope: .currentUser,
                shouldAutoUpdate: true,
                quiet: true
            ),
            line: prefix + #" INSTALLDIR="C:\Program Files\Support Console" RUNATSTARTUP=1 ALLUSERS="""#
                + " SHOULDAUTOUPDATE=1 /quiet",
            notes: [.currentUserContext, .firstLoginBeforeUpgrade, .quietHidesErrors]
        ),
        Case(
            name: "ALLUSERS=1 with SHOULDAUTOUPDATE=1 does not auto-update",
            options: MSIInstallerOptions(scope: .allUsers, shouldAutoUpdate: true),
            line: prefix + " ALLUSERS=1 SHOULDAUTOUPDATE=1",
            notes: [.allUsersDoesNotAutoUpdate]
        ),
        Case(
            name: "auto-update without ALLUSERS",
            options: MSIInstallerOptions(shouldAutoUpdate: true),
            line: prefix + " SHOULDAUTOUPDATE=1",
            notes: [.scopeDefaultUnclear, .firstLoginBeforeUpgrade]
        ),
        Case(
            name: "explicit zeros",
            options: MSIInstallerOptions(runAtStartup: false, scope: .allUsers, shouldAutoUpdate: false),
            line: prefix + " RUNATSTARTUP=0 ALLUSERS=1 SHOULDAUTOUPDATE=0",
            notes: [.manualUpdates]
        ),
        Case(
            name: "trailing backslash dropped, UNC path",
            options: MSIInstallerOptions(installDirectory: #"\\files\apps\Console\\"#),
            line: prefix + #" INSTALLDIR="\\files\apps\Console""#,
            notes: [.manualUpdates]
        ),
    ]

    @Test(arguments: cases)
    func builds(_ testCase: Case) throws {
        let result = try MSICommandLine.build(file: "console-win64.msi", options: testCase.options)
        #expect(result.line == testCase.line)
        #expect(result.notes.map(\.kind) == testCase.notes)
        #expect(result.notes.allSatisfy { !$0.message.isEmpty })
    }

    @Test func allUsersNoteSaysWhatToDo() throws {
        let options = MSIInstallerOptions(scope: .allUsers, shouldAutoUpdate: true)
        let note = try #require(try MSICommandLine.build(file: "c.msi", options: options).notes.first)
        #expect(note.message.contains("does not update itself") && note.message.contains(#"ALLUSERS="""#))
    }

    @Test(arguments: [
        #"C:\"#, "C:", "Program Files", #"C:\Pro"gram"#, #"C:\a|b"#, "C:\\a\nb",
        #"C:\a:b"#, "", #"\\"#,
    ])
    func refusesDirectory(_ directory: String) {
        let options = MSIInstallerOptions(installDirectory: directory)
        let error = #expect(throws: AccountError.self) { try MSICommandLine.build(file: "c.msi", options: options) }
        #expect(error?.code == .invalidInstallerOption)
    }

    @Test(arguments: ["console.exe", ".msi", #"dir\console.msi"#, "con\"sole.msi", "a*.msi", ""])
    func refusesFileName(_ file: String) {
        let error = #expect(throws: AccountError.self) {
            try MSICommandLine.build(file: file, options: MSIInstallerOptions())
        }
        #expect(error?.code == .invalidInstallerOption)
    }

    @Test func fileNameWithSpacesIsQuoted() throws {
        let result = try MSICommandLine.build(file: "Support Console.MSI", options: MSIInstallerOptions(quiet: true))
        #expect(result.line == #"msiexec /i "Support Console.MSI" /quiet"#)
    }
}
