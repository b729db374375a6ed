/// The optional properties of the console installer's MSI, as the My Account page offers them.
public struct MSIInstallerOptions: Sendable, Equatable {
    /// ALLUSERS: "" installs for the user running msiexec only, 1 for every user of the machine.
    public enum Scope: Sendable, Equatable {
        case currentUser
        case allUsers
    }

    /// INSTALLDIR: an absolute Windows path (`C:\…` or `\\server\share\…`); nil keeps the installer's default.
    public var installDirectory: String?
    /// RUNATSTARTUP: true starts the console whenever the computer starts; nil keeps the default (0).
    public var runAtStartup: Bool?
    /// ALLUSERS; nil leaves the property out.
    public var scope: Scope?
    /// SHOULDAUTOUPDATE: true lets the console update itself when the site is upgraded; nil keeps the default (0).
    public var shouldAutoUpdate: Bool?
    /// QUIET: no windows, spinners, errors or other visible notices.
    public var quiet: Bool

    public init(
        installDirectory: String? = nil,
        runAtStartup: Bool? = nil,
        scope: Scope? = nil,
        shouldAutoUpdate: Bool? = nil,
        quiet: Bool = false
    ) {
        self.installDirectory = installDirectory
        self.runAtStartup = runAtStartup
        self.scope = scope
        self.shouldAutoUpdate = shouldAutoUpdate
        self.quiet = quiet
    }
}

/// An `msiexec` command line for the console installer and the notes the operator must read before using it.
public struct MSICommandLine: Sendable, Equatable {
    /// A consequence of the chosen options that the command line alone does not show.
    public struct Note: Sendable, Equatable {
        public enum Kind: String, Sendable, Equatable {
            /// ALLUSERS=1 with SHOULDAUTOUPDATE=1: the console does not update itself.
            case allUsersDoesNotAutoUpdate
            /// SHOULDAUTOUPDATE=1 without ALLUSERS: the documentation contradicts itself on the default.
            case scopeDefaultUnclear
            /// ALLUSERS="": the installation belongs to the account that runs msiexec.
            case currentUserContext
            /// The console updates itself only after a first login gave it its token.
            case firstLoginBeforeUpgrade
            /// No automatic updates: reinstall after each site upgrade.
            case manualUpdates
            /// QUIET hides errors too.
            case quietHidesErrors
        }

        public var kind: Kind
        public var message: String
    }

    public var line: String
    public var notes: [Note]

    /// Builds the command line for `file` (the MSI as downloaded, run from its folder).
    ///
    /// Values are quoted the way msiexec reads them: `PROPERTY="value"`, so paths with spaces stay whole.
    /// Quiet mode uses msiexec's own `/quiet` switch, which is what "QUIET" means for any MSI.
    ///
    /// - Throws: `AccountError.invalidInstallerOption` for a file name or folder that cannot be written safely.
    public static func build(file: String, options: MSIInstallerOptions) throws -> MSICommandLine {
        try checkFileName(file)
        var parts = ["msiexec", "/i", "\"\(file)\""]
        if let directory = options.installDirectory {
            parts.append("INSTALLDIR=\"\(try normalisedDirectory(directory))\"")
        }
        if let runAtStartup = options.runAtStartup {
            parts.append("RUNATSTARTUP=\(runAtStartup ? 1 : 0)")
        }
        switch options.scope {
        case .currentUser: parts.append("ALLUSERS=\"\"")
        case .allUsers: parts.append("ALLUSERS=1")
        case nil: break
        }
        if let autoUpdate = options.shouldAutoUpdate {
            parts.append("SHOULDAUTOUPDATE=\(autoUpdate ? 1 : 0)")
        }
        if options.quiet {
            parts.append("/quiet")
        }
        return MSICommandLine(line: parts.joined(separator: " "), notes: notes(for: options))
    }

    private static func notes(for options: MSIInstallerOptions) -> [Note] {
        var notes = [Note]()
        let autoUpdate = options.shouldAutoUpdate == true
        switch (options.scope, autoUpdate) {
        case (.allUsers, true):
            notes.append(
                Note(
                    kind: .allUsersDoesNotAutoUpdate,
                    message: "With ALLUSERS=1 the console does not update itself, although SHOULDAUTOUPDATE=1 is "
                        + "set: reinstall it after every site upgrade, or install per user (ALLUSERS=\"\") "
                        + "to have it update itself."
                )
            )
        case (nil, true):
            notes.append(
                Note(
                    kind: .scopeDefaultUnclear,
                    message: "ALLUSERS is left out. The vendor's documentation names both \"\" and 1 as the "
                        + "default, and with 1 the console does not update itself; choose \"current user\" "
                        + "(ALLUSERS=\"\") to be sure it does."
                )
            )
        default:
            break
        }
        if options.scope == .currentUser {
            notes.append(
                Note(
                    kind: .currentUserContext,
                    message: "ALLUSERS=\"\" installs for the account that runs msiexec. A deployment system must "
                        + "run it as the user who will log in to the console, not as the local system account; "
                        + "no MSI property binds the installation to another user."
                )
            )
        }
        if autoUpdate && options.scope != .allUsers {
            notes.append(
                Note(
                    kind: .firstLoginBeforeUpgrade,
                    message: "The console gets the token it updates with at its first login. Make every user log "
                        + "in once before the site is upgraded; otherwise, and with an MSI from an older version, "
                        + "the update fails with error 1.1gws and the console must be downloaded again."
                )
            )
        }
        if !autoUpdate {
            notes.append(
                Note(
                    kind: .manualUpdates,
                    message: "The console does not update itself (SHOULDAUTOUPDATE is not 1); reinstall it from "
                        + "this page after every site upgrade."
                )
            )
        }
        if options.quiet {
            notes.append(
                Note(
                    kind: .quietHidesErrors,
                    message: "With /quiet the installer shows no errors; check msiexec's exit code (0 is success, "
                        + "3010 asks for a restart) or add /l*v install.log to keep a log."
                )
            )
        }
        return notes
    }

    private static func checkFileName(_ file: String) throws {
        let forbidden = Set("\"<>|?*/\\:")
        guard file.lowercased().hasSuffix(".msi"), file.count > 4,
            !file.contains(where: { forbidden.contains($0) || $0.unicodeScalars.contains(where: isControl) })
        else {
            throw AccountError(
                code: .invalidInstallerOption,
                message: "The installer file name \"\(file)\" must be a plain file name ending in .msi, without "
                    + "a folder, quotes or any of < > | ? * : (run the command in the download folder)."
            )
        }
    }

    /// Checks INSTALLDIR and drops trailing backslashes, since `\"` at the end would escape the closing quote
    /// for programs that parse the line with the C runtime's rules.
    private static func normalisedDirectory(_ directory: String) throws -> String {
        let forbidden = Set("\"<>|?*")
        var path = directory
        while path.count > 3, path.hasSuffix("\\") {
            path.removeLast()
        }
        let characters = Array(path)
        let isDrivePath =
            characters.count > 3 && characters[0].isASCII && characters[0].isLetter && characters[1] == ":"
            && characters[2] == "\\"
        let isNetworkPath = path.hasPrefix("\\\\") && path.count > 2
        let afterPrefix = isDrivePath ? characters.dropFirst(2) : characters[...]
        guard isDrivePath || isNetworkPath,
            !afterPrefix.contains(where: { forbidden.contains($0) || $0 == ":" }),
            !path.unicodeScalars.contains(where: isControl)
        else {
            throw AccountError(
                code: .invalidInstallerOption,
                message: "INSTALLDIR \"\(directory)\" must be a folder given as an absolute Windows path such as "
                    + "C:\\Program Files\\Console or \\\\server\\share\\Console, without quotes or any of < > | ? *."
            )
        }
        return path
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.generalCategory == .control
    }
}
