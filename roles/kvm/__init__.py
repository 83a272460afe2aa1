"""KVM topology: the host hands its GPU to a VM through VFIO; the VM runs Ollama with CPU `host`.

The hypervisor (topology "kvm"): check.py (pure checks and the verdict), vfio.py (boot loader,
kernel parameters, vfio files, the way back), vm.py (libvirt domain and Proxmox qm options),
operations.py, and deploy.py (`prepare_kvm_host`). The VM (topology "native", kvm_guest=True):
driver.py (pure: the distribution's driver packages, APT components, reboot reason) and guest.py
(`kvm_guest_driver`, run before the native role). FACTS.md section 8 holds the rules they follow.
"""
