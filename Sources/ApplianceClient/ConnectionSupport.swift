import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// What the TLS verification callback saw on one connection: the leaf certificate's pin and DER bytes.
///
/// The callback runs on the event loop while the caller waits on another task, hence the mutex.
final class PeerObservation: Sendable {
    struct Peer: Sendable {
        var pin: TLSPin
        var certificateDER: [UInt8]
    }

    private let state = Mutex<Peer?>(nil)

    var peer: Peer? {
        self.state.withLock { $0 }
    }

    /// Records the leaf certificate and decides the handshake: accept when there is no expected pin (first
    /// contact) or when the key matches it.
    func verify(chain: [NIOSSLCertificate], expected: TLSPin?) -> NIOSSLVerificationResult {
        guard let leaf = chain.first,
            let spki = try? leaf.extractPublicKey().toSPKIBytes(),
            let der = try? leaf.toDERBytes()
        else {
            return .failed
        }
        let pin = TLSPin(spkiDER: spki)
        self.state.withLock { $0 = Peer(pin: pin, certificateDER: der) }
        if let expected, expected != pin {
            return .failed
        }
        return .certificateVerified
    }
}

/// Completes `promise` when the TLS handshake finishes, or fails it if the connection errors or closes first.
///
/// It sits right behind the TLS handler and, once the channel is active, writes an empty buffer into it: the TLS
/// handler holds writes until the handshake is done and fails them if it fails, so that write's completion tells
/// us the outcome (without depending on the NIOTLS module for the handshake event).
final class HandshakeWaiter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    struct ClosedDuringHandshake: Error {}
    struct TimedOut: Error {}

    private var promise: EventLoopPromise<Void>?
    private let timeout: TimeAmount
    private var timeoutTask: Scheduled<Void>?
    private var probeSent = false

    /// Fails with ``TimedOut`` and closes the connection if the handshake takes longer than `timeout`.
    init(promise: EventLoopPromise<Void>, timeout: TimeAmount) {
        self.promise = promise
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive {
            self.sendProbe(context: context)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        self.sendProbe(context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.complete(.failure(error))
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.complete(.failure(ClosedDuringHandshake()))
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.complete(.failure(ClosedDuringHandshake()))
    }

    private func sendProbe(context: ChannelHandlerContext) {
        guard !self.probeSent else {
            return
        }
        self.probeSent = true
        self.timeoutTask = context.eventLoop.assumeIsolated().scheduleTask(in: self.timeout) {
            self.complete(.failure(TimedOut()))
            context.close(promise: nil)
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.assumeIsolated().whenComplete { result in
            self.complete(result)
        }
        context.writeAndFlush(NIOAny(ByteBuffer()), promise: written)
    }

    private func complete(_ result: Result<Void, any Error>) {
        guard let promise = self.promise else {
            return
        }
        self.promise = nil
        self.timeoutTask?.cancel()
        self.timeoutTask = nil
        promise.completeWith(result)
    }
}

/// A host and port as an operator would type them: `host:port`, with brackets around IPv6 literals.
func formatAddress(host: String, port: Int) -> String {
    host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
}

/// Whether `host` is an IP literal, which must not be sent as a TLS server name.
func isIPAddress(_ host: String) -> Bool {
    (try? SocketAddress(ipAddress: host, port: 0)) != nil
}

/// Encodes a DER certificate as PEM with 64-column base64 lines.
func pemEncodeCertificate(_ der: [UInt8]) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var encoded: [UInt8] = []
    encoded.reserveCapacity((der.count + 2) / 3 * 4)
    var index = 0
    while index < der.count {
        let b0 = der[index]
        let b1 = index + 1 < der.count ? der[index + 1] : 0
        let b2 = index + 2 < der.count ? der[index + 2] : 0
        encoded.append(alphabet[Int(b0 >> 2)])
        encoded.append(alphabet[Int((b0 & 0x03) << 4 | b1 >> 4)])
        encoded.append(index + 1 < der.count ? alphabet[Int((b1 & 0x0f) << 2 | b2 >> 6)] : UInt8(ascii: "="))
        encoded.append(index + 2 < der.count ? alphabet[Int(b2 & 0x3f)] : UInt8(ascii: "="))
        index += 3
    }
    var pem = "-----BEGIN CERTIFICATE-----\n"
    var lineStart = 0
    while lineStart < encoded.count {
        let lineEnd = min(lineStart + 64, encoded.count)
        pem += String(decoding: encoded[lineStart..<lineEnd], as: UTF8.self)
        pem += "\n"
        lineStart = lineEnd
    }
    pem += "-----END CERTIFICATE-----\n"
    return pem
}

/// Turns errors from establishing the TCP connection into operator messages.
func connectError(_ error: any Error, host: String, port: Int, connectTimeout: Duration) -> ApplianceClientError {
    let address = formatAddress(host: host, port: port)
    if let error = error as? ApplianceClientError {
        return error
    }
    if let channelError = error as? ChannelError, case .connectTimeout = channelError {
        return connectTimedOut(address: address, connectTimeout: connectTimeout)
    }
    if let connectionError = error as? NIOConnectionError {
        let errnos = connectionError.connectionErrors.compactMap { ($0.error as? IOError)?.errnoCode }
        if errnos.contains(ECONNREFUSED) {
            return refused(address: address)
        }
        if connectionError.connectionErrors.contains(where: { failure in
            if let channelError = failure.error as? ChannelError, case .connectTimeout = channelError {
                return true
            }
            return false
        }) {
            return connectTimedOut(address: address, connectTimeout: connectTimeout)
        }
        if connectionError.connectionErrors.isEmpty {
            return ApplianceClientError(
                code: .connectionFailed,
                message: "could not reach the appliance at \(address) (the name \(host) did not resolve); "
                    + "check the address and your DNS settings"
            )
        }
        if let first = errnos.first {
            return ApplianceClientError(
                code: .connectionFailed,
                message: "could not reach the appliance at \(address) (\(describeErrno(first))); "
                    + "check the address, the network and that applianced is running"
            )
        }
    }
    if let ioError = error as? IOError, ioError.errnoCode == ECONNREFUSED {
        return refused(address: address)
    }
    return ApplianceClientError(
        code: .connectionFailed,
        message: "could not reach the appliance at \(address) (\(error)); "
            + "check the address, the network and that applianced is running"
    )
}

private func refused(address: String) -> ApplianceClientError {
    ApplianceClientError(
        code: .connectionFailed,
        message: "could not reach the appliance at \(address) (connection refused); "
            + "check the address and that applianced is running"
    )
}

private func connectTimedOut(address: String, connectTimeout: Duration) -> ApplianceClientError {
    ApplianceClientError(
        code: .timeout,
        message: "could not reach the appliance at \(address) within \(describe(connectTimeout)) "
            + "(no answer to the connection attempt); check the address, the network and any firewall in between"
    )
}

/// Turns a failed TLS handshake into `.pinMismatch` (when the verification callback saw a different key) or
/// `.tlsHandshakeFailed`.
func handshakeError(
    _ error: any Error,
    address: String,
    expected: TLSPin?,
    observed: TLSPin?,
    timeout: Duration
) -> ApplianceClientError {
    if let expected, let observed, expected != observed {
        return ApplianceClientError(
            code: .pinMismatch,
            message: "the appliance at \(address) presented a different key (\(observed), expected \(expected)); "
                + "if the appliance was reset or its certificate replaced on purpose, run "
                + "`appliancectl pin --reset \(address)`; otherwise do not continue"
        )
    }
    if error is HandshakeWaiter.TimedOut {
        return ApplianceClientError(
            code: .timeout,
            message: "the appliance at \(address) accepted the connection but did not complete the TLS handshake "
                + "within \(describe(timeout)); check that \(address) is applianced's HTTPS port and that the "
                + "appliance is not overloaded"
        )
    }
    if error is HandshakeWaiter.ClosedDuringHandshake {
        return ApplianceClientError(
            code: .tlsHandshakeFailed,
            message: "the appliance at \(address) closed the connection during the TLS handshake; "
                + "check that \(address) is applianced's HTTPS port"
        )
    }
    return ApplianceClientError(
        code: .tlsHandshakeFailed,
        message: "the TLS handshake with the appliance at \(address) failed (\(error)); "
            + "check that \(address) is applianced's HTTPS port"
    )
}

/// Turns an error after the handshake, while sending the request or reading the response, into an operator
/// message.
func exchangeError(_ error: any Error, address: String) -> any Error {
    if error is ApplianceClientError || error is CancellationError {
        return error
    }
    if error is HTTPParserError {
        return ApplianceClientError(
            code: .protocolError,
            message: "the appliance at \(address) sent a malformed HTTP response (\(error)); "
                + "check that \(address) is applianced and that applianced is up to date"
        )
    }
    return ApplianceClientError(
        code: .connectionFailed,
        message: "the connection to the appliance at \(address) was lost (\(error)); "
            + "check the network and that applianced is still running, then try again"
    )
}

/// A duration as an operator reads it, e.g. "10s" or "1.5s".
func describe(_ duration: Duration) -> String {
    let (seconds, attoseconds) = duration.components
    let milliseconds = attoseconds / 1_000_000_000_000_000
    if milliseconds == 0 {
        return "\(seconds)s"
    }
    var fraction = String(milliseconds)
    fraction = String(repeating: "0", count: 3 - fraction.count) + fraction
    while fraction.hasSuffix("0") {
        fraction.removeLast()
    }
    return "\(seconds).\(fraction)s"
}
