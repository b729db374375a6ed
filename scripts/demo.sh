#!/usr/bin/env bash
# The main job at this stage: start a populated "physical" box (an applianced process on its own loopback
# address), provision a virtual appliance for it (the image built from Debian packages, a real VM under QEMU
# through appliancectl's own libvirt daemon), back the box up with appliancectl, restore the backup into the VM,
# and show that the site arrived (settings, users and history digests equal). The VM is destroyed at the end
# unless KEEP_VM=1.
#
#   SIZE=256MiB scripts/demo.sh        (default 256MiB; any size such as 1GiB works)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
swift build -c release --product applianced >/dev/null
swift build -c release --product appliancectl >/dev/null
bin="$(swift build -c release --show-bin-path)"

work="$(mktemp -d /tmp/appliance-demo.XXXXXX)"
chmod 755 "$work"
export APPLIANCECTL_HOME="$work/ctl"
export APPLIANCE_PASSWORD="Demo-Operator-Pass-1"
export BACKUP_PASSWORD="Demo-Backup-Pass-1"
old="127.0.0.11:8443"
cat >"$work/inventory.yml" <<'YAML'
# The demo's inventory: the "physical" box and the virtual appliance made for it.
hypervisors:
  local:
    pool: appliances
appliances:
  old-box:
    physical:
      address: 127.0.0.11:8443
    password: APPLIANCE_PASSWORD
  demo-vm:
    virtual:
      hypervisor: local
      memory_mib: 1024     # restoring an encrypted backup needs scrypt's 256 MiB
    password: APPLIANCE_PASSWORD
YAML

"$bin/applianced" --data-dir "$work/old" --listen "$old" --log-level warning &
old_pid=$!
finish() {
    kill $old_pid 2>/dev/null || true
    if [ "${KEEP_VM:-0}" != 1 ]; then
        "$bin/appliancectl" destroy demo-vm --inventory "$work/inventory.yml" >/dev/null 2>&1 || true
    fi
}
trap finish EXIT
for _ in $(seq 1 100); do APPLIANCE_PASSWORD= "$bin/appliancectl" status "$old" >/dev/null 2>&1 && break; sleep 0.1; done

echo "== first login on the physical box"
"$bin/appliancectl" first-login "$old"
echo "== provision the virtual appliance (image from Debian packages, QEMU through libvirt)"
"$bin/appliancectl" provision demo-vm --inventory "$work/inventory.yml"
new=$(python3 -c 'import sys,re; print(re.search(r"address: (\S+)", open(sys.argv[1]).read().split("demo-vm:")[1]).group(1))' "$work/inventory.yml")
"$bin/appliancectl" list --inventory "$work/inventory.yml"
echo "== populate the old box with ${SIZE:-256MiB} of site data"
"$bin/appliancectl" populate "$old" --size "${SIZE:-256MiB}" --seed 42
echo "== back up the old box"
"$bin/appliancectl" backup "$old" --out "$work/old.backup"
echo "== restore into the virtual appliance at $new"
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
