"""Example: GPU boxes reached over SSH. Copy it, then set your addresses, user and models.

pyinfra inventory/lab.py deploy.py --dry   # look first
"""

gpu_boxes = [
    (
        "rtx3070.lab.example",
        {
            "ssh_user": "admin",
            "_sudo": True,
            "topology": "native",
            "gpu": "nvidia",
            # 8 GB: a 7B coder at 64K with a q8_0 KV cache, plus a small FIM model.
            "ollama_models": ["qwen2.5-coder:7b", "qwen2.5-coder:1.5b"],
            # Served to the LAN: only these networks get through the firewall.
            "ollama_listen": "0.0.0.0:11434",
            "ollama_allow_from": ["192.168.1.0/24"],
        },
    ),
]

# LXC topology: two inventory entries. The Proxmox node gets the device lines (no Ollama on it);
# the container, reached over its own SSH, gets the host driver's NVIDIA libraries and then
# the native role. Deploy the node first: `pyinfra inventory/lab.py deploy.py --limit
# proxmox_nodes`, then `--limit lxc_guests`.
proxmox_nodes = [
    (
        "pve.lab.example",
        {
            "ssh_user": "root",
            "topology": "lxc",
            "lxc_platform": "proxmox",
            "lxc_vmid": 101,  # `pct list`; the container must exist (or set lxc_create_template)
            "lxc_device_style": "auto",  # devN entries on Proxmox VE 8.1+, bind-mounts before
            "ollama_models": ["qwen2.5-coder:7b"],  # sized against the GPU here, served there
        },
    ),
]
lxc_guests = [
    (
        "ollama-ct101.lab.example",
        {
            "ssh_user": "root",
            "topology": "native",
            "lxc_guest": True,  # no PCI view in a container; libraries of the host's version
            # sha256sum of NVIDIA-Linux-x86_64-<host driver version>.run
            "lxc_driver_run_sha256": None,
            "ollama_models": ["qwen2.5-coder:7b"],
            "ollama_listen": "0.0.0.0:11434",
            "ollama_allow_from": ["192.168.1.0/24"],
        },
    ),
]

# KVM topology: two inventory entries. The hypervisor (topology kvm) gets IOMMU + vfio-pci for
# its GPU and the VM definition, no Ollama; the VM, reached over its own SSH once its OS is
# installed, is a native host with kvm_guest=True (the NVIDIA driver from its distribution's
# packages, a reboot, then Ollama). Deploy the hypervisor first,
# reboot when told (or set kvm_allow_reboot), run again until it converges, then the guest:
# `pyinfra inventory/lab.py deploy.py --limit kvm_hypervisors`, then `--limit kvm_guests`.
kvm_hypervisors = [
    (
        "kvm-host.lab.example",
        {
            "ssh_user": "admin",
            "_sudo": True,
            "topology": "kvm",
            "kvm_gpu_address": "0000:01:00.0",  # `lspci -D`; every function of its slot goes
            "kvm_vm_manager": "libvirt",  # or "proxmox" with "kvm_vm_id": 101 (`qm list`)
            "kvm_vm_name": "ollama",
            "kvm_vm_memory_mib": 16384,
            "kvm_vm_vcpus": 8,
            "kvm_allow_reboot": False,  # stop with "reboot required"; reboot yourself
        },
    ),
]
kvm_guests = [
    (
        "ollama-vm.lab.example",
        {
            "ssh_user": "admin",
            "_sudo": True,
            "topology": "native",  # Ollama runs here, on the passed-through GPU
            "kvm_guest": True,  # the NVIDIA driver from Debian 13 / Ubuntu packages first
            "kvm_guest_driver_branch": "580",  # Ubuntu: nvidia-headless-580-server
            "kvm_allow_reboot": False,  # stop with "reboot required" after the driver install
            "gpu": "nvidia",
            "ollama_models": ["qwen2.5-coder:7b"],
            "ollama_listen": "0.0.0.0:11434",
            "ollama_allow_from": ["192.168.1.0/24"],
        },
    ),
]
