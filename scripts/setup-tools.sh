#!/usr/bin/env bash
# Installs the deployment checks (cfn-lint, checkov) and cargo-lambda, pinned with all their dependencies,
# into .tools.
exec "$(dirname "$0")/setup-venv.sh" .tools scripts/requirements-tools.txt
