import AccountRules
import Testing

@Suite struct DisplayNamesTests {
    @Test func privateNameCarriesPublicWhileInSync() throws {
        var names = try DisplayNames(name: "Ada Lovelace")
        #expect(names.inSync)
        try names.setPrivateName("Ada King")
        #expect(names.privateName == "Ada King" && names.publicName == "Ada King")
    }

    @Test func differentPublicNameEndsSyncUntilEqualAgain() throws {
        var names = try DisplayNames(name: "Ada Lovelace")
        try names.setPublicName("Support Team")
        #expect(!names.inSync)
        try names.setPrivateName("Ada King")
        #expect(names.privateName == "Ada King" && names.publicName == "Support Team")
        // Equal again from the public side: the next private change is copied.
        try names.setPublicName("Ada King")
        #expect(names.inSync)
        try names.setPrivateName("Countess Lovelace")
        #expect(names.publicName == "Countess Lovelace")
        // Equal again from the private side works the same way.
        try names.setPublicName("Support Team")
        try names.setPrivateName("Support Team")
        #expect(names.inSync)
        try names.setPrivateName("Ada")
        #expect(names.publicName == "Ada")
    }

    @Test func formWithUntouchedPublicFieldFollowsPrivate() throws {
        var names = try DisplayNames(name: "Ada Lovelace")
        try names.submit(privateName: "Ada King", publicName: "Ada Lovelace")
        #expect(names.privateName == "Ada King" && names.publicName == "Ada King")
        try names.submit(privateName: "Ada King", publicName: "Support Team")
        #expect(names.publicName == "Support Team" && !names.inSync)
        // Out of sync, an unchanged public field stays as it is.
        try names.submit(privateName: "Ada", publicName: "Support Team")
        #expect(names.privateName == "Ada" && names.publicName == "Support Team")
    }

    @Test func namesAreTrimmedAndChecked() throws {
        var names = try DisplayNames(name: "  Ada  ")
        #expect(names.privateName == "Ada")
        for bad in ["", "   ", "Ada\nLovelace", "Ada\u{0007}", String(repeating: "a", count: 101)] {
            let error = #expect(throws: AccountError.self) { try names.setPrivateName(bad) }
            #expect(error?.code == .invalidDisplayName)
        }
        #expect(names.privateName == "Ada" && names.publicName == "Ada")
        #expect(throws: AccountError.self) { try DisplayNames(privateName: "Ada", publicName: "") }
        try names.setPublicName(String(repeating: "ü", count: 100))
        #expect(!names.inSync)
    }
}
