import ApplianceAPI
import ApplianceClient
import ArgumentParser

/// `appliancectl first-login ADDRESS`: replace the factory password `admin` / `password` (A2).
struct FirstLogin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "first-login",
        abstract: "Log in with the factory credentials and set the administrator password.",
        discussion: "The new password is read from --password-env (default APPLIANCE_PASSWORD) or --password-file."
    )

    @OptionGroup var box: BoxOptions

    func run() async throws {
        let newPassword = try box.password()
        let connection = try await box.connect()
        let login = try await connection.login(username: "admin", password: "password")
        guard login.passwordChangeRequired else {
            throw CommandError("\(box.address) has no factory password any more; use `appliancectl login`")
        }
        try await connection.authenticated(login.token).perform(
            .changePassword,
            body: ChangePasswordRequest(currentPassword: "password", newPassword: newPassword)
        )
        print("The administrator password of \(box.address) is set.")
    }
}

/// `appliancectl login ADDRESS`: check credentials (and print a session token with --print-token).
struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check that the credentials log in.")

    @OptionGroup var box: BoxOptions

    @Flag(help: "Print the session token on standard output (for scripts).")
    var printToken = false

    func run() async throws {
        // The secret first: a password file others can read is refused before anything goes over the network.
        let password = try box.password()
        let connection = try await box.connect()
        let login = try await connection.login(username: box.user, password: password)
        if login.passwordChangeRequired {
            throw CommandError("password change required: run `appliancectl first-login \(box.address)`")
        }
        if printToken {
            print(login.token)
        } else {
            print(
                "Logged in to \(box.address) as \(box.user); session valid until "
                    + APICoding.formatDate(login.expiresAt)
            )
        }
    }
}
