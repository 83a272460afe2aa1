#!/usr/bin/env bash
# What the harness_check tier needs (tests/unit/test_harness_checks.py): each harness's own
# code, to check ollama-rig's configs offline. npm packages pinned in
# tests/harness_checks/package-lock.json (into its node_modules/), and Aider in a virtualenv of
# its own, build/aider-venv (never .venv: ~690 MB). Each is reinstalled only when its pin changed.
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKS=tests/harness_checks
VENV=build/aider-venv

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
apt_install() {
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

node_packages() {
  local stamp="$CHECKS/node_modules/.rig-installed"
  if [ ! -f "$stamp" ] || [ "$CHECKS/package-lock.json" -nt "$stamp" ]; then
    (cd "$CHECKS" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$stamp"
  fi
}

# Aider supports Python 3.10-3.12.
aider_python() {
  for py in python3.12 python3.11 python3.10 python3; do
    if command -v "$py" >/dev/null &&
      "$py" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))' 2>/dev/null; then
      echo "$py"
      return
    fi
  done
  echo "harness checks: Aider needs Python 3.10-3.12, none found" >&2
  return 1
}

aider_venv() {
  local stamp="$VENV/.rig-installed"
  if [ ! -f "$stamp" ] || [ "$CHECKS/aider-requirements.txt" -nt "$stamp" ]; then
    local py
    py=$(aider_python)
    rm -rf "$VENV"
    "$py" -m venv "$VENV" 2>/dev/null || { rm -rf "$VENV"; apt_install python3-venv; "$py" -m venv "$VENV"; }
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$CHECKS/aider-requirements.txt"
    touch "$stamp"
  fi
}

command -v npm >/dev/null || apt_install nodejs npm
mkdir -p build
# The two installs are independent: run them side by side.
node_packages &
node_pid=$!
aider_venv
wait "$node_pid"
echo "harness checks: OpenCode, Continue, Cline (npm) and Aider ready in ${SECONDS}s"
