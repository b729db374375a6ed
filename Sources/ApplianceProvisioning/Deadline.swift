import Synchronization

/// Runs `body` but stops waiting for it at `deadline`: nil then. A probe of a VM on QEMU user networking can
/// hang inside one attempt (QEMU accepts the connection on the host port before the guest listens), so a
/// deadline checked only between attempts would let `--ready-timeout` pass unnoticed. The abandoned attempt is
/// cancelled and ends on its own time limit.
func untilDeadline<T: Sendable>(
    _ deadline: ContinuousClock.Instant,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T? {
    let race = DeadlineRace<T>()
    return try await withCheckedThrowingContinuation { continuation in
        race.waiter.withLock { $0 = continuation }
        let work = Task {
            let result: Result<T?, any Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            race.finish(result)
            race.timer.withLock { $0 }?.cancel()
        }
        race.work.withLock { $0 = work }
        let timer = Task {
            try? await Task.sleep(until: deadline)
            race.work.withLock { $0 }?.cancel()
            race.finish(.success(nil))
        }
        race.timer.withLock { $0 = timer }
    }
}

/// Who resumes `untilDeadline`'s caller first: the attempt or the deadline; the other one finds nothing to do.
private final class DeadlineRace<T: Sendable>: Sendable {
    let waiter = Mutex<CheckedContinuation<T?, any Error>?>(nil)
    let work = Mutex<Task<Void, Never>?>(nil)
    let timer = Mutex<Task<Void, Never>?>(nil)

    func finish(_ result: Result<T?, any Error>) {
        waiter.withLock { $0.take() }?.resume(with: result)
    }
}
