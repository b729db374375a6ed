#!/usr/bin/env bash
# The whole migration (pre-flight, backup + proof, certificate, address, package, restore, transfer of file store
# and recordings, verification) of a box holding SIZE (default 1GiB: history + files + recordings) to a fresh box,
# both applianced processes (so no VM boot is counted), against the floor of moving the same data directory with
# `tar | openssl enc` and `openssl enc -d | tar x`, measured in the same run. Also the peak RSS of appliancectl.
#
# Then the live method (`method: live`) for each of LIVE_SIZES (default "256MiB 1GiB"), each on two fresh boxes:
# its total time against the same floor, and its downtime from the report (freeze → the old box serving again
# after the verification: the playbook has no cutover, so the inside of the freeze is the final sync and the
# verification; with a cutover the promotion and the address swing add to it).
#
#   Benchmarks/migrate.sh            SIZE=256MiB LIVE_SIZES=1GiB Benchmarks/migrate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
source scripts/release-build.sh
size="${SIZE:-1GiB}"
live_sizes="${LIVE_SIZES:-256MiB 1GiB}"

work="$(mktemp -d /tmp/appliance-bench.XXXXXX)"
export APPLIANCECTL_HOME="$work/ctl"
export OLD_PW="Bench-Old-Pass-1"
export NEW_PW="Bench-New-Pass-2"
export BACKUP_PW="Bench-Backup-Pass-3"
a="127.0.0.31:8443"
b="127.0.0.32:8443"
pids=()
trap 'kill ${pids[@]} 2>/dev/null || true; rm -rf "$work"' EXIT
now() { date +%s.%N; }

for box in "a $a" "b $b"; do
    set -- $box
    "$bin/applianced" --data-dir "$work/$1" --listen "$2" --log-level warning &
    pids+=($!)
    for _ in $(seq 1 200); do APPLIANCE_PASSWORD= "$bin/appliancectl" status "$2" >/dev/null 2>&1 && break; sleep 0.1; done
done
APPLIANCE_PASSWORD=$OLD_PW "$bin/appliancectl" first-login "$a" >/dev/null
echo "populating $a with $size …"
APPLIANCE_PASSWORD=$OLD_PW "$bin/appliancectl" populate "$a" --size "$size" --seed 1 >/dev/null
cat >"$work/inventory.yml" <<YAML
appliances:
  old-box:
    physical:
      address: $a
    password: OLD_PW
  new-box:
    physical:
      address: $b
    password: NEW_PW
YAML
cat >"$work/migrate.yml" <<'YAML'
playbook: migrate
old: old-box
new: new-box
method: backup-restore
backup:
  password: BACKUP_PW
YAML

t0=$(now)
/usr/bin/time -f "%M" -o "$work/rss" "$bin/appliancectl" run "$work/migrate.yml" --inventory "$work/inventory.yml" \
    --yes >"$work/run.log" 2>&1 || { cat "$work/run.log"; exit 1; }
t1=$(now)
migrate_s=$(echo "$t1 - $t0" | bc -l)
report=$(ls "$APPLIANCECTL_HOME"/runs/*/report.json)
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["allMatched"], "not every item matched"' "$report"

# The floor on the same bytes: the old box's whole data directory (site database, file store, recordings).
mkdir -p "$work/floor-out"
t0=$(now)
tar -cf - -C "$work" a | openssl enc -aes-256-ctr -pbkdf2 -pass env:BACKUP_PW >"$work/floor.enc"
t1=$(now)
openssl enc -d -aes-256-ctr -pbkdf2 -pass env:BACKUP_PW <"$work/floor.enc" | tar -xf - -C "$work/floor-out"
t2=$(now)
floor_s=$(echo "$t2 - $t0" | bc -l)

printf '\nold box holds %s; every verified item matched\n' "$(du -sh "$work/a" | cut -f1)"
printf '%-32s %9.2f s\n' "migration (appliancectl run)" "$migrate_s"
printf '%-32s %9.2f s  (enc %.2f + dec %.2f)\n' "floor: tar|openssl enc, dec|tar" "$floor_s" \
    "$(echo "$t1 - $t0" | bc -l)" "$(echo "$t2 - $t1" | bc -l)"
printf '%-32s %9.2f\n' "ratio" "$(echo "$migrate_s / $floor_s" | bc -l)"
printf '%-32s %9.1f MiB\n' "appliancectl peak RSS" "$(echo "$(cat "$work/rss") / 1024" | bc -l)"
grep -E "✔|bytesMoved" "$work/run.log" | sed 's/^/  /' || true

# The live method: fresh boxes per size, the old one populated, the same playbook with `method: live`.
floor() {  # the floor for data directory $1, in seconds
    local t0 t1
    rm -rf "$work/floor-out" "$work/floor.enc" && mkdir -p "$work/floor-out"
    t0=$(now)
    tar -cf - -C "$work" "$1" | openssl enc -aes-256-ctr -pbkdf2 -pass env:BACKUP_PW >"$work/floor.enc"
    openssl enc -d -aes-256-ctr -pbkdf2 -pass env:BACKUP_PW <"$work/floor.enc" | tar -xf - -C "$work/floor-out"
    t1=$(now)
    echo "$t1 - $t0" | bc -l
}
n=40
printf '\n%-10s %12s %12s %8s %12s\n' "live" "total" "floor" "ratio" "downtime"
for live_size in $live_sizes; do
    n=$((n + 2))
    la="127.0.0.$n:8443" lb="127.0.0.$((n + 1)):8443" home="$work/ctl-live-$n"
    for box in "l$n $la" "m$n $lb"; do
        set -- $box
        "$bin/applianced" --data-dir "$work/$1" --listen "$2" --log-level warning &
        pids+=($!)
        for _ in $(seq 1 200); do APPLIANCE_PASSWORD= "$bin/appliancectl" status "$2" >/dev/null 2>&1 && break; sleep 0.1; done
    done
    APPLIANCECTL_HOME=$home APPLIANCE_PASSWORD=$OLD_PW "$bin/appliancectl" first-login "$la" >/dev/null
    APPLIANCECTL_HOME=$home APPLIANCE_PASSWORD=$OLD_PW "$bin/appliancectl" populate "$la" --size "$live_size" --seed 1 \
        >/dev/null
    sed -e "s/$a/$la/" -e "s/$b/$lb/" "$work/inventory.yml" >"$work/inventory-$n.yml"
    sed -e 's/^method: backup-restore$/method: live/' "$work/migrate.yml" >"$work/migrate-$n.yml"
    t0=$(now)
    APPLIANCECTL_HOME=$home "$bin/appliancectl" run "$work/migrate-$n.yml" --inventory "$work/inventory-$n.yml" \
        --yes >"$work/run-$n.log" 2>&1 || { cat "$work/run-$n.log"; exit 1; }
    t1=$(now)
    total_s=$(echo "$t1 - $t0" | bc -l)
    downtime=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["allMatched"]; print(r["downtimeSeconds"])' \
        "$(ls "$home"/runs/*/report.json)")
    floor_live=$(floor "l$n")
    printf '%-10s %10.2f s %10.2f s %8.2f %10.2f s\n' "$live_size" "$total_s" "$floor_live" \
        "$(echo "$total_s / $floor_live" | bc -l)" "$downtime"
done
