#!/usr/bin/env bash
# Sets up a fresh machine and runs the test suite: unit tests and tests that start real applianced processes
# on 127.x.y.z loopback addresses and talk to them over TLS; then the API contract check against docs/openapi.yaml
# (schemathesis, bounded to a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
swift build --build-tests
swift test --skip-build --no-parallel 2>&1 | tee .build/test-output.txt
bash scripts/api-contract.sh
