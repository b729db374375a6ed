#!/usr/bin/env bash
# The main job: migrate a "physical" box to a new virtual appliance and return the old box (SPEC P4-P6).
#
# A populated physical box (an applianced process on 127.0.0.11:8443, site version 24.2.0, a CA-issued site
# certificate, reached by its clients through a NAT on 127.0.0.12:8443) is migrated by
# `appliancectl run migrate.yml` with `method: live` while a client keeps writing through the site address: a real
# VM is provisioned under QEMU through appliancectl's own libvirt daemon, the install, backup (proven),
# certificate, address and package steps run, the VM syncs as a failover backup of the box (reaching it through
# a QEMU guest forward, 10.0.2.100:8443 in the guest to 127.0.0.11:8443 here) while the box serves, the box is
# frozen for the last delta only, everything is verified, the NAT is swung to the VM, and the old box is
# factory-reset and shut down. The run's report must say every item matched and give the downtime, and every
# history row and file the writer got accepted must be on the VM.
# The VM is destroyed at the end unless KEEP_VM=1.
#
#   SIZE=256MiB scripts/demo.sh        (default 256MiB; any size such as 1GiB works)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
source scripts/release-build.sh
ctl="$bin/appliancectl"

work="$(mktemp -d /tmp/appliance-demo.XXXXXX)"
chmod 755 "$work"
export APPLIANCECTL_HOME="$work/ctl"
# The demo's own libvirt daemon, so a domain left by an earlier run that was cut off (its VM is also called
# new-vm) can never be adopted in place of the one this run provisions.
export APPLIANCECTL_LIBVIRT_HOME="$work/libvirt"
export OLD_BOX_PASSWORD="Demo-Operator-Pass-1"
export NEW_VM_PASSWORD="Demo-New-VM-Pass-2"
export BACKUP_PASSWORD="Demo-Backup-Pass-3"
export CUTOVER_NAT_PIDFILE="$work/nat.pid"
old="127.0.0.11:8443"
site="127.0.0.12:8443"
pids=()
finish() {
    status=$?
    [ -s "$CUTOVER_NAT_PIDFILE" ] && kill "$(cat "$CUTOVER_NAT_PIDFILE")" 2>/dev/null || true
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ "${KEEP_VM:-0}" != 1 ]; then
        "$ctl" destroy new-vm --inventory "$work/inventory.yml" >/dev/null 2>&1 || true
        daemon=$(cat "$APPLIANCECTL_LIBVIRT_HOME/run/libvirt/libvirtd.pid" 2>/dev/null || true)
        [ -n "$daemon" ] && kill "$daemon" 2>/dev/null || true
    fi
    echo "== state, journal and report in $work (exit $status)"
}
trap finish EXIT

echo "== the vendor: a signing key and a repository (a directory) with site package 24.2.0"
"$ctl" vendor keygen --out "$work/vendor" >/dev/null
head -c 65536 /dev/urandom >"$work/payload"
echo "Demo EULA: use it well." >"$work/eula.txt"
"$ctl" vendor build --key "$work/vendor.key" --name site --kind site --version 24.2.0 --eula "$work/eula.txt" \
    --payload "$work/payload" --out "$work/site-24.2.0.pkg" >/dev/null
"$ctl" vendor repo-add --repo "$work/repo" "$work/site-24.2.0.pkg" >/dev/null

echo "== the physical box at $old, reached by its clients through a NAT on $site"
"$bin/applianced" --data-dir "$work/old" --listen "$old" --hostname site.demo.test --vendor-key "$work/vendor.pub" \
    --log-level warning &
pids+=($!)
for _ in $(seq 1 100); do APPLIANCE_PASSWORD= "$ctl" status "$old" >/dev/null 2>&1 && break; sleep 0.1; done
export APPLIANCE_PASSWORD="$OLD_BOX_PASSWORD"
"$ctl" first-login "$old"
"$ctl" updates source "$old" --repo "$work/repo" >/dev/null
"$ctl" updates install "$old" site --version 24.2.0 --accept-eula >/dev/null
echo "   site version 24.2.0 installed"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/ca.key" -out "$work/ca.pem" \
    -days 3650 -subj "/CN=Demo Site CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/site.key" -out "$work/site.csr" \
    -subj "/CN=site.demo.test" 2>/dev/null
printf 'subjectAltName=DNS:site.demo.test\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >"$work/site.ext"
openssl x509 -req -in "$work/site.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 365 \
    -extfile "$work/site.ext" -out "$work/site.pem" 2>/dev/null
cat "$work/site.pem" "$work/ca.pem" "$work/site.key" >"$work/site-bundle.pem"
"$ctl" cert import "$old" --name site --pem "$work/site-bundle.pem" >/dev/null
id=$("$ctl" cert list "$old" --json | python3 -c 'import json,sys; print([c["id"] for c in json.load(sys.stdin) if c["name"]=="site"][0])')
"$ctl" cert assign "$old" "$id" --on 127.0.0.11 >/dev/null
# Served from the next handshake: wait until the box presents the CA-issued certificate.
served=""
for _ in $(seq 1 100); do
    served=$(openssl s_client -connect "$old" </dev/null 2>/dev/null | openssl x509 -noout -issuer 2>/dev/null || true)
    case "$served" in *"Demo Site CA"*) break ;; esac
    sleep 0.1
done
case "$served" in *"Demo Site CA"*) ;; *) echo "$old never served the assigned certificate" >&2; exit 1 ;; esac
"$ctl" pin "$old" --reset >/dev/null
"$ctl" status "$old" >/dev/null
echo "   CA-issued certificate for site.demo.test assigned; key pinned again"
setsid socat "TCP-LISTEN:8443,bind=127.0.0.12,reuseaddr,fork" "TCP:127.0.0.11:8443" </dev/null >/dev/null 2>&1 &
echo $! >"$CUTOVER_NAT_PIDFILE"
echo "== populate the old box with ${SIZE:-256MiB} of site data (history, file store, recordings)"
"$ctl" populate "$old" --size "${SIZE:-256MiB}" --seed 42

cat >"$work/inventory.yml" <<'YAML'
# The demo's inventory: the physical box and the virtual appliance it moves to.
hypervisors:
  local:
    pool: appliances
appliances:
  old-box:
    physical:
      address: 127.0.0.11:8443
    password: OLD_BOX_PASSWORD
  new-vm:
    virtual:
      hypervisor: local
      memory_mib: 1024     # restoring an encrypted backup needs scrypt's 256 MiB
    password: NEW_VM_PASSWORD
YAML
python3 - Playbooks/migrate-physical-to-virtual.yml "$work/migrate.yml" "$site" "$PWD/Playbooks/hooks" <<'PY'
import re, sys
source, target, site, hooks = sys.argv[1:5]
cutover = f"cutover:\n  method: hook\n  site_address: {site}\n  hook: bash {hooks}/loopback-nat-swing.sh\n"
text = re.sub(r"(?ms)^cutover:.*?(?=^\S)", cutover, open(source).read())
open(target, "w").write(text)
PY
grep -q "method: hook" "$work/migrate.yml"

echo "== a client of the site writes a history row and a file through $site every 100 ms (scripts/site-writer.py)"
export WRITER_PASSWORD_VARS="OLD_BOX_PASSWORD NEW_VM_PASSWORD"
python3 scripts/site-writer.py write --site "$site" --state "$work/writer.json" --stop "$work/writer.stop" &
writer=$!
pids+=($writer)
accepted() { python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["rows"]))' "$work/writer.json" 2>/dev/null || echo 0; }
wait_accepted() {
    for _ in $(seq 1 1200); do [ "$(accepted)" -ge "$1" ] && return 0; sleep 0.1; done
    echo "the site writer got fewer than $1 rows accepted within 120 s" >&2
    exit 1
}
wait_accepted 3

echo "== the plan (dry run)"
"$ctl" run "$work/migrate.yml" --inventory "$work/inventory.yml" --repository "$work/repo" --dry-run
echo "== migrate: appliancectl run migrate.yml"
# The VM has no network path to the repository directory: step 5 uploads the packages from it.
"$ctl" run "$work/migrate.yml" --inventory "$work/inventory.yml" --yes --accept-eula \
    --repository "$work/repo" --vendor-key "$work/vendor.pub"
"$ctl" runs
# The site answers from the VM now: the writer gets through to it, then stops and checks that the VM has every
# row and file the site accepted before, during and after the move.
wait_accepted $(($(accepted) + 2))
touch "$work/writer.stop"
wait "$writer"
python3 scripts/site-writer.py verify --site "$site" --state "$work/writer.json"
report=$(ls -d "$APPLIANCECTL_HOME"/runs/*/report.json | head -n 1)
cat "${report%.json}.md"
python3 - "$report" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
assert report["state"] == "finished", report["state"]
assert report["allMatched"] is True, "the report says not every item matched"
downtime = report.get("downtimeSeconds")
assert downtime is not None, "the report gives no downtime"
print(f"Report: {len(report['comparison'])} of {len(report['comparison'])} items matched; run {report['runId']} "
      f"finished; downtime {downtime:.2f} s")
PY
