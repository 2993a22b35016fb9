#!/usr/bin/env bash
# Builds the workspace in release mode and runs the benchmark: artemis-noop and the registry on
# the same cores, driven by the bundled load generator. Flags go to artemis-bench (see --help),
# e.g. bench/run.sh --populations 1000,100000 --json bench/results/small.json
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --workspace
exec "$target/release/artemis-bench" "$@"
