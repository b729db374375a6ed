#!/usr/bin/env bash
# Provision-to-ready time of a virtual appliance next to the boot time of the bare kernel + busybox image, on the
# same machine, in the same run (issue 4). Both boot the same kernel the same way: libvirt direct kernel boot,
# the same domain type (TCG here: KVM does not work on this machine), 256 MiB, QEMU user networking with a
# loopback port forward.
#
#   bare boot      virsh start -> the guest's busybox httpd answers "bare ok" on the forwarded port
#   start->ready   virDomainCreate -> applianced's TLS /health answers with the id the VM was created with
#   provision      `appliancectl provision NAME` end to end: image cache check, volume over the image, domain,
#                  start, readiness, first login (password change), inventory write-back
#
# Prints medians over RUNS (default 3) and the ratios, plus peak memory: appliancectl's peak RSS, and the QEMU
# process's peak RSS (VmHWM) for the appliance and for the bare guest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
RUNS=${RUNS:-3}
swift build --product applianced >/dev/null
swift build --product appliancectl >/dev/null
BIN=$(swift build --show-bin-path)
WORK=$(mktemp -d /tmp/provision-bench.XXXXXX)
chmod 755 "$WORK"
export APPLIANCECTL_HOME=$WORK/state APPLIANCECTL_LIBVIRT_HOME=$WORK/libvirt BENCH_PASSWORD=Bench-Password-42
A="$BIN/appliancectl"
URI="qemu+unix:///session?socket=$APPLIANCECTL_LIBVIRT_HOME/run/libvirt/libvirt-sock"
cleanup() {
    for d in $(virsh -c "$URI" list --all --name 2>/dev/null); do
        virsh -c "$URI" destroy "$d" >/dev/null 2>&1 || true
        virsh -c "$URI" undefine "$d" >/dev/null 2>&1 || true
    done
    "$A" session stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/inventory.yml" <<YAML
hypervisors:
  local:
    pool: appliances
appliances:
$(for i in $(seq 1 "$RUNS"); do printf '  bench-%s:\n    virtual:\n      hypervisor: local\n      memory_mib: 256\n    password: BENCH_PASSWORD\n' "$i"; done)
YAML

echo "== image"
"$A" image build --json >"$WORK/image.json" 2>/dev/null
IMAGE_DIR=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["directory"])' "$WORK/image.json" | sed 's|^file://||')
chmod -R a+rX "$APPLIANCECTL_HOME"
# The first provision uploads the image into the pool; it is measured apart (cold) from the others (warm).
qemu_hwm() { # peak RSS (KiB) of the QEMU process of domain $1
    local pid
    pid=$(pgrep -f "guest=$1," | head -1)
    [ -n "$pid" ] && awk '/VmHWM/ {print $2}' "/proc/$pid/status" || echo 0
}
declare -a PROVISION READY CTL_RSS QEMU_RSS BARE BARE_RSS
for i in $(seq 1 "$RUNS"); do
    /usr/bin/time -f "%M" -o "$WORK/time.$i" "$A" provision "bench-$i" --inventory "$WORK/inventory.yml" --json \
        >"$WORK/result.$i" 2>"$WORK/provision.$i.log"
    read -r total ready < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["totalSeconds"], r["startToReadySeconds"])' "$WORK/result.$i")
    PROVISION+=("$total")
    READY+=("$ready")
    CTL_RSS+=("$(cat "$WORK/time.$i")")
    QEMU_RSS+=("$(qemu_hwm "bench-$i")")
    echo "provision bench-$i: ${total} s (start->ready ${ready} s)$( [ "$i" = 1 ] && echo ', includes uploading the image into the pool')"
    "$A" destroy "bench-$i" --inventory "$WORK/inventory.yml" >/dev/null
done

POOL=$APPLIANCECTL_LIBVIRT_HOME/pool/appliances
KERNEL=$(ls "$POOL"/appliance-image-*-vmlinuz)
BARE_INITRD=$POOL/bare-initrd.img
cp "$IMAGE_DIR/bare-initrd.img" "$BARE_INITRD"
chown 65534:65534 "$BARE_INITRD" 2>/dev/null || true
for i in $(seq 1 "$RUNS"); do
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cat >"$WORK/bare.xml" <<XML
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>bare-$i</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><kernel>$KERNEL</kernel><initrd>$BARE_INITRD</initrd>
    <cmdline>console=ttyS0 panic=-1 quiet</cmdline></os>
  <features><acpi/><tcg><tb-cache unit='MiB'>32</tb-cache></tcg></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <serial type='file'><source path='$POOL/bare-$i.log'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-netdev'/><qemu:arg value='user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$PORT-:80'/>
    <qemu:arg value='-device'/><qemu:arg value='virtio-net-pci,netdev=n0,bus=pcie.0,addr=0x10'/>
  </qemu:commandline>
</domain>
XML
    virsh -c "$URI" define "$WORK/bare.xml" >/dev/null
    start=$(date +%s.%N)
    virsh -c "$URI" start "bare-$i" >/dev/null
    until curl -sf --max-time 1 "http://127.0.0.1:$PORT/" 2>/dev/null | grep -q "bare ok"; do sleep 0.1; done
    end=$(date +%s.%N)
    BARE+=("$(echo "$end - $start" | bc)")
    BARE_RSS+=("$(qemu_hwm "bare-$i")")
    echo "bare boot $i: ${BARE[-1]} s"
    virsh -c "$URI" destroy "bare-$i" >/dev/null
    virsh -c "$URI" undefine "bare-$i" >/dev/null
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
WARM=("${PROVISION[@]:1}")
[ ${#WARM[@]} -gt 0 ] || WARM=("${PROVISION[@]}")
P=$(median "${WARM[@]}")
R=$(median "${READY[@]}")
B=$(median "${BARE[@]}")
echo
echo "== results (medians; domain type: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["domainType"])' "$WORK/result.1"))"
printf 'bare kernel + busybox boot      %6.2f s\n' "$B"
printf 'appliance start -> ready        %6.2f s   ratio %.2fx\n' "$R" "$(echo "$R / $B" | bc -l)"
printf 'provision -> ready (warm pool)  %6.2f s   ratio %.2fx\n' "$P" "$(echo "$P / $B" | bc -l)"
printf 'provision -> ready (first run)  %6.2f s   (uploads the image into the pool)\n' "${PROVISION[0]}"
printf 'peak RSS appliancectl           %6.1f MiB\n' "$(echo "$(median "${CTL_RSS[@]}") / 1024" | bc -l)"
printf 'peak RSS QEMU, appliance        %6.1f MiB\n' "$(echo "$(median "${QEMU_RSS[@]}") / 1024" | bc -l)"
printf 'peak RSS QEMU, bare             %6.1f MiB\n' "$(echo "$(median "${BARE_RSS[@]}") / 1024" | bc -l)"
