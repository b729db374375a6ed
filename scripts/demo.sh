#!/usr/bin/env bash
# The main job at this stage: start a populated "physical" box and a factory-fresh one (applianced processes on
# their own loopback addresses), back the first one up with appliancectl, restore the backup into the second,
# and show that the site arrived (settings, users and history digests equal).
#
#   SIZE=256MiB scripts/demo.sh        (default 256MiB; any size such as 1GiB works)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
swift build -c release --product applianced >/dev/null
swift build -c release --product appliancectl >/dev/null
bin="$(swift build -c release --show-bin-path)"

work="$(mktemp -d /tmp/appliance-demo.XXXXXX)"
export APPLIANCECTL_HOME="$work/ctl"
export APPLIANCE_PASSWORD="Demo-Operator-Pass-1"
export BACKUP_PASSWORD="Demo-Backup-Pass-1"
old="127.0.0.11:8443"
new="127.0.0.12:8443"

"$bin/applianced" --data-dir "$work/old" --listen "$old" --log-level warning &
old_pid=$!
"$bin/applianced" --data-dir "$work/new" --listen "$new" --log-level warning &
new_pid=$!
trap 'kill $old_pid $new_pid 2>/dev/null || true' EXIT
for address in "$old" "$new"; do
    for _ in $(seq 1 100); do APPLIANCE_PASSWORD= "$bin/appliancectl" status "$address" >/dev/null 2>&1 && break; sleep 0.1; done
done

echo "== first login on both boxes"
"$bin/appliancectl" first-login "$old"
"$bin/appliancectl" first-login "$new"
echo "== populate the old box with ${SIZE:-256MiB} of site data"
"$bin/appliancectl" populate "$old" --size "${SIZE:-256MiB}" --seed 42
echo "== back up the old box"
"$bin/appliancectl" backup "$old" --out "$work/old.backup"
echo "== restore into the new box"
"$bin/appliancectl" restore "$new" --file "$work/old.backup"
echo "== compare"
"$bin/appliancectl" summary "$old" >"$work/old.json"
"$bin/appliancectl" summary "$new" >"$work/new.json"
python3 - "$work/old.json" "$work/new.json" <<'PY'
import json, sys
old, new = (json.load(open(p)) for p in sys.argv[1:3])
ok = True
for key in ("settingsDigest", "usersDigest", "historyDigest", "historyRows", "siteVersion"):
    same = old[key] == new[key]
    ok &= same
    print(f"{key:16} {'match' if same else 'DIFFER'}  {old[key]}")
print(f"{'files':16} old {old['fileCount']}, new {new['fileCount']} (a backup carries files < 200 KB, at most 50)")
print(f"{'recordings':16} old {old['recordingCount']}, new {new['recordingCount']} (not part of a backup)")
sys.exit(0 if ok else 1)
PY
echo "== done; state in $work"
