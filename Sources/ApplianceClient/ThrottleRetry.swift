import Foundation

/// How a connection waits out a 429 Too Many Requests answer (the appliance's login backoff) before it gives up.
///
/// The appliance says in `Retry-After` how many seconds to wait; the connection waits that long and asks again,
/// at most `maxAttempts` times in all and never more than `maxTotalWait` in total, then reports the 429.
public struct ThrottleRetry: Sendable, Equatable {
    /// Attempts in all, the first included.
    public var maxAttempts: Int
    /// The most time spent waiting over all attempts.
    public var maxTotalWait: Duration

    public init(maxAttempts: Int, maxTotalWait: Duration) {
        self.maxAttempts = maxAttempts
        self.maxTotalWait = maxTotalWait
    }

    /// Three attempts, at most 30 s of waiting.
    public static let standard = ThrottleRetry(maxAttempts: 3, maxTotalWait: .seconds(30))
    /// Report a 429 at once (for callers that show the backoff itself).
    public static let never = ThrottleRetry(maxAttempts: 1, maxTotalWait: .zero)

    /// How long to wait before attempt `attempt + 1` after a 429 that came `waited` into the call; nil to give up.
    func wait(after result: HTTPResult, attempt: Int, waited: Duration) -> Duration? {
        guard result.status == 429, attempt < maxAttempts else { return nil }
        // Retry-After in seconds (the appliance's form); a missing or date form waits one second.
        let seconds = result.header("Retry-After").flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } ?? 1
        let wait = Duration.seconds(max(seconds, 0))
        guard waited + wait <= maxTotalWait else { return nil }
        return wait
    }
}
