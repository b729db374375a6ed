#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian 12 machine: the C libraries it links (libvirt, OpenSSL 3,
# SQLite), pkg-config for the system library targets, and the tools the tests use to check our files with
# standard software (age, tar, openssl, sqlite3).
set -euo pipefail
packages=(libvirt-dev libvirt-clients libxml2-utils libssl-dev libsqlite3-dev pkg-config age openssl sqlite3 tar procps bc)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export PATH="/opt/swift/usr/bin:$PATH"
command -v swift >/dev/null || { echo "Swift 6.3 is needed (expected at /opt/swift)" >&2; exit 1; }
