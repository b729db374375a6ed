import Foundation
import Testing

@testable import ApplianceImage

@Suite("SHA-256 by host tool")
struct DigestTests {
    @Test("known answers for data and files")
    func knownAnswers() throws {
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        #expect(try Digest.sha256(of: Data("abc".utf8)) == abc)
        #expect(try Digest.sha256(of: Data()) == empty)

        let directory = try ExternalTool.temporaryDirectory("digest")
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = directory.appendingPathComponent("a file with spaces")
        let second = directory.appendingPathComponent("empty")
        try Data("abc".utf8).write(to: first)
        try Data().write(to: second)
        #expect(try Digest.sha256(of: [first, second]) == [abc, empty])
    }
}
