#!/usr/bin/env bash
# Installs the deployment checks (cfn-lint, checkov) and cargo-lambda, pinned with all their dependencies,
# into .tools; and AWS SAM CLI (sam validate --lint), pinned, into .sam (its own cfn-lint pin differs).
set -euo pipefail
"$(dirname "$0")/setup-venv.sh" .tools scripts/requirements-tools.txt
"$(dirname "$0")/setup-venv.sh" .sam scripts/requirements-sam.txt
