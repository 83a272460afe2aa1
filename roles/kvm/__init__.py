"""KVM topology: the host hands its GPU to a VM through VFIO; the VM runs Ollama with CPU `host`.

check.py (pure checks and the verdict), vfio.py (boot loader, kernel parameters, vfio files,
the way back), vm.py (libvirt domain and Proxmox qm options), operations.py, and deploy.py
(`prepare_kvm_host`). FACTS.md section 8 holds the rules they follow.
"""
