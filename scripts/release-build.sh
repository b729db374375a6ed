#!/usr/bin/env bash
# Sourced by the main job and the benchmarks after scripts/setup.sh: builds applianced and appliancectl in
# release mode and sets $bin to the directory that holds them.
swift build -c release --product applianced >/dev/null
swift build -c release --product appliancectl >/dev/null
bin="$(swift build -c release --show-bin-path)"
