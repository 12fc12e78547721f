#!/usr/bin/env bash
# Installs the local AWS emulator (moto[server] 5.2.5, pinned with all its dependencies) into .venv.
exec "$(dirname "$0")/setup-venv.sh" .venv scripts/requirements-emulator.txt
