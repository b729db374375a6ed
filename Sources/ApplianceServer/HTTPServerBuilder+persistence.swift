import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1

extension HTTPServerBuilder {
    /// HTTP/1 as Hummingbird serves it, plus the connection persistence rules of RFC 9112 §9.3.
    ///
    /// Hummingbird converts NIO's HTTP/1 request head into a version-less `HTTPRequest` and only ends a
    /// connection when the request's `Connection` header is exactly `close`. An HTTP/1.0 request without
    /// `Connection: keep-alive` (what `ab` sends) is not persistent, but its version is gone by then, so the
    /// connection stayed open after the answer and the client waited for the close forever.
    static func http1WithPersistenceRules() -> HTTPServerBuilder {
        .init { responder in
            PersistenceRulesHTTP1Channel(base: HTTP1Channel(responder: responder))
        }
    }
}

/// Hummingbird's `HTTP1Channel` with `ConnectionPersistenceHandler` between NIO's HTTP/1 decoder and the
/// conversion to HTTP types, where the request's version is still known.
struct PersistenceRulesHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = HTTP1Channel.Value
    let base: HTTP1Channel

    var responder: HTTPChannelHandler.Responder { base.responder }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        base.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let operations = channel.pipeline.syncOperations
            let decoder = try operations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try operations.addHandler(ConnectionPersistenceHandler(), position: .after(decoder))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// Marks requests that end their connection with `Connection: close` (the form Hummingbird acts on) and says so
/// in the matching response; an HTTP/1.0 request that asked for keep-alive gets `Connection: keep-alive` back.
final class ConnectionPersistenceHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum Persistence {
        case close, keepAlive, http11Default
    }

    /// One entry per request read and not answered yet, oldest first (requests may be pipelined).
    private var pending: [Persistence] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data) else {
            context.fireChannelRead(data)
            return
        }
        if !head.isKeepAlive {
            head.headers.replaceOrAdd(name: "connection", value: "close")
            pending.append(.close)
        } else {
            pending.append(head.version.major == 1 && head.version.minor == 0 ? .keepAlive : .http11Default)
        }
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Interim (1xx) answers precede the final one and do not end a request.
        guard case .head(var head) = unwrapOutboundIn(data), head.status.code >= 200, !pending.isEmpty else {
            context.write(data, promise: promise)
            return
        }
        switch pending.removeFirst() {
        case .close: head.headers.replaceOrAdd(name: "connection", value: "close")
        case .keepAlive: head.headers.replaceOrAdd(name: "connection", value: "keep-alive")
        case .http11Default: break
        }
        context.write(wrapOutboundOut(.head(head)), promise: promise)
    }
}
