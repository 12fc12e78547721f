#!/usr/bin/env bash
# Runs the replicator end to end on the local AWS emulator (see examples/local_demo.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-emulator.sh
cargo run --locked --example local_demo
