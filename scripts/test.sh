#!/usr/bin/env bash
# Set up (if needed) and run every check CI runs: lint, format, types, the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
venv="$(cd "${VIRTUAL_ENV:-${PROBEKIT_VENV:-.venv}}" && pwd)"
export PATH="$venv/bin:$PATH"
echo "== ruff"; ruff check probekit tests scripts bench
echo "== ruff format"; ruff format --check probekit tests scripts bench
echo "== mypy"; mypy
echo "== pytest"; python -m pytest -q "$@"
