import ApplianceTLS
public import NIOCore
import NIOHTTP1
public import NIOPosix
import NIOSSL

/// An HTTPS/1.1 client for one appliance that trusts the appliance's key by pin instead of by certificate
/// authority.
///
/// Appliances use self-signed certificates. With a ``pin`` every connection checks that the leaf certificate's
/// public key hashes to it and fails with ``ApplianceClientError/Code/pinMismatch`` otherwise; CA and hostname
/// checks are off because the pin replaces them. Without a pin (first contact) any certificate is accepted and
/// ``HTTPResult/observedPin`` tells the caller which key to record.
///
/// Each request uses its own connection (`Connection: close`).
public final class PinnedHTTPClient: Sendable {
    /// The appliance's host name or IP address.
    public let host: String
    /// The appliance's HTTPS port.
    public let port: Int
    /// The expected key pin, or nil to accept any key (first contact).
    public let pin: TLSPin?
    /// How long to wait for the TCP connection, and then again for the TLS handshake.
    public let connectTimeout: Duration
    /// An upper bound for a whole request (connect, handshake, upload, response), or nil for none.
    public let requestTimeout: Duration?

    private let eventLoopGroup: any EventLoopGroup

    /// The largest response body kept in memory; larger ones fail with `.protocolError`.
    static let maximumBufferedBodySize = 64 * 1024 * 1024
    /// Uploads read the file this much at a time; downloads write to disk in batches of about this size.
    static let fileChunkSize = 256 * 1024

    /// Creates a client for the appliance at `host`:`port`.
    public init(
        host: String,
        port: Int,
        pin: TLSPin?,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        connectTimeout: Duration = .seconds(10),
        requestTimeout: Duration? = nil
    ) {
        self.host = host
        self.port = port
        self.pin = pin
        self.eventLoopGroup = eventLoopGroup
        self.connectTimeout = connectTimeout
        self.requestTimeout = requestTimeout
    }

    /// The address as shown in messages, e.g. `127.0.0.1:8443`.
    public var address: String { formatAddress(host: self.host, port: self.port) }

    /// Sends one request and buffers the whole response body (at most 64 MiB).
    public func send(
        method: String,
        path: String,
        headers: [(String, String)] = [],
        body: [UInt8]? = nil
    ) async throws -> HTTPResult {
        let requestBody: RequestBody = body.map { .bytes($0) } ?? .none
        return try await self.perform(
            method: method,
            path: path,
            headers: headers,
            body: requestBody,
            target: .memory
        )
    }

    /// Sends one request and, if the answer is 2xx, streams the body into `file` with bounded memory.
    ///
    /// The body is written to `file + ".part"`, flushed to disk and only then renamed to `file`, so an
    /// interrupted download never leaves a partial file under the final name. `progress` receives the number of
    /// bytes written so far, at most about ten times a second and once at the end. On success the result's
    /// `body` is empty. For any other status nothing is written and the (error) body is buffered into the result.
    ///
    /// With `resumingFrom` (the entity tag of the content wanted) an interrupted download keeps its `.part` file,
    /// and the next call asks only for the bytes after it (`Range`, guarded by `If-Range`, so a changed file is
    /// sent whole). A 206 answer is appended, a 200 answer replaces the partial file.
    public func download(
        method: String,
        path: String,
        headers: [(String, String)] = [],
        body: [UInt8]? = nil,
        to file: String,
        resumingFrom entityTag: String? = nil,
        progress: @escaping @Sendable (Int64) -> Void
    ) async throws -> HTTPResult {
        let requestBody: RequestBody = body.map { .bytes($0) } ?? .none
        var headers = headers
        var offset: Int64?
        if let entityTag {
            let partial = await PartialFileWriter.existingSize(path: file)
            offset = partial
            if partial > 0 {
                headers += [("Range", "bytes=\(partial)-"), ("If-Range", entityTag)]
            }
        }
        return try await self.perform(
            method: method,
            path: path,
            headers: headers,
            body: requestBody,
            target: .file(path: file, resumeOffset: offset, progress: progress)
        )
    }

    /// Streams `file` as the request body (with `Content-Length`), 256 KiB at a time as the connection accepts
    /// it, and buffers the response.
    ///
    /// `progress` receives the number of bytes handed to the connection so far, at most about ten times a second
    /// and once at the end. If the appliance answers before the whole file was sent (for example a 4xx) that
    /// answer is returned.
    public func upload(
        method: String,
        path: String,
        headers: [(String, String)] = [],
        fromFile file: String,
        progress: @escaping @Sendable (Int64) -> Void
    ) async throws -> HTTPResult {
        try await self.perform(
            method: method,
            path: path,
            headers: headers,
            body: .file(path: file, progress: progress),
            target: .memory
        )
    }

    /// Connects, completes a TLS handshake accepting any certificate, and returns the leaf certificate's pin and
    /// PEM text, for showing to an operator before trusting an appliance.
    public static func fetchPeerCertificate(
        host: String,
        port: Int,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        connectTimeout: Duration = .seconds(10)
    ) async throws -> (pin: TLSPin, certificatePEM: String) {
        let client = PinnedHTTPClient(
            host: host,
            port: port,
            pin: nil,
            eventLoopGroup: eventLoopGroup,
            connectTimeout: connectTimeout
        )
        let peer = try await client.withConnection { connection in connection.peer }
        return (peer.pin, pemEncodeCertificate(peer.certificateDER))
    }
}

// MARK: - Request plumbing

extension PinnedHTTPClient {
    private typealias AsyncHTTPChannel = NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
    private typealias Inbound = NIOAsyncChannelInboundStream<HTTPClientResponsePart>
    private typealias Outbound = NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>

    /// An established connection whose handshake (and pin check) succeeded.
    private struct OpenConnection: Sendable {
        var inbound: Inbound
        var outbound: Outbound
        var peer: PeerObservation.Peer
        var channel: any NIOCore.Channel
    }

    private enum RequestBody: Sendable {
        case none
        case bytes([UInt8])
        case file(path: String, progress: @Sendable (Int64) -> Void)
    }

    /// The request body once any file is open.
    private enum PreparedBody: Sendable {
        case none
        case bytes(ByteBuffer)
        case file(ChunkedFileReader, progress: @Sendable (Int64) -> Void)
    }

    private enum ResponseTarget: Sendable {
        case memory
        /// `resumeOffset` (resumable downloads only): the bytes already in the `.part` file.
        case file(path: String, resumeOffset: Int64?, progress: @Sendable (Int64) -> Void)
    }

    private func perform(
        method: String,
        path: String,
        headers: [(String, String)],
        body: RequestBody,
        target: ResponseTarget
    ) async throws -> HTTPResult {
        try await self.withRequestTimeout {
            // Open an upload's file first so a missing file fails before the appliance is contacted.
            let prepared: PreparedBody
            let contentLength: Int64?
            switch body {
            case .none:
                prepared = .none
                contentLength = nil
            case .bytes(let bytes):
                prepared = .bytes(ByteBuffer(bytes: bytes))
                contentLength = Int64(bytes.count)
            case .file(let filePath, let progress):
                let reader = try await ChunkedFileReader.openFile(path: filePath)
                prepared = .file(reader, progress: progress)
                contentLength = reader.size
            }
            do {
                let head = try self.makeRequestHead(
                    method: method,
                    path: path,
                    headers: headers,
                    contentLength: contentLength
                )
                let result = try await self.withConnection { connection in
                    try await self.exchange(head: head, body: prepared, target: target, connection: connection)
                }
                if case .file(let reader, _) = prepared {
                    await reader.release()
                }
                return result
            } catch {
                if case .file(let reader, _) = prepared {
                    await reader.release()
                }
                throw error
            }
        }
    }

    /// Runs `operation`, failing with `.timeout` if ``requestTimeout`` passes first.
    private func withRequestTimeout<Result: Sendable>(
        _ operation: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        guard let requestTimeout = self.requestTimeout else {
            return try await operation()
        }
        let address = self.address
        return try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask {
                try await operation()
            }
            group.addTask {
                try await Task.sleep(for: requestTimeout)
                return nil
            }
            defer { group.cancelAll() }
            if let result = try await group.next(), let result {
                return result
            }
            throw ApplianceClientError(
                code: .timeout,
                message: "the appliance at \(address) did not finish the request within "
                    + "\(describe(requestTimeout)); check the network and the appliance's load, "
                    + "or allow more time"
            )
        }
    }

    /// Builds the request head: the caller's headers plus Host, User-Agent, Connection: close and Content-Length.
    private func makeRequestHead(
        method: String,
        path: String,
        headers: [(String, String)],
        contentLength: Int64?
    ) throws -> HTTPRequestHead {
        guard isToken(method) else {
            throw invalidRequest("the method \"\(method)\" is not a valid HTTP method")
        }
        guard path.hasPrefix("/"), !path.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7f }) else {
            throw invalidRequest("the path \"\(path)\" must start with / and contain no spaces or control characters")
        }
        let managed = ["host", "connection", "content-length", "transfer-encoding"]
        var fields = HTTPHeaders()
        fields.add(name: "Host", value: self.address)
        if !headers.contains(where: { asciiCaseInsensitiveEquals($0.0, "User-Agent") }) {
            fields.add(name: "User-Agent", value: "appliancectl")
        }
        for (name, value) in headers {
            guard isToken(name) else {
                throw invalidRequest("the header name \"\(name)\" is not valid")
            }
            guard !value.utf8.contains(where: { $0 == 0x0d || $0 == 0x0a || $0 == 0 }) else {
                throw invalidRequest("the value of the header \(name) contains a line break or NUL")
            }
            if managed.contains(where: { asciiCaseInsensitiveEquals($0, name) }) {
                continue
            }
            fields.add(name: name, value: value)
        }
        fields.add(name: "Connection", value: "close")
        if let contentLength {
            fields.add(name: "Content-Length", value: String(contentLength))
        } else if ["POST", "PUT", "PATCH"].contains(method.uppercased()) {
            fields.add(name: "Content-Length", value: "0")
        }
        return HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path, headers: fields)
    }

    private func invalidRequest(_ detail: String) -> ApplianceClientError {
        ApplianceClientError(
            code: .protocolError,
            message: "could not send the request to the appliance at \(self.address): \(detail); "
                + "this is a bug in the caller, please report it"
        )
    }

    /// Connects, completes the TLS handshake (checking the pin), and runs `body` with the connection, which is
    /// closed afterwards.
    private func withConnection<Result: Sendable>(
        _ body: (OpenConnection) async throws -> Result
    ) async throws -> Result {
        let address = self.address
        let expected = self.pin
        let observation = PeerObservation()
        let (asyncChannel, handshake) = try await self.connect(expected: expected, observation: observation)
        let channel = asyncChannel.channel
        return try await asyncChannel.executeThenClose { inbound, outbound in
            do {
                try await withTaskCancellationHandler {
                    try await handshake.get()
                } onCancel: {
                    channel.close(promise: nil)
                }
            } catch {
                // A cancelled caller gets CancellationError rather than the closed connection it caused.
                try Task.checkCancellation()
                throw handshakeError(
                    error,
                    address: address,
                    expected: expected,
                    observed: observation.peer?.pin,
                    timeout: self.connectTimeout
                )
            }
            guard let peer = observation.peer else {
                throw handshakeError(
                    HandshakeWaiter.ClosedDuringHandshake(),
                    address: address,
                    expected: expected,
                    observed: nil,
                    timeout: self.connectTimeout
                )
            }
            do {
                let connection = OpenConnection(
                    inbound: inbound,
                    outbound: outbound,
                    peer: peer,
                    channel: channel
                )
                return try await body(connection)
            } catch {
                try Task.checkCancellation()
                throw exchangeError(error, address: address)
            }
        }
    }

    /// Opens the TCP connection and sets up TLS, HTTP and the async channel; the returned future completes when
    /// the TLS handshake does.
    private func connect(
        expected: TLSPin?,
        observation: PeerObservation
    ) async throws -> (AsyncHTTPChannel, EventLoopFuture<Void>) {
        // The appliance's own policy (TLS 1.2+, ECDHE + AEAD); fetchPeerCertificate connects here too.
        var configuration = TLSPolicy.clientConfiguration()
        // The verification callback below replaces CA and hostname checks; the pin is the trust decision.
        configuration.certificateVerification = .noHostnameVerification
        configuration.trustRoots = .certificates([])
        // Don't linger for the appliance's close_notify when giving up on a request (e.g. after a timeout).
        configuration.shutdownTimeout = .seconds(1)
        let sslContext: NIOSSLContext
        do {
            sslContext = try NIOSSLContext(configuration: configuration)
        } catch {
            throw ApplianceClientError(
                code: .tlsHandshakeFailed,
                message: "could not set up TLS to talk to the appliance at \(self.address) (\(error)); "
                    + "this is a bug, please report it"
            )
        }
        let serverName = isIPAddress(self.host) ? nil : self.host
        let handshakeTimeout = TimeAmount(self.connectTimeout)
        do {
            return try await ClientBootstrap(group: self.eventLoopGroup)
                .connectTimeout(TimeAmount(self.connectTimeout))
                .connect(host: self.host, port: self.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let tlsHandler = try NIOSSLClientHandler(
                            context: sslContext,
                            serverHostname: serverName,
                            customVerificationCallback: { chain, promise in
                                promise.succeed(observation.verify(chain: chain, expected: expected))
                            }
                        )
                        let handshakePromise = channel.eventLoop.makePromise(of: Void.self)
                        let pipeline = channel.pipeline.syncOperations
                        do {
                            try pipeline.addHandler(tlsHandler)
                            let waiter = HandshakeWaiter(promise: handshakePromise, timeout: handshakeTimeout)
                            try pipeline.addHandler(waiter)
                        } catch {
                            handshakePromise.fail(error)
                            throw error
                        }
                        try pipeline.addHTTPClientHandlers()
                        let asyncChannel = try AsyncHTTPChannel(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(backPressureStrategy: .init(lowWatermark: 2, highWatermark: 8))
                        )
                        return (asyncChannel, handshakePromise.futureResult)
                    }
                }
        } catch {
            throw connectError(error, host: self.host, port: self.port, connectTimeout: self.connectTimeout)
        }
    }

    /// Sends the request while reading the response, so an early answer (e.g. a 4xx before an upload finished)
    /// is seen and returned.
    private func exchange(
        head: HTTPRequestHead,
        body: PreparedBody,
        target: ResponseTarget,
        connection: OpenConnection
    ) async throws -> HTTPResult {
        let address = self.address
        let outbound = connection.outbound
        let channel = connection.channel
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await Self.writeRequest(head: head, body: body, to: outbound, eventLoop: channel.eventLoop)
                } catch {
                    // The appliance would wait for the rest of the body forever; hang up so the read ends too.
                    channel.close(promise: nil)
                    throw error
                }
            }
            do {
                let result = try await Self.readResponse(
                    from: connection.inbound,
                    target: target,
                    pin: connection.peer.pin,
                    address: address
                )
                // A 2xx answer to a whole body arrives just before the writer's last progress report: let it
                // finish (30 s bounds a writer that never ends). The writer may also end with an error instead,
                // when the appliance closes the connection after its answer while the writer still waits for
                // the channel to drain (CI saw the last report at 44 of 50 MiB that way). Either way the appliance
                // has every byte, so the last report is the whole file.
                if result.isSuccess, case .file(let reader, let progress) = body {
                    group.addTask { try await Task.sleep(for: .seconds(30)) }
                    _ = try? await group.next()
                    progress(reader.size)
                }
                group.cancelAll()
                return result
            } catch let readError {
                group.cancelAll()
                var writeError: (any Error)?
                while !group.isEmpty {
                    do {
                        try await group.next()
                    } catch {
                        writeError = writeError ?? error
                    }
                }
                // A local file problem explains the failure better than the connection closing because of it.
                if let writeError = writeError as? ApplianceClientError {
                    throw writeError
                }
                throw readError
            }
        }
    }

    private static func writeRequest(
        head: HTTPRequestHead,
        body: PreparedBody,
        to outbound: Outbound,
        eventLoop: any EventLoop
    ) async throws {
        switch body {
        case .none:
            try await outbound.write(contentsOf: [.head(head), .end(nil)])
        case .bytes(let buffer):
            try await outbound.write(contentsOf: [.head(head), .body(.byteBuffer(buffer)), .end(nil)])
        case .file(let reader, let progress):
            try await outbound.write(.head(head))
            var throttle = ProgressThrottle(callback: progress)
            var sent: Int64 = 0
            while sent < reader.size {
                let wanted = Int(min(Int64(fileChunkSize), reader.size - sent))
                let chunk = try await reader.nextChunk(maximumBytes: wanted)
                guard chunk.readableBytes > 0 else {
                    throw ApplianceClientError(
                        code: .fileError,
                        message: "\(reader.path) became shorter while it was being uploaded "
                            + "(\(sent) of \(reader.size) bytes read); make sure nothing else is writing to it "
                            + "and try again"
                    )
                }
                try await outbound.write(.body(.byteBuffer(chunk)))
                // The writer only suspends once the channel reports itself unwritable, and it hands writes to the
                // event loop without waiting. Catching up with the loop keeps that report current, so at most
                // about one chunk beyond the channel's write buffer is ever in memory.
                try await eventLoop.submit {}.get()
                sent += Int64(chunk.readableBytes)
                throttle.report(sent)
            }
            try await outbound.write(.end(nil))
            throttle.finish(sent)
        }
    }

    private static func readResponse(
        from inbound: Inbound,
        target: ResponseTarget,
        pin: TLSPin,
        address: String
    ) async throws -> HTTPResult {
        var parts = inbound.makeAsyncIterator()
        guard let first = try await parts.next() else {
            throw closedEarly(address: address)
        }
        guard case .head(let head) = first else {
            throw unexpectedPart(address: address)
        }
        var result = HTTPResult(
            status: Int(head.status.code),
            headers: head.headers.map { ($0.name, $0.value) },
            body: [],
            observedPin: pin
        )
        if case .file(let path, let resumeOffset, let progress) = target, result.isSuccess {
            var append: Int64?
            if let resumeOffset, result.status == 206 {
                // Only the range asked for may be appended: "bytes N-M/total" with N the partial file's size.
                let range = result.header("Content-Range") ?? ""
                guard range.hasPrefix("bytes \(resumeOffset)-") else {
                    throw ApplianceClientError(
                        code: .protocolError,
                        message: "the appliance at \(address) answered a resumed download with the range "
                            + "\"\(range)\" where bytes \(resumeOffset)- were asked for; check that it is up to date"
                    )
                }
                append = resumeOffset
            }
            try await streamBody(
                from: &parts,
                to: path,
                appendingAt: append,
                keepPartial: resumeOffset != nil,
                progress: progress,
                address: address
            )
            return result
        }
        while let part = try await parts.next() {
            switch part {
            case .body(let buffer):
                guard result.body.count + buffer.readableBytes <= maximumBufferedBodySize else {
                    throw ApplianceClientError(
                        code: .protocolError,
                        message: "the appliance at \(address) sent a response body larger than "
                            + "\(maximumBufferedBodySize / 1024 / 1024) MiB where a short answer was expected; "
                            + "check that applianced is up to date"
                    )
                }
                result.body.append(contentsOf: buffer.readableBytesView)
            case .end:
                return result
            case .head:
                throw unexpectedPart(address: address)
            }
        }
        throw closedEarly(address: address)
    }

    /// Writes the body to `path + ".part"` in batches of about 256 KiB and renames it to `path` once complete.
    /// With `appendingAt` the bytes go after that many already in the `.part` file; with `keepPartial` a failed
    /// download leaves the `.part` file for the next attempt to resume.
    private static func streamBody(
        from parts: inout Inbound.AsyncIterator,
        to path: String,
        appendingAt offset: Int64?,
        keepPartial: Bool,
        progress: @escaping @Sendable (Int64) -> Void,
        address: String
    ) async throws {
        let file = try await PartialFileWriter.create(path: path, appendingAt: offset)
        var throttle = ProgressThrottle(callback: progress)
        var written: Int64 = 0
        do {
            var pending = ByteBuffer()
            receiving: while true {
                guard let part = try await parts.next() else {
                    throw closedEarly(address: address)
                }
                switch part {
                case .body(var buffer):
                    pending.writeBuffer(&buffer)
                    if pending.readableBytes >= fileChunkSize {
                        try await file.append(pending)
                        written += Int64(pending.readableBytes)
                        pending = ByteBuffer()
                        throttle.report(written)
                    }
                case .end:
                    if pending.readableBytes > 0 {
                        try await file.append(pending)
                        written += Int64(pending.readableBytes)
                    }
                    break receiving
                case .head:
                    throw unexpectedPart(address: address)
                }
            }
        } catch {
            await file.abandon(keepingPartial: keepPartial)
            throw error
        }
        try await file.commit()
        throttle.finish(written)
    }

    private static func closedEarly(address: String) -> ApplianceClientError {
        ApplianceClientError(
            code: .connectionFailed,
            message: "the appliance at \(address) closed the connection before the response was complete; "
                + "try again, and check applianced's log if it keeps happening"
        )
    }

    private static func unexpectedPart(address: String) -> ApplianceClientError {
        ApplianceClientError(
            code: .protocolError,
            message: "the appliance at \(address) sent an out-of-order HTTP response; "
                + "check that \(address) is applianced and that it is up to date"
        )
    }
}

/// Whether `text` is a non-empty HTTP token (RFC 9110), as method and header names must be.
private func isToken(_ text: String) -> Bool {
    let separators = Array("\"(),/:;<=>?@[\\]{}".utf8)
    return !text.isEmpty
        && text.utf8.allSatisfy { byte in
            byte > 0x20 && byte < 0x7f && !separators.contains(byte)
        }
}

/// Reports progress at most about ten times a second, plus once at the end.
private struct ProgressThrottle {
    let callback: @Sendable (Int64) -> Void
    private var lastReport: ContinuousClock.Instant?

    init(callback: @escaping @Sendable (Int64) -> Void) {
        self.callback = callback
    }

    mutating func report(_ total: Int64) {
        let now = ContinuousClock.now
        if let lastReport, now - lastReport < .milliseconds(100) {
            return
        }
        self.lastReport = now
        self.callback(total)
    }

    func finish(_ total: Int64) {
        self.callback(total)
    }
}
