r"""ollama-rig doctor: why does `ollama ps` not say `100% GPU`?

It reads what a GPU box shows (nvidia-smi, `ollama ps`, the server log, /proc/cpuinfo, device
nodes, Docker and Proxmox config) and names each cause of a CPU fallback or CPU/GPU split as
a finding {cause, evidence, fix}: no GPU visible to the server (no driver, Docker without the
NVIDIA runtime or without --gpus, missing /dev/nvidia-uvm, LXC config majors, device nodes an
unprivileged container cannot open), a driver/library version mismatch (the container's libraries
against the host's module), a KVM host whose IOMMU is off, whose GPU's IOMMU group is shared or
whose GPU a host driver still holds, a VM CPU without AVX, Ollama or the driver too old for the
GPU's compute capability, the model too large for the free VRAM at its context (sized with
sizing/, with what would fit), other processes holding VRAM, and a context silently capped to
the trained one.

Run it live (read-only) on the hosts of an inventory:

    pyinfra inventory/home.py diagnose.py

or on captured outputs, for a box you cannot reach:

    python -m doctor --captured DIR [--json]

Capture on the box, one file per KIND in DIR (take what you can; each adds certainty):

    nvidia-smi --query-gpu=index,name,memory.total,memory.used,memory.free,driver_version,compute_cap --format=csv > nvidia-smi.txt 2>&1
    nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv > nvidia-smi-apps.txt 2>&1
    ollama ps > ollama-ps.txt 2>&1
    curl -s http://127.0.0.1:11434/api/ps > api-ps.json
    ollama -v > ollama-version.txt 2>&1
    journalctl -u ollama -b --no-pager -n 5000 > journal.txt 2>&1
    head -n 40 /proc/cpuinfo > cpuinfo.txt
    ls -l /dev/nvidia* > dev-nvidia.txt 2>&1
    cat /proc/devices > proc-devices.txt
    lspci -nnk > lspci.txt 2>&1
    for d in /sys/bus/pci/devices/*; do [ -r "$d/vendor" ] || continue; printf '%s %s %s %s\n' "${d##*/}" "$(cat "$d/vendor")" "$(cat "$d/device")" "$(cat "$d/class")"; done > pci-sysfs.txt
    docker info > docker-info.txt 2>&1
    cat /etc/docker/daemon.json > daemon-json.json
    docker exec ollama nvidia-smi > container-nvidia-smi.txt 2>&1
    cat /etc/pve/lxc/<id>.conf > pve-lxc-conf.txt
    cat /proc/driver/nvidia/version > nvidia-version.txt 2>&1
    ls -1 /usr/lib/*/libnvidia-ml.so.* /usr/lib*/libnvidia-ml.so.* /usr/local/lib/libnvidia-ml.so.* > nvidia-libs.txt 2>&1
    { [ -n "$(ls -A /sys/kernel/iommu_groups 2>/dev/null)" ] || echo 'no IOMMU groups in /sys/kernel/iommu_groups'; for d in /sys/kernel/iommu_groups/*/devices/*; do [ -e "$d" ] || continue; g=${d%/devices/*}; printf 'IOMMU group %s %s\n' "${g##*/}" "$(lspci -Dnns "${d##*/}")"; done; } > iommu-groups.txt 2>&1
    dmesg | grep -E 'DMAR|IOMMU|iommu|AMD-Vi|Directed I/O|Command line' > dmesg-iommu.txt 2>&1
    cat /proc/cmdline > cmdline.txt
    grep -sHE 'vfio|nvidia|nouveau' /etc/modprobe.d/*.conf /lib/modprobe.d/*.conf > modprobe.txt
    lxc config show <instance> --expanded > lxd-config.txt

Older drivers (< 510) refuse compute_cap: capture plain `nvidia-smi` then. Ollama in Docker:
`docker logs --tail 5000 ollama > journal.txt 2>&1`. In an LXC container or a VM, capture
dev-nvidia, cpuinfo, nvidia-smi and journal inside it (a container: nvidia-version and
nvidia-libs too), and proc-devices and pve-lxc-conf on the Proxmox host; on a KVM host, lspci,
iommu-groups, dmesg-iommu (as root), cmdline and modprobe. Exit status of `python -m doctor`: 0 no error finding, 1 a cause found,
2 bad usage or nothing usable. Every KIND, its parser and the live command: doctor/kinds.py.
"""  # noqa: E501  (the capture commands are quoted whole, to be copied)

from doctor.captures import Captures, from_outputs, read_folder
from doctor.diagnose import diagnose
from doctor.findings import Finding
from doctor.report import Report, build_report, render_text

__all__ = [
    "Captures",
    "Finding",
    "Report",
    "build_report",
    "diagnose",
    "from_outputs",
    "read_folder",
    "render_text",
]
