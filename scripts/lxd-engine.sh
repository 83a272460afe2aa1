#!/usr/bin/env bash
# What tests/integration/test_lxd.py needs on this machine: a running LXD (Debian 12's lxd
# 5.0.2) with a `dir` storage pool, no network, and the test image (an mmdebstrap'd bookworm
# rootfs, imported once). Idempotent: each step only when missing. Without root or sudo it says
# so and leaves test_lxd.py to skip (CI requires it: .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
# TEST FIXTURE: LXD refuses nvidia.runtime=true unless nvidia-container-cli is on its PATH
# (lxd/instance/drivers/driver_lxc.go: "The NVIDIA container tools couldn't be found"). This
# machine has no GPU: a stand-in that fails if ever run goes on the PATH of the lxd started here.
STANDIN=/var/lib/ollama-rig-lxd/bin

if [ "$(id -u)" != 0 ] && ! sudo -n true 2>/dev/null; then
  echo "lxd-engine: no root or sudo: tests/integration/test_lxd.py will be skipped" >&2
  exit 0
fi
if ! command -v lxd >/dev/null || ! command -v mmdebstrap >/dev/null; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq lxd mmdebstrap >/dev/null
fi
if ! as_root lxc query /1.0 >/dev/null 2>&1; then
  if [ -d /run/systemd/system ]; then
    as_root systemctl start lxd
  else
    if ! command -v nvidia-container-cli >/dev/null; then
      as_root mkdir -p "$STANDIN"
      printf '#!/bin/sh\n# TEST FIXTURE (scripts/lxd-engine.sh): no GPU on this machine\necho "nvidia-container-cli stand-in: no NVIDIA driver here" >&2\nexit 1\n' \
        | as_root tee "$STANDIN/nvidia-container-cli" >/dev/null
      as_root chmod 0755 "$STANDIN/nvidia-container-cli"
    fi
    as_root env PATH="$STANDIN:$PATH" sh -c 'nohup lxd --group root >/var/log/ollama-rig-lxd.log 2>&1 &'
  fi
  as_root lxd waitready --timeout 60 || { echo "lxd-engine: lxd did not start" >&2; exit 1; }
fi
if ! as_root lxc storage show default >/dev/null 2>&1; then
  as_root lxd init --preseed <<'EOF'
config: {}
storage_pools:
- name: default
  driver: dir
profiles:
- name: default
  devices:
    root:
      path: /
      pool: default
      type: disk
EOF
fi
# The image: the rootfs tests/integration/lxc_host.py builds (cached in build/), imported once.
python=.venv/bin/python
[ -x "$python" ] || python=python3
as_root "$python" -m tests.integration.lxd_host image
