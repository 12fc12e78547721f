#!/usr/bin/env bash
# Installs the deployment checks (cfn-lint, checkov) and cargo-lambda, pinned with all their dependencies in
# scripts/requirements-tools.txt, into .tools. Does nothing when they are already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
req=scripts/requirements-tools.txt
stamp=.tools/.requirements-tools.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x .tools/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "installing cfn-lint, checkov and cargo-lambda into .tools" >&2
python3 -m venv .tools
.tools/bin/python -m pip install --quiet --disable-pip-version-check --requirement "$req"
echo "$want" > "$stamp"
