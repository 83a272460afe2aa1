"""The default inventory: this machine, one GPU box, native topology.

Every setting and its default: group_data/all.py.
"""

hosts = [
    ("@local", {"topology": "native", "gpu": "auto"}),
]
