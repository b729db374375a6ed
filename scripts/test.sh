#!/usr/bin/env bash
# Sets up a fresh machine and runs the test suite: unit tests and tests that start real applianced processes
# on 127.x.y.z loopback addresses and talk to them over TLS.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
swift build --build-tests
swift test --skip-build --no-parallel 2>&1 | tee .build/test-output.txt
