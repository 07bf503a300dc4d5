#!/usr/bin/env bash
# Replays the saved fuzz corpus (fuzz/corpus/<target>/) through every target without
# fuzzer instrumentation; fails when an input panics. What CI runs. Needs no AFL++.
#   fuzz/replay.sh                  # every target
#   fuzz/replay.sh engine [FILES]   # one target, over its corpus or the given files
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --quiet --release --manifest-path fuzz/Cargo.toml --bin replay -- "$@"
