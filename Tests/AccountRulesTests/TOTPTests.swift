import AccountRules
import Foundation
import SeededRandom
import Testing

@Suite struct TOTPTests {
    static let rfcSecret = Array("12345678901234567890".utf8)

    /// RFC 6238 appendix B, the SHA-1 rows (8 digits, 30 s).
    @Test(arguments: [
        (Int64(59), "94287082"), (1_111_111_109, "07081804"), (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"), (2_000_000_000, "69279037"), (20_000_000_000, "65353130"),
    ])
    func rfc6238Vectors(time: Int64, expected: String) throws {
        let totp = try TOTP(secret: Self.rfcSecret, digits: 8)
        #expect(try totp.code(at: time) == expected)
    }

    /// The product's 6 digits are the same truncation modulo 10^6.
    @Test func productCodesHaveSixDigits() throws {
        let totp = try TOTP(secret: Self.rfcSecret)
        #expect(totp.digits == 6 && totp.period == 30)
        #expect(try totp.code(at: 59) == "287082")
        #expect(try totp.code(at: 1_111_111_109) == "081804")
    }

    @Test func refusesShortSecretsAndOddParameters() {
        #expect(throws: AccountError.self) { try TOTP(secret: Array(repeating: 1, count: 15)) }
        #expect(throws: AccountError.self) { try TOTP(secret: Self.rfcSecret, digits: 5) }
        #expect(throws: AccountError.self) { try TOTP(secret: Self.rfcSecret, period: 0) }
    }

    @Test func generatedSecretsAre160BitsAndDiffer() {
        let first = TOTP.generate()
        let second = TOTP.generate()
        #expect(first.secret.count == 20 && first.base32Secret.count == 32)
        #expect(first.secret != second.secret)
    }

    /// A code is accepted in its own step and the next one (60 s), and refused two steps later.
    @Test func windowIsCurrentAndPreviousStep() throws {
        let totp = try TOTP(secret: Self.rfcSecret)
        let issued: Int64 = 1_700_000_010  // 10 s into a step
        let code = try totp.code(at: issued)
        let step = try totp.step(at: issued)
        #expect(try totp.matchingStep(of: code, at: issued) == step)
        #expect(try totp.matchingStep(of: code, at: issued + 30) == step)
        #expect(try totp.matchingStep(of: code, at: step * 30 + 59) == step)
        #expect(try totp.matchingStep(of: code, at: step * 30 + 60) == nil)
        #expect(try totp.matchingStep(of: code, at: issued - 30) == nil)  // a future code is not accepted
    }

    @Test func codeFormat() throws {
        let totp = try TOTP(secret: Self.rfcSecret)
        let code = try totp.code(at: 59)
        #expect(try totp.matchingStep(of: "287 082", at: 59) == 1)
        for bad in ["28708", "2870822", "28708a", "", "２８７０８２"] {
            #expect(throws: AccountError.self) { try totp.matchingStep(of: bad, at: 59) }
        }
        #expect(code == "287082")
        #expect(throws: AccountError.self) { try totp.code(at: -1) }
    }

    @Test func replayGuardAcceptsEachCodeOnce() throws {
        let totp = try TOTP(secret: Self.rfcSecret)
        var guardState = TOTPReplayGuard()
        let now: Int64 = 1_700_000_010
        let code = try totp.code(at: now)
        #expect(try guardState.accept(code: code, user: "ada", totp: totp, at: now) == now / 30)
        let replay = #expect(throws: AccountError.self) {
            try guardState.accept(code: code, user: "ada", totp: totp, at: now + 5)
        }
        #expect(replay?.code == .codeAlreadyUsed)
        // Another user's guard is separate.
        try guardState.accept(code: code, user: "grace", totp: totp, at: now)
        // The next step's code is accepted; after it, the previous step's code is refused as used.
        let next = try totp.code(at: now + 30)
        try guardState.accept(code: next, user: "ada", totp: totp, at: now + 30)
        let previous = try totp.code(at: now - 30)
        let old = #expect(throws: AccountError.self) {
            try guardState.accept(code: previous, user: "grace", totp: totp, at: now + 30)
        }
        #expect(old?.code == .invalidCode)  // two steps old for grace's clock
        #expect(guardState.lastAcceptedStep == ["ada": now / 30 + 1, "grace": now / 30])
    }

    @Test func previousStepCodeIsRefusedAfterCurrentWasUsed() throws {
        let totp = try TOTP(secret: Self.rfcSecret)
        var guardState = TOTPReplayGuard()
        let now: Int64 = 1_700_000_040
        let previous = try totp.code(at: now - 30)
        try guardState.accept(code: try totp.code(at: now), user: "ada", totp: totp, at: now)
        let error = #expect(throws: AccountError.self) {
            try guardState.accept(code: previous, user: "ada", totp: totp, at: now)
        }
        #expect(error?.code == .codeAlreadyUsed)
        guardState.forget(user: "ada")
        #expect(guardState.lastAcceptedStep.isEmpty)
    }

    @Test func wrongCodeIsRefusedWithAHint() throws {
        let totp = try TOTP(secret: Self.rfcSecret)
        var guardState = TOTPReplayGuard()
        let wrong = try totp.code(at: 59) == "000000" ? "111111" : "000000"
        let error = #expect(throws: AccountError.self) {
            try guardState.accept(code: wrong, user: "ada", totp: totp, at: 59)
        }
        #expect(error?.code == .invalidCode)
        #expect(error?.message.contains("clock") == true)
        #expect(guardState.lastAcceptedStep.isEmpty)
    }

    @Test func otpauthURI() throws {
        let totp = try TOTP(secret: Self.rfcSecret)
        let uri = try totp.uri(issuer: "ACME Support", account: "ada@example.com")
        #expect(
            uri == "otpauth://totp/ACME%20Support:ada%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
                + "&issuer=ACME%20Support&algorithm=SHA1&digits=6&period=30"
        )
        let unicode = try totp.uri(issuer: "Büro & Co?", account: "zoë")
        #expect(unicode.hasPrefix("otpauth://totp/B%C3%BCro%20%26%20Co%3F:zo%C3%AB?"))
        for (issuer, account) in [("", "ada"), ("ACME", ""), ("A:B", "ada"), ("ACME", "a:da")] {
            let error = #expect(throws: AccountError.self) { try totp.uri(issuer: issuer, account: account) }
            #expect(error?.code == .invalidAccountLabel)
        }
    }

    /// pyotp is an independent implementation; it must read our URI and agree on every code.
    @Test(.enabled(if: Tool.hasPyotp, "python3 on PATH cannot import pyotp (pip install pyotp); cross-check skipped"))
    func agreesWithPyotp() throws {
        var random = SeededGenerator(seed: 6238)
        for _ in 0..<5 {
            let totp = try TOTP(secret: (0..<20).map { _ in UInt8.random(in: 0...255, using: &random) })
            let uri = try totp.uri(issuer: "ACME Support", account: "ada@example.com")
            let times = (0..<8).map { _ in Int64.random(in: 0...4_000_000_000, using: &random) }
            let program = """
                import sys, pyotp
                t = pyotp.parse_uri(sys.argv[1])
                print(t.name, t.issuer, t.digits, t.interval)
                for s in sys.argv[2:]:
                    print(t.at(int(s)))
                """
            let output = try Tool.python(program, [uri] + times.map(String.init))
            let lines = output.split(separator: "\n").map(String.init)
            #expect(lines.first == "ada@example.com ACME Support 6 30")
            #expect(Array(lines.dropFirst()) == (try times.map { try totp.code(at: $0) }))
        }
    }
}
