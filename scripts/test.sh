#!/usr/bin/env bash
# Set up (if needed) and run every check CI runs: lint, format, types, the test suite.
# With --fast: only the unit tests, without the slow ones (a quick check while working).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
venv="$(cd "${VIRTUAL_ENV:-${PROBEKIT_VENV:-.venv}}" && pwd)"
export PATH="$venv/bin:$PATH"
if [[ "${1:-}" == "--fast" ]]; then
    shift
    echo "== pytest (unit, not slow)"; exec python -m pytest -q tests/unit -m "not slow" "$@"
fi
echo "== ruff"; ruff check probekit tests scripts bench
echo "== ruff format"; ruff format --check probekit tests scripts bench
echo "== mypy"; mypy
echo "== docs"; site="$(mktemp -d)"
NO_MKDOCS_2_WARNING=1 mkdocs build --strict --quiet --site-dir "$site"; rm -rf "$site"
echo "== pytest"; python -m pytest -q "$@"
