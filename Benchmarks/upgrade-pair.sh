#!/usr/bin/env bash
# The downtime of a failover pair upgrade (P7): `upgrade-failover-async.yml` (B first, then the site address swung
# to B) against `upgrade-failover-sync.yml` (A first, the site down while A installs and is verified), same data,
# same package, same run. Each mode gets a fresh pair of applianced processes at site 24.1.0 holding SIZE (default
# 64MiB) of site data, A primary and B its synced backup, and upgrades it to site 24.2.0: a package with a PAYLOAD
# (default 64MiB) payload and a post-install self-test that takes SELF_TEST seconds (default 3; a real box checks its
# services after an install, and a process box otherwise installs in well under a second).
#
# The downtime is measured twice: by the run itself (`downtimeSeconds` in its --json report: the site address
# probed every 100 ms, down while it does not answer health 200 or answers in maintenance) and independently by a
# probe in this script (python3, every 50 ms, the same rule). The site address is A's address in the sync mode, a
# shared address (127.0.0.45) A lets go of and B takes in the async mode.
#
#   Benchmarks/upgrade-pair.sh            SIZE=256MiB SELF_TEST=10 Benchmarks/upgrade-pair.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
source scripts/release-build.sh
size="${SIZE:-64MiB}"
payload="${PAYLOAD:-64MiB}"
self_test="${SELF_TEST:-3}"

work="$(mktemp -d /tmp/appliance-bench.XXXXXX)"
export APPLIANCECTL_HOME="$work/ctl"
export A_PW="Bench-Pair-A-Pass-1"
# One site, one set of users: the backup takes the primary's accounts with the first sync.
export B_PW="$A_PW"
export BACKUP_PW="Bench-Backup-Pass-3"
FAILOVER_KEY="$(openssl rand -hex 32)"
export FAILOVER_KEY
pids=()
trap 'kill ${pids[@]} 2>/dev/null || true; rm -rf "$work"' EXIT
now() { date +%s.%N; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

ctl="$bin/appliancectl"
"$ctl" vendor keygen --out "$work/vendor" >/dev/null
head -c "$(numfmt --from=iec "${payload%iB}")" /dev/urandom >"$work/payload"
echo "Benchmark EULA." >"$work/eula.txt"
"$ctl" vendor build --key "$work/vendor.key" --name site --kind site --version 24.2.0 --eula "$work/eula.txt" \
    --payload "$work/payload" --self-test "sleep $self_test" --self-test-timeout $((self_test + 60)) \
    --out "$work/site-24.2.0.pkg" >/dev/null
"$ctl" vendor repo-add --repo "$work/repo" "$work/site-24.2.0.pkg" >/dev/null

start_box() { # data-dir address
    "$bin/applianced" --data-dir "$1" --listen "$2" --vendor-key "$work/vendor.pub" --log-level warning &
    pids+=($!)
    for _ in $(seq 1 200); do APPLIANCE_PASSWORD= "$ctl" status "$2" >/dev/null 2>&1 && return; sleep 0.1; done
    echo "box $2 did not start" >&2
    exit 1
}

# Probes https://SITE/health every 50 ms until STOP exists; prints the seconds the site was down.
probe() { # site stop-file
    python3 - "$1" "$2" <<'PY'
import http.client, json, os, ssl, sys, time
site, stop = sys.argv[1], sys.argv[2]
host, port = site.rsplit(":", 1)
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
def up():
    try:
        connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=2)
        connection.request("GET", "/health")
        response = connection.getresponse()
        body = json.loads(response.read() or b"{}")
        connection.close()
        return response.status == 200 and body.get("status") != "maintenance"
    except Exception:
        return False
down, since = 0.0, None
while not os.path.exists(stop):
    t = time.monotonic()
    if up():
        if since is not None:
            down += t - since
            since = None
    elif since is None:
        since = t
    time.sleep(max(0.0, 0.05 - (time.monotonic() - t)))
if since is not None:
    down += time.monotonic() - since
print(f"{down:.2f}")
PY
}

declare -A run_s report_s probe_s
for mode in sync async; do
    if [ "$mode" = sync ]; then a=127.0.0.41:8443 b=127.0.0.42:8443; else a=127.0.0.43:8443 b=127.0.0.44:8443; fi
    start_box "$work/$mode-a" "$a"
    start_box "$work/$mode-b" "$b"
    APPLIANCE_PASSWORD=$A_PW "$ctl" first-login "$a" >/dev/null
    APPLIANCE_PASSWORD=$B_PW "$ctl" first-login "$b" >/dev/null
    APPLIANCE_PASSWORD=$A_PW "$ctl" failover key set "$a" >/dev/null
    APPLIANCE_PASSWORD=$B_PW "$ctl" failover key set "$b" >/dev/null
    echo "$mode: populating $a with $size …"
    APPLIANCE_PASSWORD=$A_PW "$ctl" populate "$a" --size "$size" --seed 1 >/dev/null
    site=$a
    cutover=""
    if [ "$mode" = async ]; then
        site=127.0.0.45:8443
        token=$(printf '{"username":"admin","password":"%s"}' "$A_PW" |
            curl -ksf -H 'Content-Type: application/json' -d @- "https://$a/api/session" | field token)
        printf 'header = "Authorization: Bearer %s"\n' "$token" >"$work/curl.conf"
        chmod 600 "$work/curl.conf"
        curl -ksf -o /dev/null -K "$work/curl.conf" -H 'Content-Type: application/json' \
            -d '{"enabled":true,"port":"eth0","address":"127.0.0.45","subnetMask":"255.0.0.0","access":"both"}' \
            "https://$a/appliance/api/network/addresses"
        cutover=$'cutover:\n  method: shared-ip\n  site_address: '"$site"$'\n'
    fi
    APPLIANCE_PASSWORD=$A_PW "$ctl" failover establish "$a" --backup "$b" --reverse "$a" --first-sync-delay 3600 \
        --interval 3600 >/dev/null
    [ "$(APPLIANCE_PASSWORD=$B_PW "$ctl" failover sync "$b" --wait --json | field result)" = ok ]
    cat >"$work/$mode-inventory.yml" <<YAML
appliances:
  site-a:
    physical:
      address: $a
    password: A_PW
  site-b:
    physical:
      address: $b
    password: B_PW
YAML
    cat >"$work/$mode.yml" <<YAML
playbook: upgrade-failover
mode: $mode
a: site-a
b: site-b
target: 24.2.0
packages:
  repository: $work/repo
backup:
  password: BACKUP_PW
${cutover}rollback: automatic
YAML
    rm -f "$work/$mode.stop"
    probe "$site" "$work/$mode.stop" >"$work/$mode.probe" &
    prober=$!
    t0=$(now)
    "$ctl" run "$work/$mode.yml" --inventory "$work/$mode-inventory.yml" --yes --accept-eula --json \
        >"$work/$mode.json"
    t1=$(now)
    touch "$work/$mode.stop"
    wait "$prober"
    [ "$(field state <"$work/$mode.json")" = finished ] || { echo "$mode: the run did not finish" >&2; exit 1; }
    run_s[$mode]=$(echo "$t1 - $t0" | bc -l)
    report_s[$mode]=$(field downtimeSeconds <"$work/$mode.json")
    probe_s[$mode]=$(cat "$work/$mode.probe")
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    pids=()
done

printf '\npair upgrade 24.1.0 → 24.2.0, %s of site data, a %s package whose self-test takes %s s\n' \
    "$size" "$payload" "$self_test"
printf '%-8s %12s %22s %22s\n' "mode" "run (s)" "downtime, report (s)" "downtime, probe (s)"
for mode in sync async; do
    printf '%-8s %12.2f %22.2f %22.2f\n' "$mode" "${run_s[$mode]}" "${report_s[$mode]}" "${probe_s[$mode]}"
done
printf 'async/sync downtime ratio: %.3f (report), %.3f (probe)\n' \
    "$(echo "${report_s[async]} / ${report_s[sync]}" | bc -l)" \
    "$(echo "${probe_s[async]} / ${probe_s[sync]}" | bc -l)"
