import ApplianceTLS
import NIOCore
import NIOEmbedded
import NIOSSL

/// Proves that a certificate chain and key can serve TLS: a server and a client context are built the way the
/// listeners build theirs, and a complete handshake plus one application record runs between them in memory.
///
/// Parsing alone is not enough: a key that does not belong to the certificate parses fine and then fails every
/// handshake with "internal error".
enum TLSHandshakeProof {
    struct Failed: Error, CustomStringConvertible {
        var description: String
    }

    /// - Throws: the TLS stack's error, or ``Failed`` when the handshake does not complete.
    static func run(chain: [NIOSSLCertificate], key: NIOSSLPrivateKey) throws {
        let serverConfiguration = TLSPolicy.serverConfiguration(certificateChain: chain, privateKey: key)
        var clientConfiguration = TLSPolicy.clientConfiguration()
        clientConfiguration.certificateVerification = .none
        clientConfiguration.trustRoots = .certificates([])
        let serverContext = try NIOSSLContext(configuration: serverConfiguration)
        let clientContext = try NIOSSLContext(configuration: clientConfiguration)

        let server = EmbeddedChannel()
        let client = EmbeddedChannel()
        defer { shutDown(client, server) }
        try server.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: serverContext))
        try client.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: clientContext, serverHostname: nil))
        let peer = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
        try server.connect(to: peer).wait()
        try client.connect(to: peer).wait()
        // Written before the handshake finishes: the TLS handler holds it until then (so no waiting on the write).
        client.writeAndFlush(ByteBuffer(string: "probe"), promise: nil)

        for _ in 0..<16 {
            let moved = try shuttle(client, server)
            if let received = try server.readInbound(as: ByteBuffer.self) {
                guard String(buffer: received) == "probe" else {
                    throw Failed(description: "the TLS test connection delivered the wrong bytes")
                }
                return
            }
            if !moved { break }
        }
        throw Failed(description: "the TLS test handshake did not complete")
    }

    /// Moves every pending byte between the two ends once; false when there was nothing to move.
    private static func shuttle(_ client: EmbeddedChannel, _ server: EmbeddedChannel) throws -> Bool {
        var moved = false
        while let bytes = try client.readOutbound(as: ByteBuffer.self) {
            try server.writeInbound(bytes)
            moved = true
        }
        while let bytes = try server.readOutbound(as: ByteBuffer.self) {
            try client.writeInbound(bytes)
            moved = true
        }
        return moved
    }

    /// Closes both ends without waiting: TLS close waits for the peer's close_notify, so the alerts are moved
    /// across and the embedded clocks run past NIOSSL's shutdown timeout, which completes any close left over.
    private static func shutDown(_ client: EmbeddedChannel, _ server: EmbeddedChannel) {
        client.close(promise: nil)
        server.close(promise: nil)
        for _ in 0..<4 {
            guard (try? shuttle(client, server)) == true else { break }
        }
        client.embeddedEventLoop.advanceTime(by: .seconds(60))
        server.embeddedEventLoop.advanceTime(by: .seconds(60))
    }
}
