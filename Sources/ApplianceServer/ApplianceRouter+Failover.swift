import ApplianceAPI
import Foundation
import HTTPTypes
import Hummingbird

extension ApplianceRouter {
    /// The failover page (A7) and the peer protocol between the two appliances.
    static func failoverHandlers(_ appliance: Appliance) -> [Endpoint: Handler] {
        [
            .failoverKey: { _, _ in try json(try appliance.failoverKeyStatus()) },
            .setFailoverKey: { request, context in
                let input = try await request.decode(as: FailoverKeyRequest.self, context: context)
                return try json(try appliance.setFailoverKey(input))
            },
            .failoverStatus: { _, _ in try json(try appliance.failoverStatus()) },
            .establishFailover: { request, context in
                let input = try await request.decode(as: EstablishRequest.self, context: context)
                return try json(try await appliance.establishFailover(input))
            },
            .syncNow: { request, context in
                let input = try await request.decode(as: SyncNowRequest.self, context: context)
                if let record = try await appliance.syncNow(wait: input.wait ?? false) { return try json(record) }
                return Response(status: .accepted)
            },
            .becomePrimary: { request, context in
                let input = try await request.decode(as: BecomePrimaryRequest.self, context: context)
                return try json(try await appliance.becomePrimary(input))
            },
            .breakFailover: { _, _ in try json(try await appliance.breakFailover()) },
            .fixFailover: { request, context in
                let input = try await request.decode(as: FailoverFixRequest.self, context: context)
                return try json(try await appliance.fixFailover(input))
            },
            .peerHello: peer(appliance) { _, _, _ in try appliance.hello() },
            .peerJoin: peer(appliance) { request, context, sender in
                let input = try await request.decode(as: PeerJoinRequest.self, context: context)
                return try await appliance.joinAsBackup(input, from: sender)
            },
            .peerChanges: peer(appliance) { request, context, sender in
                let input = try await request.decode(as: PeerChangesRequest.self, context: context)
                return try appliance.changes(input, for: sender)
            },
            .peerQuiesce: peer(appliance) { _, _, sender in try await appliance.quiesce(sender) },
            .peerDemote: peer(appliance) { _, _, sender in try appliance.demote(sender) },
            .peerBreak: peer(appliance) { _, _, sender in try appliance.peerBroke(sender) },
            .peerFixState: peer(appliance) { _, _, sender in try await appliance.peerFixState(for: sender) },
            .peerHistory: peer(appliance) { request, context, sender in
                let input = try await request.decode(as: PeerHistoryRequest.self, context: context)
                return try appliance.peerHistoryPage(input, for: sender)
            },
            .peerMerge: peer(appliance) { request, context, sender in
                let input = try await request.decode(as: PeerMergeRequest.self, context: context)
                return try await appliance.mergeAsWinner(input, from: sender)
            },
            .peerFile: { request, context in
                try peerFile(appliance, request, context, recording: false)
            },
            .peerRecording: { request, context in
                try peerFile(appliance, request, context, recording: true)
            },
        ]
    }

    /// A peer endpoint: the key's proof checked first, the answer signed with this box's proof.
    static func peer<Answer: Encodable & SendableMetatype>(
        _ appliance: Appliance,
        _ body: @escaping @Sendable (Request, ApplianceRequestContext, String) async throws -> Answer
    ) -> Handler {
        { request, context in
            let (sender, proof) = try appliance.verifyPeer(request, context: context)
            var response = try json(try await body(request, context, sender))
            response.headers[HTTPField.Name(FailoverAuth.idHeader)!] = appliance.applianceId
            response.headers[HTTPField.Name(FailoverAuth.proofHeader)!] = proof
            return response
        }
    }

    static func peerFile(
        _ appliance: Appliance,
        _ request: Request,
        _ context: ApplianceRequestContext,
        recording: Bool
    )
        throws -> Response
    {
        let (sender, proof) = try appliance.verifyPeer(request, context: context)
        var response = try appliance.peerFileResponse(
            recording: recording,
            name: context.parameters.get("name") ?? "",
            senderId: sender,
            request: request
        )
        response.headers[HTTPField.Name(FailoverAuth.idHeader)!] = appliance.applianceId
        response.headers[HTTPField.Name(FailoverAuth.proofHeader)!] = proof
        return response
    }
}
