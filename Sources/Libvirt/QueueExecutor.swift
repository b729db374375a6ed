import Dispatch

/// A serial executor that runs every job on one private serial dispatch queue.
///
/// Dispatch on Linux has no `DispatchSerialQueue` executor, so this adapts a `DispatchQueue`. Each
/// `LibvirtConnection` owns one, which keeps its blocking libvirt calls off Swift's cooperative thread pool.
final class QueueExecutor: SerialExecutor {
    let queue: DispatchQueue

    init(label: String) {
        queue = DispatchQueue(label: label)
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async {
            job.runSynchronously(on: self.asUnownedSerialExecutor())
        }
    }

    func checkIsolated() {
        dispatchPrecondition(condition: .onQueue(queue))
    }
}
