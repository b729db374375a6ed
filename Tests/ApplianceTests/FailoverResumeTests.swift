import ApplianceAPI
import ApplianceClient
import Foundation
import Testing

/// A7: a large file whose transfer was interrupted continues where it stopped (a byte range, checked by SHA-256)
/// instead of starting again, and stored files answer single byte ranges.
@Suite(.serialized) struct FailoverResumeTests {
    /// Stops the backup and leaves `bytes` as the partial copy an interrupted sync would have left of `name`.
    static func leavePartialCopy(
        _ pair: FailoverTests.Pair,
        recording name: String,
        bytes: (_ sha256: String, _ content: [UInt8]) -> [UInt8]
    ) async throws {
        let admin = try await pair.a.admin()
        let list: [StoredFileInfo] = try await admin.call(.listRecordings)
        let info = try #require(list.first { $0.name == name })
        let whole = try await admin.client.send(
            method: "GET",
            path: Endpoint.getRecording.path(["name": name]),
            headers: admin.authHeaders
        )
        #expect(whole.status == 200 && whole.body.count == Int(info.size))
        await pair.b.stop()
        let blobs = pair.b.dataDir.appendingPathComponent("sync/blobs")
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        try Data(bytes(info.sha256, whole.body)).write(to: blobs.appendingPathComponent(info.sha256 + ".part"))
        try await pair.b.start()
    }

    @Test func anInterruptedLargeRecordingResumesFromItsPartialCopy() async throws {
        let pair = try await FailoverTests.Pair(bytes: 1024 * 1024)
        _ = try await pair.sync()
        let recordingBytes = 32 * 1024 * 1024
        try await FailoverFaultTests.change(pair, "resume", recordingBytes: recordingBytes)
        let half = recordingBytes / 2
        try await Self.leavePartialCopy(pair, recording: "resume.bin") { _, content in Array(content[..<half]) }

        let next = try await pair.sync()
        #expect(next.result == "ok", "\(next.error ?? "")")
        #expect(next.recordings == 1)
        // Only the rest of the recording (and the change list and the small file) crossed the link.
        #expect(next.bytes < Int64(recordingBytes - half) + 1024 * 1024, "moved \(next.bytes) bytes")
        let (primary, synced) = try await pair.summaries()
        #expect(primary == synced)
    }

    @Test func aCorruptPartialCopyIsCaughtByTheChecksumAndFetchedAgain() async throws {
        let pair = try await FailoverTests.Pair(bytes: 1024 * 1024)
        _ = try await pair.sync()
        let (before, _) = try await pair.summaries()
        let recordingBytes = 16 * 1024 * 1024
        try await FailoverFaultTests.change(pair, "corrupt", recordingBytes: recordingBytes)
        try await Self.leavePartialCopy(pair, recording: "corrupt.bin") { _, content in
            Array(repeating: 0xAA, count: content.count / 4)
        }

        let refused = await failoverRefusal { _ = try await pair.sync() }
        #expect(refused?.message.contains("another SHA-256") == true, "\(String(describing: refused))")
        let (_, held) = try await pair.summaries()
        #expect(held == before, "a checksum failure applies nothing")
        let next = try await pair.sync()
        #expect(next.result == "ok", "\(next.error ?? "")")
        #expect(next.bytes >= Int64(recordingBytes), "the recording is fetched whole after the bad copy")
        let (primary, synced) = try await pair.summaries()
        #expect(primary == synced)
    }

    @Test func storedFilesAnswerByteRanges() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        let admin = try await box.admin()
        let content = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let path = Endpoint.putFile.path(["name": "ranged.bin"])
        let put = try await admin.client.send(method: "PUT", path: path, headers: admin.authHeaders, body: content)
        #expect(put.isSuccess)
        let whole = try await admin.client.send(method: "GET", path: path, headers: admin.authHeaders)
        #expect(whole.status == 200 && whole.body == content)
        let tag = try #require(whole.header("ETag"))

        let tail = try await admin.client.send(
            method: "GET",
            path: path,
            headers: admin.authHeaders + [("Range", "bytes=99000-"), ("If-Range", tag)]
        )
        #expect(tail.status == 206)
        #expect(tail.header("Content-Range") == "bytes 99000-99999/100000")
        #expect(tail.body == Array(content[99000...]))

        let middle = try await admin.client.send(
            method: "GET",
            path: path,
            headers: admin.authHeaders + [("Range", "bytes=10-19")]
        )
        #expect(middle.status == 206 && middle.body == Array(content[10...19]))

        // Changed since the partial copy was made: the whole file.
        let changed = try await admin.client.send(
            method: "GET",
            path: path,
            headers: admin.authHeaders + [("Range", "bytes=99000-"), ("If-Range", "\"another\"")]
        )
        #expect(changed.status == 200 && changed.body == content)

        let beyond = try await admin.client.send(
            method: "GET",
            path: path,
            headers: admin.authHeaders + [("Range", "bytes=100000-")]
        )
        #expect(beyond.status == 416)
        #expect(String(decoding: beyond.body, as: UTF8.self).contains("100000 bytes"))
    }
}
