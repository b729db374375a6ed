#!/usr/bin/env bash
# Backup and restore of a box holding SIZE (default 1GiB) of site data, against the floor of
# `tar | openssl enc -aes-256-ctr -pbkdf2` and its reverse on the same bytes, measured in the same run.
# Also prints the peak RSS of applianced during each (VmHWM of a process started just before the operation).
#
#   Benchmarks/backup-restore.sh            SIZE=256MiB Benchmarks/backup-restore.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
source scripts/release-build.sh
size="${SIZE:-1GiB}"

work="$(mktemp -d /tmp/appliance-bench.XXXXXX)"
export APPLIANCECTL_HOME="$work/ctl"
export APPLIANCE_PASSWORD="Bench-Operator-Pass-1"
export BACKUP_PASSWORD="Bench-Backup-Pass-1"
a="127.0.0.21:8443"
b="127.0.0.22:8443"
pids=()
trap 'kill ${pids[@]} 2>/dev/null || true' EXIT

start_box() { # data-dir address
    "$bin/applianced" --data-dir "$1" --listen "$2" --log-level warning &
    pids+=($!)
    last_pid=$!
    for _ in $(seq 1 200); do APPLIANCE_PASSWORD= "$bin/appliancectl" status "$2" >/dev/null 2>&1 && return; sleep 0.1; done
    echo "box $2 did not start" >&2; exit 1
}
stop_box() { kill "$1"; wait "$1" 2>/dev/null || true; }
peak_mib() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
now() { date +%s.%N; }

start_box "$work/a" "$a"; pid_a=$last_pid
"$bin/appliancectl" first-login "$a" >/dev/null
echo "populating $a with $size …"
"$bin/appliancectl" populate "$a" --size "$size" --seed 1
du -sh "$work/a"
stop_box "$pid_a"

# Backup, with a freshly started process so VmHWM covers the backup only.
start_box "$work/a" "$a"; pid_a=$last_pid
t0=$(now)
"$bin/appliancectl" backup "$a" --out "$work/site.backup"
t1=$(now)
backup_rss=$(peak_mib "$pid_a")
stop_box "$pid_a"
backup_s=$(echo "$t1 - $t0" | bc -l)

# Restore into a second, fresh box.
start_box "$work/b" "$b"; pid_b=$last_pid
"$bin/appliancectl" first-login "$b" >/dev/null
stop_box "$pid_b"
start_box "$work/b" "$b"; pid_b=$last_pid
t0=$(now)
"$bin/appliancectl" restore "$b" --file "$work/site.backup"
t1=$(now)
restore_rss=$(peak_mib "$pid_b")
stop_box "$pid_b"
restore_s=$(echo "$t1 - $t0" | bc -l)

# The floor on the same bytes: the site database and the files the backup selects (box stopped, so consistent).
names=$(sqlite3 "$work/a/site/site.sqlite" \
    "SELECT 'files/' || name FROM stored_file WHERE size < 204800 ORDER BY modifiedAt DESC, name LIMIT 50")
mkdir -p "$work/floor-out"
t0=$(now)
tar -cf - -C "$work/a/site" site.sqlite $names | openssl enc -aes-256-ctr -pbkdf2 -pass env:BACKUP_PASSWORD \
    >"$work/floor.enc"
t1=$(now)
openssl enc -d -aes-256-ctr -pbkdf2 -pass env:BACKUP_PASSWORD <"$work/floor.enc" | tar -xf - -C "$work/floor-out"
t2=$(now)
floor_backup_s=$(echo "$t1 - $t0" | bc -l)
floor_restore_s=$(echo "$t2 - $t1" | bc -l)

backup_bytes=$(stat -c %s "$work/site.backup")
floor_bytes=$(stat -c %s "$work/floor.enc")
printf '\nbox holds %s; backup file %d bytes (floor %d bytes)\n' "$(du -sh "$work/a" | cut -f1)" "$backup_bytes" "$floor_bytes"
printf '%-10s %9s %9s %7s %14s\n' "" "ours (s)" "floor (s)" "ratio" "applianced RSS"
printf '%-10s %9.2f %9.2f %7.2f %11s MiB\n' backup "$backup_s" "$floor_backup_s" \
    "$(echo "$backup_s / $floor_backup_s" | bc -l)" "$backup_rss"
printf '%-10s %9.2f %9.2f %7.2f %11s MiB\n' restore "$restore_s" "$floor_restore_s" \
    "$(echo "$restore_s / $floor_restore_s" | bc -l)" "$restore_rss"
rm -rf "$work"
