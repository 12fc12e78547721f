#!/usr/bin/env bash
# Installs the local AWS emulator (moto[server], pinned with all its dependencies in
# scripts/requirements-emulator.txt) into .venv. Does nothing when it is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
req=scripts/requirements-emulator.txt
stamp=.venv/.requirements-emulator.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "installing the emulator (moto[server] 5.2.5) into .venv" >&2
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --requirement "$req"
echo "$want" > "$stamp"
