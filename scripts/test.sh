#!/usr/bin/env bash
# The one test command: installs what the tests need (pinned), then checks formatting and lints, and runs
# every test: core over the simulator, adapters and end to end over the emulator, error mapping over
# aws-smithy-mocks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-emulator.sh
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --all-targets
