import ApplianceAPI
import ApplianceStore
public import Foundation
public import Hummingbird
import NIOCore

/// Per-request state: the local address the request arrived on (A3 access types) and the logged-in user.
public struct ApplianceRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The address of the listener that accepted the connection.
    public let localAddress: String?
    var user: AuthenticatedUser?
    var token: String?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.localAddress = source.channel.localAddress?.ipAddress
    }

    public var maxUploadSize: Int { 16 * 1024 * 1024 }
    public var requestDecoder: JSONDecoder { APICoding.decoder() }
    public var responseEncoder: JSONEncoder { APICoding.encoder() }
}
