import ApplianceAPI
import ApplianceClient
import Foundation

/// Watches whether the site answers (health 200, not in maintenance) every 100 ms while a run acts, and adds up
/// the outages: from the first probe that finds it not answering to the first that finds it answering again.
actor SiteProbe {
    let site: HostPort
    private var downSince: ContinuousClock.Instant?
    private var closed: Duration = .zero
    private var task: Task<Void, Never>?

    init(site: HostPort) {
        self.site = site
    }

    /// Starts watching (once).
    func start() {
        guard task == nil else { return }
        task = Task { [weak self] in
            while !Task.isCancelled {
                await self?.check()
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Stops watching and waits for the probe in flight to end.
    func stop() async {
        let running = task
        task = nil
        running?.cancel()
        await running?.value
    }

    /// Whether the site accepts work now: its health answers 200 and it is not frozen.
    func answers() async -> Bool {
        let probe = ApplianceConnection(host: site.host, port: site.port, pin: nil, requestTimeout: .seconds(2))
        guard let (healthy, health, _) = try? await probe.health() else { return false }
        return healthy && health.status != "maintenance"
    }

    func check() async {
        let up = await answers()
        let now = ContinuousClock.now
        if up, let since = downSince {
            closed += now - since
            downSince = nil
        } else if !up && downSince == nil {
            downSince = now
        }
    }

    /// The seconds of outages that ended since the last call (checking once more first), and whether the site is
    /// down now.
    func take() async -> (seconds: Double, down: Bool) {
        await check()
        let seconds = Double(closed.components.seconds) + Double(closed.components.attoseconds) / 1e18
        closed = .zero
        return (seconds, downSince != nil)
    }
}
