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
