#!/usr/bin/env bash
# What the integration tier needs on this machine: a running Docker engine and mmdebstrap
# (DESIGN.md, tier 2). Installs them from Debian's packages and starts dockerd if needed.
# Without root or sudo it says so and leaves the tier to skip (CI requires it: .ci/run).
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

if [ "$(id -u)" != 0 ] && ! sudo -n true 2>/dev/null; then
  echo "testbed: no root or sudo: the integration tier will be skipped" >&2
  exit 0
fi
if ! command -v dockerd >/dev/null || ! command -v mmdebstrap >/dev/null; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq docker.io mmdebstrap >/dev/null
fi
# liblxc for tests/integration/test_lxc.py (the lxc topology's lines under real lxc-start):
# ~15 s to install here. Best effort: without it that file skips (fails under CI's
# RIG_REQUIRE_INTEGRATION=1, which then names what is missing).
if ! command -v lxc-start >/dev/null; then
  { as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq lxc >/dev/null; } \
    || echo "testbed: apt-get install lxc failed: tests/integration/test_lxc.py will skip" >&2
fi
if ! as_root docker info >/dev/null 2>&1; then
  if [ -d /run/systemd/system ]; then
    as_root systemctl start docker
  else
    as_root sh -c 'nohup dockerd >/var/log/ollama-rig-dockerd.log 2>&1 &'
  fi
  for _ in $(seq 60); do as_root docker info >/dev/null 2>&1 && break; sleep 1; done
  as_root docker info >/dev/null 2>&1 || { echo "testbed: dockerd did not start" >&2; exit 1; }
fi
