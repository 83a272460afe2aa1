"""Diagnosis rules: each is a pure function Captures -> list[Finding].

gpu: the driver, the CPU (AVX), versions against the GPU's compute capability;
devices: containers (Docker runtime, device request) and device nodes (nvidia-uvm, LXC majors);
lxc: the container's driver libraries against the host's module, node permissions, LXD devices;
kvm: the passthrough host (IOMMU off, IOMMU group shared, GPU held by a host driver);
memory: the model does not fit the VRAM at its context, other processes, the context cap.
"""
