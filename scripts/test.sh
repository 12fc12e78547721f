#!/usr/bin/env bash
# The one test command: installs what it needs (pinned), then checks formatting and lints, lints the SAM
# template, builds the deployable zip, and runs every test: core over the simulator, adapters and end to
# end over the emulator, error mapping over aws-smithy-mocks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-emulator.sh
scripts/setup-tools.sh
cargo fmt --check
# One debug build serves the lints and the tests: clippy-driver compiles the workspace's own crates (every target:
# the library, the binaries, the test crate, the examples), with every warning an error, while the dependencies are
# compiled once by rustc with their lints capped, as `cargo clippy` does; no separate check of the dependencies.
export RUSTC_WORKSPACE_WRAPPER="$(rustc --print sysroot)/bin/clippy-driver"
export RUSTFLAGS="${RUSTFLAGS:-} -D warnings"
echo "== build and lint (clippy-driver, -D warnings): the library, binaries, tests and examples"
cargo test --locked --lib --bins --tests --no-run
cargo build --locked --examples
for template in template.yaml target-account.yaml region-forwarder.yaml; do
  echo "== cfn-lint $template" && .tools/bin/cfn-lint "$template"
  echo "== checkov -f $template" && .tools/bin/checkov -f "$template" --quiet --compact --skip-download
  echo "== sam validate --lint $template" && SAM_CLI_TELEMETRY=0 .sam/bin/sam validate --lint --template "$template" --region us-east-1
done
.tools/bin/python scripts/check_dashboard.py
echo "== cargo lambda build --release (x86_64, the function's binary only: the status command is not deployed)"
# The deployable zip is built as users build it: plain rustc, the template's release profile.
env -u RUSTC_WORKSPACE_WRAPPER -u RUSTFLAGS PATH="$PWD/.tools/bin:$PATH" \
  cargo lambda build --release --locked --bin ami-replicator --output-format zip
zip=${CARGO_TARGET_DIR:-target}/lambda/ami-replicator/bootstrap.zip
echo "deployable zip: $zip, $(stat -c %s "$zip") bytes"
# Examples are built (and linted) above; running them as test targets would only add empty test lists.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --locked --lib --bins --tests 2>&1 | tee "$log"
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
