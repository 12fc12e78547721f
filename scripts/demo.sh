#!/usr/bin/env bash
# Runs the replicator end to end on the local AWS emulator (see examples/local_demo.rs) and tells what happened:
# the copies, their tags and launch permissions, and what the status command answers.
# The function's own output (log lines and EMF metrics, as it writes them in Lambda) goes to a file named at the
# end; `scripts/demo.sh --verbose` shows it inline instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-emulator.sh
cargo build --quiet --locked --example local_demo
if [ "${1:-}" = "--verbose" ]; then
  exec cargo run --quiet --locked --example local_demo
fi
mkdir -p target/demo
log=target/demo/function-output.log
status=0
cargo run --quiet --locked --example local_demo >"$log" || status=$?
echo
echo "The function's log lines and metrics (EMF): $log"
exit "$status"
