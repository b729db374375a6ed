#!/usr/bin/env bash
# Failover sync (A7) of a box holding SIZE (default 1GiB) of site data, measured in one run:
#   1. the initial sync to a fresh backup, against the floor of copying the same data directory with
#      `tar | openssl enc -aes-256-ctr -pbkdf2` and `openssl enc -d | tar x` (both timed, summed);
#   2. after appending 1,000 history rows and one 64 MiB recording on the primary: the incremental sync's
#      time and the bytes it moved, against the bytes added;
#   3. an idle sync (nothing changed): its time and bytes.
#
#   Benchmarks/failover.sh            SIZE=256MiB Benchmarks/failover.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
source scripts/release-build.sh
size="${SIZE:-1GiB}"

work="$(mktemp -d /tmp/appliance-bench.XXXXXX)"
export APPLIANCECTL_HOME="$work/ctl"
export APPLIANCE_PASSWORD="Bench-Operator-Pass-1"
FAILOVER_KEY="$(openssl rand -hex 32)"
export FAILOVER_KEY
export FLOOR_PASSWORD="Bench-Floor-Pass-1"
a="127.0.0.31:8443"
b="127.0.0.32:8443"
pids=()
trap 'kill ${pids[@]} 2>/dev/null || true; rm -rf "$work"' EXIT

start_box() { # data-dir address
    "$bin/applianced" --data-dir "$1" --listen "$2" --log-level warning &
    pids+=($!)
    for _ in $(seq 1 200); do APPLIANCE_PASSWORD= "$bin/appliancectl" status "$2" >/dev/null 2>&1 && return; sleep 0.1; done
    echo "box $2 did not start" >&2
    exit 1
}
now() { date +%s.%N; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
sync_wait() { # prints the sync record (JSON); fails unless the sync succeeded
    local record
    record=$("$bin/appliancectl" failover sync "$b" --wait --json)
    [ "$(echo "$record" | field result)" = ok ] || { echo "sync failed: $record" >&2; exit 1; }
    echo "$record"
}

start_box "$work/a" "$a"
start_box "$work/b" "$b"
for box in "$a" "$b"; do
    "$bin/appliancectl" first-login "$box" >/dev/null
    "$bin/appliancectl" failover key set "$box" >/dev/null
done
echo "populating $a with $size …"
"$bin/appliancectl" populate "$a" --size "$size" --seed 1 >/dev/null
data_bytes=$(du -sb "$work/a" | cut -f1)

# The floor: the whole data directory, encrypted and decrypted (what a copy of it to another box costs here).
mkdir -p "$work/floor-out"
t0=$(now)
tar -cf - -C "$work/a" . | openssl enc -aes-256-ctr -pbkdf2 -pass env:FLOOR_PASSWORD >"$work/floor.enc"
t1=$(now)
openssl enc -d -aes-256-ctr -pbkdf2 -pass env:FLOOR_PASSWORD <"$work/floor.enc" | tar -xf - -C "$work/floor-out"
t2=$(now)
floor_s=$(echo "$t2 - $t0" | bc -l)
rm -rf "$work/floor-out" "$work/floor.enc"

# 1. Establish (the scheduled first sync is an hour away, so the timed one below is the first) and sync.
"$bin/appliancectl" failover establish "$a" --backup "$b" --reverse "$a" --first-sync-delay 3600 \
    --interval 3600 >/dev/null
t0=$(now)
initial=$(sync_wait)
t1=$(now)
initial_s=$(echo "$t1 - $t0" | bc -l)
initial_bytes=$(echo "$initial" | field bytes)

# 2. 1,000 history rows and one 64 MiB recording on the primary, through its API.
token=$(printf '{"username":"admin","password":"%s"}' "$APPLIANCE_PASSWORD" |
    curl -ksf -H 'Content-Type: application/json' -d @- "https://$a/api/session" | field token)
python3 - "$work/rows.json" <<'PY'
import json, sys, datetime
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
rows = [{"sessionId": f"bench-{i}", "username": "bench", "target": "srv-1", "proto": "ssh", "startedAt": now,
         "endedAt": now, "bytesTransferred": i, "summary": f"benchmark session {i}"} for i in range(1000)]
json.dump({"rows": rows}, open(sys.argv[1], "w"))
PY
head -c $((64 * 1024 * 1024)) /dev/urandom >"$work/recording.bin"
printf 'header = "Authorization: Bearer %s"\n' "$token" >"$work/curl.conf"
chmod 600 "$work/curl.conf"
curl -ksf -o /dev/null -K "$work/curl.conf" -H 'Content-Type: application/json' --data-binary @"$work/rows.json" \
    "https://$a/login/api/history"
curl -ksf -o /dev/null -K "$work/curl.conf" -X PUT -H 'Content-Type: application/octet-stream' \
    --data-binary @"$work/recording.bin" "https://$a/appliance/api/recordings/bench.bin"
added_bytes=$(($(stat -c %s "$work/rows.json") + $(stat -c %s "$work/recording.bin")))
t0=$(now)
incremental=$(sync_wait)
t1=$(now)
incremental_s=$(echo "$t1 - $t0" | bc -l)
incremental_bytes=$(echo "$incremental" | field bytes)
incremental_rows=$(echo "$incremental" | field historyRows)

# 3. Nothing changed.
t0=$(now)
idle=$(sync_wait)
t1=$(now)
idle_s=$(echo "$t1 - $t0" | bc -l)
idle_bytes=$(echo "$idle" | field bytes)

printf '\nprimary data directory %d bytes (%s)\n' "$data_bytes" "$size"
printf '%-34s %9s %9s %7s %14s\n' "" "ours (s)" "floor (s)" "ratio" "bytes moved"
printf '%-34s %9.2f %9.2f %7.2f %14d\n' "initial sync" "$initial_s" "$floor_s" \
    "$(echo "$initial_s / $floor_s" | bc -l)" "$initial_bytes"
printf '%-34s %9.2f %9s %7s %14d\n' "incremental (1000 rows + 64 MiB)" "$incremental_s" "-" "-" "$incremental_bytes"
printf '%-34s %9.3f %9s %7s %14d\n' "idle sync" "$idle_s" "-" "-" "$idle_bytes"
printf 'incremental: %d rows, %d bytes moved for %d bytes added (ratio %.3f)\n' "$incremental_rows" \
    "$incremental_bytes" "$added_bytes" "$(echo "$incremental_bytes / $added_bytes" | bc -l)"
