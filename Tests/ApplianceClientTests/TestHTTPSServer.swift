import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// A small HTTPS/1.1 server on 127.0.0.1 with a random port, for exercising the client end to end.
///
/// Routes: `GET /hello` (JSON), `GET /big` (``bigSize`` bytes of ``patternByte(at:)``, generated on the fly),
/// `POST /echo-size` (answers the received byte count and FNV-1a checksum), `POST /reject-early` (answers 400
/// without waiting for the body, then discards it), `POST /reject-and-close` (answers 413 without reading the body
/// and hangs up), `GET /status/500`, `GET /hang` (never answers).
final class TestHTTPSServer: Sendable {
    typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

    /// The repeating unit of `/big`: byte i of the body is `i % 251`.
    static let patternBlock: [UInt8] = (0..<(251 * 1024)).map { UInt8($0 % 251) }

    let port: Int
    let bigSize: Int
    private let serverChannel: NIOAsyncChannel<Connection, Never>
    private let requests = Mutex<[String]>([])
    private let acceptLoop = Mutex<Task<Void, Never>?>(nil)

    /// Every request head the handler has seen, as "METHOD /path".
    var requestsSeen: [String] {
        self.requests.withLock { $0 }
    }

    private init(serverChannel: NIOAsyncChannel<Connection, Never>, bigSize: Int) throws {
        self.serverChannel = serverChannel
        self.bigSize = bigSize
        guard let port = serverChannel.channel.localAddress?.port else {
            throw TestFailure("the test server has no port")
        }
        self.port = port
    }

    /// - Parameter tls: changes the server's TLS configuration (e.g. to offer only what the client must refuse).
    static func start(
        certificate: TestCertificate,
        bigSize: Int = 1024 * 1024,
        tls: (inout TLSConfiguration) -> Void = { _ in }
    ) async throws -> TestHTTPSServer {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificate.certificatePath).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: certificate.keyPath, format: .pem))
        )
        // After hanging up on an unread upload, don't wait the default 5 s for the client's close_notify.
        configuration.shutdownTimeout = .milliseconds(500)
        tls(&configuration)
        let sslContext = try NIOSSLContext(configuration: configuration)
        let serverChannel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    return try Connection(wrappingChannelSynchronously: channel)
                }
            }
        let server = try TestHTTPSServer(serverChannel: serverChannel, bigSize: bigSize)
        let task = Task<Void, Never> {
            try? await serverChannel.executeThenClose { connections in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in connections {
                        group.addTask {
                            try? await server.handle(connection)
                        }
                    }
                }
            }
        }
        server.acceptLoop.withLock { $0 = task }
        return server
    }

    /// Stops accepting and waits for open connections to finish.
    func stop() async {
        try? await self.serverChannel.channel.close()
        let task = self.acceptLoop.withLock { $0 }
        await task?.value
    }

    private func handle(_ connection: Connection) async throws {
        try await connection.executeThenClose { inbound, outbound in
            var parts = inbound.makeAsyncIterator()
            guard case .head(let head)? = try await parts.next() else {
                return
            }
            self.requests.withLock { $0.append("\(head.method.rawValue) \(head.uri)") }
            switch (head.method, head.uri) {
            case (.GET, "/hello"):
                try await drain(&parts)
                try await respond(outbound, status: .ok, json: #"{"hello":"appliance"}"#)
            case (.GET, "/big"):
                try await drain(&parts)
                try await self.streamBig(outbound, eventLoop: connection.channel.eventLoop)
            case (.POST, "/echo-size"):
                var count = 0
                var checksum = FNV1a()
                while let part = try await parts.next() {
                    if case .body(let buffer) = part {
                        count += buffer.readableBytes
                        buffer.withUnsafeReadableBytes { checksum.update($0) }
                    } else if case .end = part {
                        break
                    }
                }
                try await respond(outbound, status: .ok, json: #"{"count":\#(count),"checksum":\#(checksum.value)}"#)
            case (.POST, "/reject-early"):
                try await respond(outbound, status: .badRequest, json: #"{"error":"not accepted"}"#)
                // Keep reading (and discarding) so the client's writes don't turn into a connection reset.
                try await drain(&parts)
            case (.POST, "/reject-and-close"):
                // Answer without reading the body, then hang up straight away.
                try await respond(outbound, status: .payloadTooLarge, json: #"{"error":"too large"}"#)
            case (.GET, "/status/500"):
                try await drain(&parts)
                try await respond(outbound, status: .internalServerError, json: #"{"error":"boom"}"#)
            case (.GET, "/hang"):
                // Never answer; return once the client gives up and closes.
                while try await parts.next() != nil {}
            default:
                try await drain(&parts)
                try await respond(outbound, status: .notFound, json: #"{"error":"no such route"}"#)
            }
        }
    }

    private func streamBig(
        _ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>,
        eventLoop: any EventLoop
    ) async throws {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/octet-stream")
        headers.add(name: "Content-Length", value: String(self.bigSize))
        headers.add(name: "Connection", value: "close")
        try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)))
        let block = ByteBuffer(bytes: Self.patternBlock)
        var remaining = self.bigSize
        while remaining > 0 {
            let count = min(remaining, block.readableBytes)
            try await outbound.write(.body(.byteBuffer(block.getSlice(at: block.readerIndex, length: count)!)))
            // Let the event loop catch up so the writer sees unwritability promptly; otherwise this loop can queue
            // far more than the channel's write buffer (and the test would measure the server, not the client).
            try await eventLoop.submit {}.get()
            remaining -= count
        }
        try await outbound.write(.end(nil))
    }
}

private func drain(_ parts: inout NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator) async throws {
    while let part = try await parts.next() {
        if case .end = part {
            return
        }
    }
}

private func respond(
    _ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>,
    status: HTTPResponseStatus,
    json: String
) async throws {
    var headers = HTTPHeaders()
    headers.add(name: "Content-Type", value: "application/json")
    headers.add(name: "Content-Length", value: String(json.utf8.count))
    headers.add(name: "Connection", value: "close")
    try await outbound.write(contentsOf: [
        .head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)),
        .body(.byteBuffer(ByteBuffer(string: json))),
        .end(nil),
    ])
}
