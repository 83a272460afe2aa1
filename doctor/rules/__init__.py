"""Diagnosis rules: each is a pure function Captures -> list[Finding].

gpu: the driver, the CPU (AVX), versions against the GPU's compute capability;
devices: containers (Docker runtime, device request) and device nodes (nvidia-uvm, LXC);
memory: the model does not fit the VRAM at its context, other processes, the context cap.
"""
