#!/usr/bin/env bash
# Set up (if needed) and run the demo on the embedded model; prints where the report is.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
venv="$(cd "${VIRTUAL_ENV:-${PROBEKIT_VENV:-.venv}}" && pwd)"
exec "$venv/bin/probekit" demo "$@"
