#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian 12 machine: the C libraries it links (libvirt, OpenSSL 3,
# SQLite), pkg-config for the system library targets, the libvirt daemon and QEMU that virtual appliances run on,
# the host tools the image recipe uses (mke2fs/debugfs/resize2fs, qemu-img), and the tools the tests use to check
# our files with standard software (age, tar, openssl, sqlite3, curl, cpio),
# python3-venv for the schemathesis API contract check (scripts/api-contract.sh, from PyPI), and faketime (its
# libfaketime) to start a box whose clock is really ahead, for the offline upgrade's clock-skew refusal, and
# ImageMagick, which makes the JPEG photos the account photo tests parse.
set -euo pipefail
packages=(libvirt-dev libvirt-clients libxml2-utils libssl-dev libsqlite3-dev pkg-config age openssl sqlite3 tar procps bc
    libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86 qemu-utils e2fsprogs util-linux curl cpio socat python3 python3-venv time
    faketime imagemagick)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# The image recipe downloads the kernel and busybox with `apt-get download`, which needs package lists.
if [ ${#missing[@]} -gt 0 ] || ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
    $SUDO apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# pyotp (PyPI): an independent TOTP implementation the AccountRules tests check ours against (reported skipped
# where it cannot be installed).
python3 -c "import pyotp" 2>/dev/null || python3 -m pip install -q pyotp >/dev/null 2>&1 ||
    echo "pyotp could not be installed; the TOTP cross-check reports itself skipped" >&2
export PATH="/opt/swift/usr/bin:$PATH"
command -v swift >/dev/null || { echo "Swift 6.3 is needed (expected at /opt/swift)" >&2; exit 1; }
