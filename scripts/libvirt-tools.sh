#!/usr/bin/env bash
# libvirt's own validators for the KVM topology's domain template (tests/unit/test_kvm_vm.py):
# virt-xml-validate (libvirt-clients + libxml2-utils), the test:///default driver
# (libvirt-daemon) and libvirt-python, which builds from source against libvirt-dev.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

if ! command -v virt-xml-validate >/dev/null || ! command -v xmllint >/dev/null ||
  ! pkg-config --exists libvirt 2>/dev/null; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq \
    libvirt-clients libvirt-daemon libvirt-dev pkg-config libxml2-utils >/dev/null
fi
# Not in requirements-test.txt: without libvirt-dev its build fails, and `./rig test` must work
# on any machine (the libvirt tests then skip and say why; CI requires them).
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check libvirt-python==12.8.0
