#!/usr/bin/env bash
# Set up a Python environment for probekit: a venv (unless one is active), a torch that fits the
# machine (kept if one is already installed), then probekit with its test/dev extras, then the
# JupyterLab extension (labextension/, built with jlpm and linked into the venv's JupyterLab).
# Safe to run again: it only reinstalls when pyproject.toml changed and only rebuilds the
# extension when its sources, package.json or yarn.lock changed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${VIRTUAL_ENV:-}" ]; then
  venv="$VIRTUAL_ENV"
else
  venv="${PROBEKIT_VENV:-.venv}"
  if [ ! -x "$venv/bin/python" ]; then
    echo "probekit setup: creating a virtual environment in $venv"
    "${PYTHON:-python3}" -m venv "$venv"
  fi
fi
venv="$(cd "$venv" && pwd)"  # absolute: later steps run from other folders
py="$venv/bin/python"
"$py" - <<'PYCHECK'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"probekit needs Python >= 3.11, this is {sys.version.split()[0]}; set PYTHON=python3.11")
PYCHECK

pip_install() { "$py" -m pip install --quiet --disable-pip-version-check --no-input "$@"; }

# The JupyterLab extension: rebuilt only when its inputs changed (a stamp of their hash), then
# linked so that the venv's JupyterLab loads this checkout's build (as for any dev install).
build_extension() {
  local ext_stamp="labextension/.build-stamp" ext_want link
  ext_want="$(cd labextension && find package.json yarn.lock .yarnrc.yml tsconfig.json install.json \
    src style ../probekit/results/schema -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
  if [ ! -f probekit/labextension/static/style.js ] || [ ! -d labextension/node_modules ] \
     || [ ! -f "$ext_stamp" ] || [ "$(cat "$ext_stamp")" != "$ext_want" ]; then
    command -v node >/dev/null || {
      echo "probekit setup: Node.js (>= 20) is needed to build the JupyterLab extension" >&2
      exit 1
    }
    echo "probekit setup: building the JupyterLab extension (jlpm install + build)"
    (export PATH="$venv/bin:$PATH"; cd labextension && jlpm install && jlpm build:prod)
    echo "$ext_want" > "$ext_stamp"
  fi
  link="$venv/share/jupyter/labextensions/probekit"
  if [ "$(readlink "$link" 2>/dev/null || true)" != "$PWD/probekit/labextension" ]; then
    PATH="$venv/bin:$PATH" "$venv/bin/jupyter-builder" develop --overwrite . >/dev/null
  fi
}

stamp="$venv/.probekit-setup"
want="$(sha256sum pyproject.toml | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$py" -c "import probekit, torch" 2>/dev/null; then
  build_extension
  exit 0
fi

if "$py" -c "import torch" 2>/dev/null; then
  echo "probekit setup: keeping the installed torch $("$py" -c 'import torch; print(torch.__version__)')"
else
  # Never pull a multi-GB CUDA build onto a machine without a GPU.
  local_cpu_wheel=""
  for dir in ${PIP_FIND_LINKS:-} $("$py" -m pip config get global.find-links 2>/dev/null || true); do
    [ -d "$dir" ] || continue
    local_cpu_wheel="$(ls "$dir"/torch-*+cpu-cp3*.whl 2>/dev/null | sort -V | tail -n 1 || true)"
    [ -n "$local_cpu_wheel" ] && break
  done
  if [ -n "$local_cpu_wheel" ]; then
    echo "probekit setup: installing the CPU torch wheel found on disk: $(basename "$local_cpu_wheel")"
    pip_install "$local_cpu_wheel"
  elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "probekit setup: GPU found; installing torch with CUDA support"
    pip_install "torch>=2.6"
  elif [ "$(uname -s)" = "Linux" ]; then
    echo "probekit setup: no GPU; installing the CPU build of torch"
    pip_install "torch>=2.6" --index-url https://download.pytorch.org/whl/cpu
  else
    pip_install "torch>=2.6"
  fi
fi

echo "probekit setup: installing probekit and its test tools into $venv"
# The editable build leaves the extension to build_extension (which rebuilds only when stale).
SKIP_JUPYTER_BUILDER=1 pip_install -e ".[dev]"
echo "$want" > "$stamp"
build_extension
