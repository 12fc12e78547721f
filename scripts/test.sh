#!/usr/bin/env bash
# The one test command: installs what it needs (pinned), then checks formatting and lints, lints the SAM
# template, builds the deployable zip, and runs every test: core over the simulator, adapters and end to
# end over the emulator, error mapping over aws-smithy-mocks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-emulator.sh
scripts/setup-tools.sh
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
for template in template.yaml target-account.yaml region-forwarder.yaml; do
  echo "== cfn-lint $template" && .tools/bin/cfn-lint "$template"
  echo "== checkov -f $template" && .tools/bin/checkov -f "$template" --quiet --compact --skip-download
  echo "== sam validate --lint $template" && SAM_CLI_TELEMETRY=0 .sam/bin/sam validate --lint --template "$template" --region us-east-1
done
.tools/bin/python scripts/check_dashboard.py
echo "== cargo lambda build --release (x86_64, the function's binary only: the status command is not deployed)"
PATH="$PWD/.tools/bin:$PATH" cargo lambda build --release --locked --bin ami-replicator --output-format zip
zip=target/lambda/ami-replicator/bootstrap.zip
echo "deployable zip: $zip, $(stat -c %s "$zip") bytes"
# Examples are built (and linted) above; running them as test targets would only add empty test lists.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --locked --lib --bins --tests 2>&1 | tee "$log"
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
