import ApplianceAPI
import ApplianceStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension ApplianceRouter {
    /// Streams a stored file in 256 KiB pieces; its SHA-256 is the entity tag.
    ///
    /// A single byte range (`Range: bytes=N-` or `bytes=N-M`) is answered with 206 and only those bytes, so an
    /// interrupted transfer (a failover sync of a large recording) continues where it stopped. `If-Range` with
    /// another entity tag than the file's sends the whole file (it changed since the partial copy was made); a
    /// range that starts beyond the end is refused with 416 and the size; a malformed one is ignored (RFC 9110).
    static func fileResponse(_ url: URL, info: StoredFileInfo, request: Request? = nil) throws -> Response {
        let range = request.flatMap { Self.byteRange($0.headers, info: info) }
        if case .unsatisfiable = range {
            throw ApplianceServerError(
                .rangeNotSatisfiable,
                "range_not_satisfiable",
                "the file is \(info.size) bytes; ask for a range that starts before its end, or for the whole file"
            )
        }
        let handle = try FileHandle(forReadingFrom: url)
        var status = HTTPResponse.Status.ok
        var length = info.size
        var headers: HTTPFields = [
            .contentType: "application/octet-stream", .eTag: info.sha256, .acceptRanges: "bytes",
        ]
        if case .bytes(let lower, let upper) = range {
            status = .partialContent
            length = upper - lower + 1
            headers[.contentRange] = "bytes \(lower)-\(upper)/\(info.size)"
            do {
                try handle.seek(toOffset: UInt64(lower))
            } catch {
                try? handle.close()
                throw error
            }
        }
        headers[.contentLength] = "\(length)"
        let total = length
        return Response(
            status: status,
            headers: headers,
            body: ResponseBody(contentLength: Int(length)) { writer in
                defer { try? handle.close() }
                var left = total
                while left > 0, let data = try handle.read(upToCount: Int(min(256 * 1024, left))), !data.isEmpty {
                    left -= Int64(data.count)
                    try await writer.write(ByteBuffer(bytes: data))
                }
                try await writer.finish(nil)
            }
        )
    }

    enum ByteRange: Equatable {
        case bytes(Int64, Int64)
        case unsatisfiable
    }

    /// The one range a request asks for, nil for the whole file.
    static func byteRange(_ headers: HTTPFields, info: StoredFileInfo) -> ByteRange? {
        guard let value = headers[.range] else { return nil }
        if let condition = headers[.ifRange] {
            let tag = condition.trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
            guard tag == info.sha256 else { return nil }
        }
        guard value.hasPrefix("bytes=") else { return nil }
        let spec = value.dropFirst("bytes=".count)
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].allSatisfy(\.isASCII),
            let lower = Int64(parts[0]), lower >= 0
        else { return nil }
        var upper = info.size - 1
        if !parts[1].isEmpty {
            guard let last = Int64(parts[1]), last >= lower else { return nil }
            upper = min(last, info.size - 1)
        }
        guard lower < info.size else { return .unsatisfiable }
        return .bytes(lower, upper)
    }
}
