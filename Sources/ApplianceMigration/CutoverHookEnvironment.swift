/// The environment a cutover hook runs with (P5): only what is documented, never a password.
///
/// appliancectl's own environment holds the appliances' and the backup's passwords; a hook (a DNS or NAT script of
/// the operator's) gets none of it but `PATH`, `HOME`, `LANG`, `LC_ALL`, `TZ` and `TMPDIR` when set, the
/// `APPLIANCE_*` variables below, and the operator's own `CUTOVER_*` settings (e.g. `CUTOVER_NAT_PIDFILE` for
/// `Playbooks/hooks/loopback-nat-swing.sh`), unless a name looks like a secret's.
public enum CutoverHookEnvironment {
    /// Passed on from appliancectl's environment when set.
    public static let passedOn = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"]
    /// The prefix of the operator's own settings for the hook.
    public static let settingsPrefix = "CUTOVER_"
    /// Parts of a name that mark a secret; such a variable never reaches the hook, `CUTOVER_` or not.
    public static let secretMarkers = ["PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "CREDENTIAL"]

    /// The hook's environment as `NAME=value` strings, sorted by name.
    /// - Parameters:
    ///   - inherited: appliancectl's own environment.
    ///   - site: the site address `HOST:PORT` the hook swings (`APPLIANCE_SITE_ADDRESS`).
    ///   - oldAddress: the old appliance's address (`APPLIANCE_OLD_ADDRESS`).
    ///   - newAddress: the new appliance's address `HOST:PORT` (`APPLIANCE_NEW_ADDRESS`).
    ///   - newHost: the new appliance's host (`APPLIANCE_NEW_HOST`).
    ///   - newPort: the new appliance's port (`APPLIANCE_NEW_PORT`).
    public static func variables(
        inherited: [String: String],
        site: String,
        oldAddress: String,
        newAddress: String,
        newHost: String,
        newPort: Int
    ) -> [String] {
        var result: [String: String] = ["PATH": "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"]
        for (name, value) in inherited {
            let upper = name.uppercased()
            guard passedOn.contains(name) || name.hasPrefix(settingsPrefix),
                !secretMarkers.contains(where: { upper.contains($0) })
            else { continue }
            result[name] = value
        }
        result["APPLIANCE_SITE_ADDRESS"] = site
        result["APPLIANCE_OLD_ADDRESS"] = oldAddress
        result["APPLIANCE_NEW_ADDRESS"] = newAddress
        result["APPLIANCE_NEW_HOST"] = newHost
        result["APPLIANCE_NEW_PORT"] = "\(newPort)"
        return result.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
    }
}
