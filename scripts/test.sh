#!/usr/bin/env bash
# Set up (if needed) and run every check CI runs: lint, format, types, the extension's TypeScript
# checks, the test suite (with the real-browser tests when Chromium is there).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
venv="$(cd "${VIRTUAL_ENV:-${PROBEKIT_VENV:-.venv}}" && pwd)"
export PATH="$venv/bin:$PATH"
echo "== ruff"; ruff check probekit tests scripts bench
echo "== ruff format"; ruff format --check probekit tests scripts bench
echo "== mypy"; mypy
echo "== labextension: tsc --strict, eslint, vitest"
(cd labextension && jlpm typecheck && jlpm lint && jlpm test)
# The browser tests drive Debian's Chromium; install it where we can (as root), else they skip.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing Debian's Chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "== no /usr/bin/chromium and not root: the browser tests will skip" \
      "(install Debian's chromium to run them)"
  fi
fi
echo "== pytest"; python -m pytest -q "$@"
