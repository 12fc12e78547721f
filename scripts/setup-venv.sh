#!/usr/bin/env bash
# Usage: scripts/setup-venv.sh DIR REQUIREMENTS
# Makes the Python virtual environment DIR with exactly the pinned REQUIREMENTS; does nothing when DIR already
# holds them (a stamp records the requirements' hash).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$1 req=$2
stamp="$dir/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x "$dir/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "installing $req into $dir" >&2
python3 -m venv "$dir"
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check --requirement "$req"
echo "$want" > "$stamp"
