import ApplianceClient
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// End-to-end tests against a real HTTPS server in this process. Serialized so the memory measurement of the big
/// download isn't disturbed by the other transfers.
@Suite("PinnedHTTPClient", .serialized)
struct PinnedHTTPClientTests {
    /// Starts a server with a fresh certificate, runs `body`, and cleans up.
    private func withServer(
        bigSize: Int = 1024 * 1024,
        _ body: (TestHTTPSServer, TestCertificate, TemporaryDirectory) async throws -> Void
    ) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let certificate = try TestCertificate(in: directory)
        let server = try await TestHTTPSServer.start(certificate: certificate, bigSize: bigSize)
        do {
            try await body(server, certificate, directory)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    private func expectClientError(
        _ code: ApplianceClientError.Code,
        sourceLocation: SourceLocation = #_sourceLocation,
        _ operation: () async throws -> Void
    ) async throws -> ApplianceClientError {
        do {
            try await operation()
        } catch let error as ApplianceClientError {
            #expect(error.code == code, "\(error.message)", sourceLocation: sourceLocation)
            return error
        }
        Issue.record("expected an ApplianceClientError with code \(code)", sourceLocation: sourceLocation)
        throw TestFailure("no error")
    }

    @Test("first contact accepts the certificate and reports the pin openssl computes")
    func firstContact() async throws {
        try await withServer { server, certificate, _ in
            let client = PinnedHTTPClient(host: "127.0.0.1", port: server.port, pin: nil)
            let result = try await client.send(method: "GET", path: "/hello")
            #expect(result.status == 200)
            #expect(result.header("content-type") == "application/json")
            #expect(String(decoding: result.body, as: UTF8.self) == #"{"hello":"appliance"}"#)
            #expect(result.observedPin.description == certificate.expectedPin)
            #expect(server.requestsSeen == ["GET /hello"])
        }
    }

    @Test("a host name (sent as TLS server name) works the same as an IP address")
    func hostName() async throws {
        try await withServer { server, certificate, _ in
            let client = PinnedHTTPClient(host: "localhost", port: server.port, pin: nil)
            let result = try await client.send(method: "GET", path: "/hello")
            #expect(result.status == 200)
            #expect(result.observedPin.description == certificate.expectedPin)
        }
    }

    @Test("a pinned request with the right pin succeeds")
    func rightPin() async throws {
        try await withServer { server, certificate, _ in
            let pin = try #require(TLSPin(certificate.expectedPin))
            let client = PinnedHTTPClient(host: "127.0.0.1", port: server.port, pin: pin)
            let result = try await client.send(method: "GET", path: "/hello", headers: [("Accept", "application/json")])
            #expect(result.status == 200)
            #expect(result.observedPin == pin)
        }
    }

    @Test("a wrong pin fails the handshake with .pinMismatch before any request is sent")
    func wrongPin() async throws {
        try await withServer { server, certificate, _ in
            let wrong = TLSPin(spkiDER: Array("some other key".utf8))
            let client = PinnedHTTPClient(host: "127.0.0.1", port: server.port, pin: wrong)
            let error = try await expectClientError(.pinMismatch) {
                _ = try await client.send(method: "GET", path: "/hello")
            }
            #expect(error.message.contains(certificate.expectedPin))
            #expect(error.message.contains(wrong.description))
            #expect(error.message.contains("127.0.0.1:\(server.port)"))
            #expect(error.message.contains("appliancectl pin --reset"))
            // Give a stray request every chance to arrive before checking that none did.
            try await Task.sleep(for: .milliseconds(200))
            #expect(server.requestsSeen.isEmpty)
        }
    }

    @Test("a wrong pin also stops uploads and downloads before anything is written")
    func wrongPinTransfers() async throws {
        try await withServer { server, _, directory in
            let client = PinnedHTTPClient(host: "127.0.0.1", port: server.port, pin: TLSPin(spkiDER: [0]))
            let target = directory.file("never")
            _ = try await expectClientError(.pinMismatch) {
                _ = try await client.download(method: "GET", path: "/big", to: target) { _ in }
            }
            #expect(!FileManager.default.fileExists(atPath: target))
            #expect(!FileManager.default.fileExists(atPath: target + ".part"))
            let source = directory.file("source")
            try Data(repeating: 7, count: 1000).write(to: URL(fileURLWithPath: source))
            _ = try await expectClientError(.pinMismatch) {
                _ = try await client.upload(method: "POST", path: "/echo-size", fromFile: source) { _ in }
            }
            #expect(server.requestsSeen.isEmpty)
        }
    }

    @Test("a big download streams to the file with bounded memory and leaves no .part file")
    func bigDownload() async throws {
        let size = 200 * 1024 * 1024 + 12345
        try await withServer(bigSize: size) { server, _, directory in
            let client = PinnedHTTPClient(host: "127.0.0.1", port: server.port, pin: nil)
            let target = directory.file("big.bin")
            let reports = Mutex<[Int64]>([])

            let peakWasReset = MemoryStatus.resetPeak()
            let before = try MemoryStatus.current()
            let start = ContinuousClock.now
            let result = try await client.download(method: "GET", path: "/big", to: target) { bytes in
                reports.withLock { $0.append(bytes) }
            }
            let elapsed = ContinuousClock.now - start
            let after = try MemoryStatus.current()

            #expect(result.status == 200)
            #expect(result.body.isEmpty)
            #expect(!FileManager.default.fileExists(atPath: target + ".part"))
            let attributes = try FileManager.default.attributesOfItem(atPath: target)
            #expect((attributes[.size] as? NSNumber)?.intValue == size)

            // Progress: increasing, throttled, ending at the full size.
            let progress = reports.withLock { $0 }
            #expect(progress.last == Int64(size))
            #expect(progress == progress.sorted())
            #expect(progress.count < 20 + Int(elapsed.components.seconds) * 12)

            // Every byte must follow the server's pattern (byte i is i % 251).
            let handle = try #require(FileHandle(forReadingAtPath: target))
            defer { try? handle.close() }
            let block = Data(TestHTTPSServer.patternBlock)
            var offset = 0
            while let chunk = try handle.read(upToCount: block.count), !chunk.isEmpty {
                #expect(chunk == block.prefix(chunk.count), "content differs in the block at offset \(offset)")
                offset += chunk.count
                if chunk != block.prefix(chunk.count) {
                    break
                }
            }
            #expect(offset == size)

            #expect(before.residentKiB > 0 && after.peakResidentKiB > 0, "could not read /proc/self/status")
            let growthKiB = after.peakResidentKiB - before.residentKiB
            print(
                "big download: \(size) bytes in \(elapsed); RSS before \(before.residentKiB) KiB, after "
                    + "\(after.residentKiB) KiB, peak \(after.peakResidentKiB) KiB (peak reset: \(peakWasReset)), "
                    + "peak growth \(growthKiB) KiB, progress reports \(progress.count)"
            )
            #expect(after.residentKiB - before.residentKiB < 100 * 1024)
            if peakWasReset {
                #expect(growthKiB < 100 * 1024)
            } else {
                #expect(after.peakResidentKiB - before.peakResidentKiB < 100 * 1024)
            }
        }
    }

    @Test("a 500 answer to a download writes no file and returns the error body")
    func downloadError() async throws {
        try await withServer { server, _, directory in
            let client = PinnedHTTPClient(host: "127.0.0.1", port: server.port, pin: nil)
            let target = directory.file("result.bin")
            let result = try await client.download(method: "GET", path: "/status/500", to: target) { _ in }
            #expect(result.status == 500)
            #expect(String(decoding: result.body, as: UTF8.self) == #"{"error":"boom"}"#)
            #expect(!FileManager.default.fileExists(atPath: target))
            #expect(!FileManager.default.fileExists(atPath: target + ".part"))
        }
    }

    @Test("a download replaces an existing file only when complete")
    func downloadReplaces() async throws {
        try await withServer(bigSize: 3 * 1024 * 1024) { server, _, directory in
            let client = PinnedHTTPClient(host: "127.0.0.1", port: server.port, pin: nil)
            let target = directory.file("existing.bin")
            try Data("old".utf8).write(to: URL(fileURLWithPath: target))
            let result = try await client.download(method: "GET", path: "/big", to: target) { _ in }
            #expect(result.status == 200)
            let data = try Data(contentsOf: URL(fileURLWithPath: target))
            #expect(data.count == 3 * 1024 * 1024)
            #expect(data.prefix(251) == Data(TestHTTPSServer.patternBlock.prefix(251)))
        }
    }

    @Test("an upload streams the file and the server receives every byte")
    func upload() async throws {
        try await withServer { server, _, directory in
            let source = directory.file("upload.bin")
            let (size, checksum) = try writePseudoRandomFile(at: source, size: 50 * 1024 * 1024 + 777)
            let client = PinnedHTTPClient(host: "127.0.0.1", port: server.port, pin: nil)
            let reports = Mutex<[Int64]>([])
            let peakWasReset = MemoryStatus.resetPeak()
            let before = try MemoryStatus.current()
            let result = try await client.upload(
                method: "POST",
                path: "/echo-size",
                headers: [("Content-Type", "application/octet-stream")],
                fromFile: source
            ) { bytes in
                reports.withLock { $0.append(bytes) }
            }
            #expect(result.status == 200)
            let answer = try JSONDecoder().decode([String: UInt64].self, from: Data(result.body))
            #expect(answer["count"] == UInt64(size))
            #expect(answer["checksum"] == checksum)
            let after = try MemoryStatus.current()
            let progress = reports.withLock { $0 }
            #expect(progress.last == Int64(size))
            #expect(progress == progress.sorted())
            print(
                "upload: \(size) bytes; RSS before \(before.residentKiB) KiB, after \(after.residentKiB) KiB, "
                    + "peak \(after.peakResidentKiB) KiB (peak reset: \(peakWasReset))"
            )
            if peakWasReset {
                #expect(after.peakResidentKiB - before.residentKiB < 50 * 1024)
            }
        }
    }

    @Test("an early answer to an upload is returned instead of a write error")
    func uploadRejectedEarly() async throws {
        try await withServer { server, _, directory in
            let source = directory.file("upload.bin")
            _ = try writePseudoRandomFile(at: source, size: 16 * 1024 * 1024)
            let client = PinnedHTTPClient(host: "127.0.0.1", port: server.port, pin: nil)
            let result = try await client.upload(method: "POST", path: "/reject-early", fromFile: source) { _ in }
            #expect(result.status == 400)
            #expect(String(decoding: result.body, as: UTF8.self) == #"{"error":"not accepted"}"#)
        }
    }

    @Test("an early answer followed by a hang-up is still returned")
    func uploadRejectedAndClosed() async throws {
        try await withServer { server, _, directory in
            let source = directory.file("upload.bin")
            _ = try writePseudoRandomFile(at: source, size: 16 * 1024 * 1024)
            let client = PinnedHTTPClient(host: "127.0.0.1", port: server.port, pin: nil)
            let result = try await client.upload(method: "POST", path: "/reject-and-close", fromFile: source) { _ in }
            #expect(result.status == 413)
            #expect(String(decoding: result.body, as: UTF8.self) == #"{"error":"too large"}"#)
        }
    }

    @Test("a file that shrinks during an upload fails with .fileError instead of hanging")
    func uploadShrinkingFile() async throws {
        try await withServer { server, _, directory in
            let source = directory.file("shrinking.bin")
            _ = try writePseudoRandomFile(at: source, size: 16 * 1024 * 1024)
            let client = PinnedHTTPClient(
                host: "127.0.0.1",
                port: server.port,
                pin: nil,
                requestTimeout: .seconds(20)
            )
            let error = try await expectClientError(.fileError) {
                _ = try await client.upload(method: "POST", path: "/echo-size", fromFile: source) { _ in
                    // Called after the first chunk went out: cut the file short under the uploader.
                    truncate(source, 0)
                }
            }
            #expect(error.message.contains("became shorter"))
        }
    }

    @Test("a response body over 64 MiB is refused with .protocolError")
    func bodyCap() async throws {
        try await withServer(bigSize: 64 * 1024 * 1024 + 1) { server, _, _ in
            let client = PinnedHTTPClient(host: "127.0.0.1", port: server.port, pin: nil)
            _ = try await expectClientError(.protocolError) {
                _ = try await client.send(method: "GET", path: "/big")
            }
        }
    }

    @Test("a small request body is sent with its length")
    func smallBody() async throws {
        try await withServer { server, _, _ in
            let client = PinnedHTTPClient(host: "127.0.0.1", port: server.port, pin: nil)
            let body = [UInt8](repeating: 1, count: 5000)
            let result = try await client.send(method: "POST", path: "/echo-size", body: body)
            let answer = try JSONDecoder().decode([String: UInt64].self, from: Data(result.body))
            #expect(answer["count"] == 5000)
        }
    }

    @Test("uploading a missing file fails with .fileError before connecting")
    func uploadMissingFile() async throws {
        try await withServer { server, _, directory in
            let client = PinnedHTTPClient(host: "127.0.0.1", port: server.port, pin: nil)
            let error = try await expectClientError(.fileError) {
                let missing = directory.file("nope")
                _ = try await client.upload(method: "POST", path: "/echo-size", fromFile: missing) { _ in }
            }
            #expect(error.message.contains("nope"))
            #expect(server.requestsSeen.isEmpty)
        }
    }

    @Test("a download into a missing directory fails with .fileError")
    func downloadToMissingDirectory() async throws {
        try await withServer { server, _, directory in
            let client = PinnedHTTPClient(host: "127.0.0.1", port: server.port, pin: nil)
            _ = try await expectClientError(.fileError) {
                _ = try await client.download(method: "GET", path: "/hello", to: directory.file("no/such/file")) { _ in
                }
            }
        }
    }

    @Test("connection refused on an unused port is .connectionFailed with advice")
    func connectionRefused() async throws {
        let port = try await unusedPort()
        let client = PinnedHTTPClient(host: "127.0.0.1", port: port, pin: nil)
        let error = try await expectClientError(.connectionFailed) {
            _ = try await client.send(method: "GET", path: "/hello")
        }
        #expect(
            error.message
                == "could not reach the appliance at 127.0.0.1:\(port) (connection refused); "
                + "check the address and that applianced is running"
        )
    }

    @Test("a request that takes longer than requestTimeout fails with .timeout")
    func requestTimeout() async throws {
        try await withServer { server, _, _ in
            let client = PinnedHTTPClient(
                host: "127.0.0.1",
                port: server.port,
                pin: nil,
                requestTimeout: .milliseconds(500)
            )
            let start = ContinuousClock.now
            _ = try await expectClientError(.timeout) {
                _ = try await client.send(method: "GET", path: "/hang")
            }
            #expect(ContinuousClock.now - start < .seconds(5))
        }
    }

    @Test("a download cut off by the request timeout leaves neither the file nor a .part file")
    func downloadTimeout() async throws {
        try await withServer(bigSize: 4 * 1024 * 1024 * 1024) { server, _, directory in
            let client = PinnedHTTPClient(
                host: "127.0.0.1",
                port: server.port,
                pin: nil,
                requestTimeout: .milliseconds(400)
            )
            let target = directory.file("big.bin")
            let written = Mutex<Int64>(0)
            _ = try await expectClientError(.timeout) {
                _ = try await client.download(method: "GET", path: "/big", to: target) { bytes in
                    written.withLock { $0 = bytes }
                }
            }
            #expect(written.withLock { $0 } > 0, "the download should have been under way")
            #expect(!FileManager.default.fileExists(atPath: target))
            #expect(!FileManager.default.fileExists(atPath: target + ".part"))
        }
    }

    @Test("a server that never completes the TLS handshake fails with .timeout after the connect timeout")
    func handshakeTimeout() async throws {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Silent())
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        defer { channel.close(promise: nil) }
        let port = try #require(channel.localAddress?.port)
        let client = PinnedHTTPClient(host: "127.0.0.1", port: port, pin: nil, connectTimeout: .milliseconds(300))
        let start = ContinuousClock.now
        let error = try await expectClientError(.timeout) {
            _ = try await client.send(method: "GET", path: "/hello")
        }
        #expect(error.message.contains("did not complete the TLS handshake"))
        #expect(ContinuousClock.now - start < .seconds(5))
    }

    @Test("fetchPeerCertificate returns the pin and a PEM that openssl parses")
    func fetchPeerCertificate() async throws {
        try await withServer { server, certificate, directory in
            let (pin, pem) = try await PinnedHTTPClient.fetchPeerCertificate(host: "127.0.0.1", port: server.port)
            #expect(pin.description == certificate.expectedPin)
            let fetchedPath = directory.file("fetched.pem")
            try Data(pem.utf8).write(to: URL(fileURLWithPath: fetchedPath))
            let fetchedDER = try runShell("openssl x509 -in '\(fetchedPath)' -outform DER")
            let originalDER = try runShell("openssl x509 -in '\(certificate.certificatePath)' -outform DER")
            #expect(!fetchedDER.isEmpty)
            #expect(fetchedDER == originalDER)
            #expect(server.requestsSeen.isEmpty)
        }
    }

    @Test("fetchPeerCertificate on a refused port is .connectionFailed")
    func fetchPeerCertificateRefused() async throws {
        let port = try await unusedPort()
        _ = try await expectClientError(.connectionFailed) {
            _ = try await PinnedHTTPClient.fetchPeerCertificate(host: "127.0.0.1", port: port)
        }
    }

    @Test("talking TLS to a plain-TCP port is .tlsHandshakeFailed")
    func notTLS() async throws {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(PlainHTTPRefusal())
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        defer { channel.close(promise: nil) }
        let port = try #require(channel.localAddress?.port)
        let client = PinnedHTTPClient(host: "127.0.0.1", port: port, pin: nil)
        _ = try await expectClientError(.tlsHandshakeFailed) {
            _ = try await client.send(method: "GET", path: "/hello")
        }
    }
}

/// Answers like a plain-HTTP server would to anything, then hangs up.
private final class PlainHTTPRefusal: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelActive(context: ChannelHandlerContext) {
        let answer = ByteBuffer(string: "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
        context.writeAndFlush(self.wrapOutboundOut(answer)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}

/// A server that accepts connections and never says anything.
private final class Silent: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
}

/// A port on 127.0.0.1 that nothing listens on: bind one, note it, close it.
private func unusedPort() async throws -> Int {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .bind(host: "127.0.0.1", port: 0)
        .get()
    let port = try #require(channel.localAddress?.port)
    try await channel.close()
    return port
}

/// Writes `size` pseudo-random bytes (xorshift) in 1 MiB pieces; returns the size and FNV-1a checksum.
private func writePseudoRandomFile(at path: String, size: Int) throws -> (Int, UInt64) {
    guard FileManager.default.createFile(atPath: path, contents: nil),
        let handle = FileHandle(forWritingAtPath: path)
    else {
        throw TestFailure("could not create \(path)")
    }
    defer { try? handle.close() }
    var state: UInt64 = 0x9e37_79b9_7f4a_7c15
    var checksum = FNV1a()
    var remaining = size
    var piece = [UInt8](repeating: 0, count: 1024 * 1024)
    while remaining > 0 {
        let count = min(remaining, piece.count)
        piece.withUnsafeMutableBufferPointer { buffer in
            var index = 0
            while index < count {
                state ^= state << 13
                state ^= state >> 7
                state ^= state << 17
                var word = state
                var byte = 0
                while byte < 8 && index < count {
                    buffer[index] = UInt8(truncatingIfNeeded: word)
                    word >>= 8
                    byte += 1
                    index += 1
                }
            }
        }
        piece.withUnsafeBytes { checksum.update(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
        try handle.write(contentsOf: Data(piece[..<count]))
        remaining -= count
    }
    return (size, checksum.value)
}
