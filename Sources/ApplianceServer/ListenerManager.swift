import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import Synchronization

/// The live TLS listeners: one Hummingbird server per enabled address, all sharing one responder.
///
/// Starting a listener waits until the socket is bound, so a refusal (address not on this box, in use) is
/// reported to the caller before anything is saved. Stopping closes the listening socket at once and lets
/// requests in flight finish.
actor ListenerManager {
    private struct Running {
        var group: ServiceGroup
        var task: Task<Void, Never>
    }

    private let port: Int
    private let logger: Logger
    private var responder: (any HTTPResponder<ApplianceRequestContext>)?
    private var tlsConfiguration: (@Sendable (String) throws -> TLSConfiguration)?
    private var running: [String: Running] = [:]

    init(port: Int, logger: Logger) {
        self.port = port
        self.logger = logger
    }

    /// Sets what every listener serves; must be called before the first `start`.
    func configure(
        responder: some HTTPResponder<ApplianceRequestContext>,
        tlsConfiguration: @escaping @Sendable (String) throws -> TLSConfiguration
    ) {
        self.responder = responder
        self.tlsConfiguration = tlsConfiguration
    }

    var addresses: Set<String> { Set(running.keys) }

    func isListening(_ address: String) -> Bool { running[address] != nil }

    /// Binds `address` and serves on it; returns once the socket is listening, throws if it cannot be bound.
    func start(_ address: String) async throws {
        guard running[address] == nil else { return }
        guard let responder, let tlsConfiguration else {
            throw ApplianceServerError(.internalServerError, "not_configured", "listeners are not configured yet")
        }
        let bound = BoundSignal()
        let app = Application(
            responder: AnyResponder(responder),
            server: try .tls(.http1WithPersistenceRules(), tlsConfiguration: tlsConfiguration(address)),
            configuration: .init(address: .hostname(address, port: port), serverName: nil),
            onServerRunning: { _ in bound.fire(nil) },
            logger: logger
        )
        let group = ServiceGroup(
            configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger)
        )
        let logger = self.logger
        // Detached: a listener started from a request handler must not inherit that listener's graceful-shutdown
        // context (a task-local of ServiceLifecycle), or stopping the old listener would stop the new one.
        let task = Task.detached {
            do {
                try await group.run()
            } catch {
                logger.debug("Listener ended", metadata: ["listener.address": "\(address)", "error": "\(error)"])
                bound.fire(error)
            }
            bound.fire(ApplianceServerError(.internalServerError, "listener_stopped", "the listener stopped"))
        }
        do {
            try await bound.wait()
        } catch {
            task.cancel()
            throw ApplianceServerError(
                .badRequest,
                "address_unavailable",
                "cannot listen on \(address):\(port) (\(error)); the address must belong to this box and be free"
            )
        }
        running[address] = Running(group: group, task: task)
        logger.info("Listening", metadata: ["listener.address": "\(address)", "listener.port": "\(port)"])
    }

    /// Stops answering on `address`: the socket closes now, requests in flight complete.
    func stop(_ address: String) async {
        guard let listener = running.removeValue(forKey: address) else { return }
        await listener.group.triggerGracefulShutdown()
        logger.info("Stopped listening", metadata: ["listener.address": "\(address)"])
    }

    /// Makes the set of listeners equal `desired`; addresses that cannot be bound are logged and skipped.
    func reconcile(_ desired: Set<String>) async {
        for address in running.keys where !desired.contains(address) {
            await stop(address)
        }
        for address in desired.sorted() where running[address] == nil {
            do {
                try await start(address)
            } catch {
                logger.error("Cannot listen", metadata: ["listener.address": "\(address)", "error": "\(error)"])
            }
        }
    }

    /// Stops every listener and waits until they have finished.
    func stopAll() async {
        let all = running
        running = [:]
        for (_, listener) in all {
            await listener.group.triggerGracefulShutdown()
        }
        for (_, listener) in all {
            await listener.task.value
        }
    }
}

/// A responder stored as an existential, so listeners can be built from it repeatedly.
struct AnyResponder: HTTPResponder {
    typealias Context = ApplianceRequestContext
    let base: any HTTPResponder<ApplianceRequestContext>

    init(_ base: any HTTPResponder<ApplianceRequestContext>) { self.base = base }

    func respond(to request: Request, context: ApplianceRequestContext) async throws -> Response {
        try await base.respond(to: request, context: context)
    }
}

/// Resolves once: the server is bound (nil) or failed (error).
final class BoundSignal: Sendable {
    private let state = Mutex<(fired: Bool, result: (any Error)??, waiter: CheckedContinuation<Void, any Error>?)>(
        (false, nil, nil)
    )

    func fire(_ error: (any Error)?) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            guard !state.fired else { return nil }
            state.fired = true
            state.result = .some(error)
            defer { state.waiter = nil }
            return state.waiter
        }
        if let waiter {
            if let error { waiter.resume(throwing: error) } else { waiter.resume() }
        }
    }

    func wait() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let result = state.withLock { state -> (any Error)?? in
                if state.fired { return state.result }
                state.waiter = continuation
                return nil
            }
            if let result {
                if let error = result { continuation.resume(throwing: error) } else { continuation.resume() }
            }
        }
    }
}
