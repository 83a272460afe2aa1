"""Every recorded output under tests/fixtures/outputs parsed, against values written here.

The expected values are read off the fixture by hand (and the upstream formula for the
PROCESSOR split), never produced by the parser. A fixture without an entry here fails
test_every_fixture_has_expectations, so a new recording cannot go unchecked.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from facts.parsers import PARSERS, ParseError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "outputs"


def _matches(actual: Any, expected: Any, where: str = "result") -> None:
    """Dicts: every expected key equal (recursively); lists: same length, item by item."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected a dict, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}: missing key {key!r}"
            _matches(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected a list, got {actual!r}"
        assert len(actual) == len(expected), (
            f"{where}: {len(actual)} items, expected {len(expected)}"
        )
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _matches(a, e, f"{where}[{i}]")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def _ps(
    name: str,
    size: int,
    cpu: int | None,
    gpu: int | None,
    context: int | None,
    until: str | None,
    processor: str,
) -> dict[str, Any]:
    return {
        "name": name,
        "size_bytes": size,
        "cpu_percent": cpu,
        "gpu_percent": gpu,
        "context": context,
        "until": until,
        "processor": processor,
    }


def _gpu(
    index: int | None,
    name: str | None,
    total: int | None,
    used: int | None,
    driver: str | None,
    bus: str | None,
    uuid: str | None,
) -> dict[str, Any]:
    return {
        "index": index,
        "name": name,
        "memory_total_mib": total,
        "memory_used_mib": used,
        "driver_version": driver,
        "pci_bus_id": bus,
        "uuid": uuid,
    }


def _dev(
    address: str,
    vendor_device: str | None,
    driver: str | None,
    nvidia: bool,
    class_id: str | None = None,
) -> dict[str, Any]:
    return {
        "address": address,
        "vendor_device": vendor_device,
        "driver": driver,
        "nvidia": nvidia,
        "class_id": class_id,
    }


MIB = 1024**2
GIB = 1024**3
RTX3090_UUIDS = [
    "GPU-e1924eea-b9bb-d537-39f2-b345087fa145",
    "GPU-899c71bf-27be-b6a0-ae8f-d8afe5ba0f85",
    "GPU-acd314e9-4c7a-4824-eb0f-b6e38b1ec38c",
    "GPU-2639988f-1756-0583-db8f-faee38effce2",
]

# (kind, fixture file) -> expected (sub)structure, or the ParseError message pattern.
EXPECTED: dict[tuple[str, str], Any] = {
    # --- ollama ps ----------------------------------------------------------------------
    ("ollama-ps", "tabs-two-models-old-columns.txt"): {
        "error": None,
        "models": [
            _ps("llama3:latest", 4_300_000_000, 100, 0, None, "Forever", "100% CPU")
            | {"id": "365c0bd3c000"},
            _ps("qwen2:7b-instruct-q4_K_M", 5_400_000_000, 0, 100, None, "Forever", "100% GPU"),
        ],
    },
    ("ollama-ps", "docker-100cpu-prompt-lines.txt"): {
        "models": [_ps("qwen2:7b", 4_700_000_000, 100, 0, None, "4 minutes from now", "100% CPU")],
        "ignored_lines": [
            "# ollama ps",
            "NAME    ID      SIZE    PROCESSOR       UNTIL",
            "# ollama ps",
        ],
    },
    ("ollama-ps", "empty-header-only.txt"): {"models": [], "error": None},
    ("ollama-ps", "context-100gpu.txt"): {
        "models": [
            _ps("qwen2.5vl:latest", 8_500_000_000, 0, 100, 4096, "4 minutes from now", "100% GPU")
            | {"id": "5ced39dfa4ba"},
        ]
    },
    ("ollama-ps", "context-100cpu-forever.txt"): {
        "models": [
            _ps("gpt-oss:120b", 69_000_000_000, 100, 0, 128000, "Forever", "100% CPU"),
        ]
    },
    ("ollama-ps", "split-83-17-forever.txt"): {
        "models": [
            _ps("llama4:latest", 70_000_000_000, 83, 17, None, "Forever", "83%/17% CPU/GPU"),
        ]
    },
    ("ollama-ps", "split-no-until.txt"): {
        "models": [
            _ps("qwen3-4b:latest", 13_000_000_000, 59, 41, None, None, "59%/41% CPU/GPU"),
        ]
    },
    ("ollama-ps", "leading-space-single-gap.txt"): {
        "models": [
            _ps(
                "llama3.1:8b-instruct-q8_0",
                22_000_000_000,
                0,
                100,
                None,
                "27 seconds from now",
                "100% GPU",
            )
            | {"id": "9b90f0f552e7"}
        ],
        "ignored_lines": ["ollama ps", "root@272875ddc015:~# nvidia-smi"],
    },
    # The header lost its padding: columns from the words ("42 GB", "100% GPU" stay whole).
    ("ollama-ps", "squeezed-spaces-web-page.txt"): {
        "models": [
            _ps("llama3:70b", 42_000_000_000, 0, 100, None, "4 minutes from now", "100% GPU")
            | {"id": "bcfb190ca3a7"}
        ],
        "ignored_lines": ["ollama ps"],
    },
    ("ollama-ps", "squeezed-context-100cpu.txt"): {
        "models": [
            _ps("gpt-oss:120b", 69_000_000_000, 100, 0, 128000, "Forever", "100% CPU")
            | {"id": "735371f916a9"}
        ],
    },
    # Padded, but the name runs one column into ID's: the cut moves to the word start.
    ("ollama-ps", "name-wider-than-its-column.txt"): {
        "models": [
            _ps("llama3.1:latest", 6_700_000_000, 0, 100, None, "4 minutes from now", "100% GPU")
            | {"id": "91ab477bec9d"}
        ],
    },
    ("ollama-ps", "server-unreachable.txt"): {
        "models": [],
        "error": "server-unreachable",
        "message": "Error: could not connect to ollama app, is it running?",
    },
    # --- GET /api/ps --------------------------------------------------------------------
    ("api-ps", "docs-mistral-100gpu.json"): {
        "models": [
            {
                "name": "mistral:latest",
                "id": "2ae6f6dd7a3d",
                "size_bytes": 5137025024,
                "size_vram_bytes": 5137025024,
                "processor": "100% GPU",
                "cpu_percent": 0,
                "gpu_percent": 100,
                "context": None,
                "expires_at": "2024-06-04T14:38:31.83753-07:00",
            },
        ]
    },
    ("api-ps", "gemma3-100gpu.json"): {
        "models": [
            {
                "name": "gemma3:latest",
                "size_bytes": 5964735424,
                "size_vram_bytes": 5964735424,
                "cpu_percent": 0,
                "gpu_percent": 100,
                "context": None,
            },
        ]
    },
    ("api-ps", "split-cpu-unknown-context.json"): {
        "models": [
            # (9.1e9 - 4.7e9) / 9.1e9 = 48.35% on the CPU -> Ollama rounds to 48
            {
                "name": "qwen2.5-coder:7b",
                "size_vram_bytes": 4_700_000_000,
                "processor": "48%/52% CPU/GPU",
                "cpu_percent": 48,
                "gpu_percent": 52,
                "context": 65536,
                "id": "dae161e27b0e",
            },
            {
                "name": "llama3.2:3b",
                "size_vram_bytes": 0,
                "processor": "100% CPU",
                "cpu_percent": 100,
                "gpu_percent": 0,
                "context": 4096,
                "id": "a80c4f17acd5",
            },
            {"name": "gemma3:4b", "processor": "Unknown", "cpu_percent": None, "gpu_percent": None},
        ]
    },
    # --- ollama list --------------------------------------------------------------------
    ("ollama-list", "ids-2023-nine-models.txt"): {
        "models": [
            {
                "name": "codellama:34b-instruct",
                "id": "901abb8f0f4b",
                "size_bytes": 19_000_000_000,
                "modified": "3 days ago",
            },
            {"name": "codellama:latest", "size_bytes": 3_800_000_000},
            {"name": "codeup:13b", "size_bytes": 7_400_000_000},
            {"name": "llama-mario:latest"},
            {"name": "llama2:13b"},
            {"name": "llama2:latest", "modified": "9 hours ago"},
            {"name": "llama2-uncensored:7b-chat-q6_K", "size_bytes": 5_500_000_000},
            {"name": "llama2-uncensored:latest"},
            {"name": "nous-hermes:latest", "id": "bfba379045c1", "modified": "6 weeks ago"},
        ]
    },
    ("ollama-list", "same-id-two-tags.txt"): {
        "models": [
            {"name": "llama3:8b", "id": "a6990ed6be41", "size_bytes": 4_700_000_000},
            {"name": "llama3:latest", "id": "a6990ed6be41", "modified": "25 hours ago"},
        ]
    },
    ("ollama-list", "one-model-2025.txt"): {
        "models": [
            {
                "name": "qwen3-4b:latest",
                "id": "fe7c4d51aadb",
                "size_bytes": 4_300_000_000,
                "modified": "16 minutes ago",
            },
        ]
    },
    # --- server log ---------------------------------------------------------------------
    ("ollama-log", "llama-server-full-offload.txt"): {
        "loads": [
            {
                "offloaded_layers": 41,
                "total_layers": 41,
                "buffers": {
                    "model": {"CPU_Mapped": round(275.62 * MIB), "CUDA0": round(8354.71 * MIB)},
                    "kv": {"CUDA0": 800 * MIB},
                    "compute": {"CUDA0": round(353.01 * MIB), "CUDA_Host": round(23.01 * MIB)},
                    "output": {"CUDA_Host": round(0.40 * MIB)},
                },
                "gpu_bytes": round(8354.71 * MIB) + 800 * MIB + round(353.01 * MIB),
            }
        ],
        "problems": [],
    },
    ("ollama-log", "journal-partial-offload.txt"): {
        "loads": [
            {
                "offloaded_layers": 5,
                "total_layers": 37,
                "buffers": {"model": {"CUDA0": round(511.43 * MIB), "CPU_Mapped": 3565 * MIB}},
                "gpu_bytes": round(511.43 * MIB),
                "host_bytes": 3565 * MIB,
            }
        ],
        "problems": ["partial-offload"],
    },
    ("ollama-log", "no-compatible-gpus.txt"): {
        "loads": [],
        "version": "0.0.0",
        "inference_compute": [
            {
                "id": "0",
                "library": "cpu",
                "name": None,
                "total_bytes": round(30.9 * GIB),
                "available_bytes": round(29.6 * GIB),
            }
        ],
        "problems": ["no-compatible-gpus", "cpu-only-inference"],
    },
    ("ollama-log", "old-runner-multi-gpu.txt"): {
        "loads": [
            {
                "offloaded_layers": 33,
                "total_layers": 33,
                "buffers": {
                    "model": {
                        "CPU": round(70.31 * MIB),
                        "CUDA0": round(4695.56 * MIB),
                        "CUDA1": round(3912.97 * MIB),
                    }
                },
                "gpu_bytes": round(4695.56 * MIB) + round(3912.97 * MIB),
            }
        ],
        "problems": [],
    },
    ("ollama-log", "offload-estimate-five-gpus.txt"): {
        "loads": [],
        "offload_estimates": [
            {
                "library": "cuda",
                "layers_requested": -1,
                "layers_model": 95,
                "layers_offload": 65,
                "memory_required_full_bytes": round(152.6 * GIB),
                "memory_required_partial_bytes": round(110.7 * GIB),
            }
        ],
        "problems": ["partial-offload"],
    },
    ("ollama-log", "inference-compute-4090.txt"): {
        "inference_compute": [
            {
                "id": "GPU-a91a72c4-6733-ae33-c532-f159bfc07477",
                "library": "cuda",
                "name": "NVIDIA GeForce RTX 4090",
                "compute": "8.9",
                "driver": "12.5",
                "total_bytes": round(23.6 * GIB),
            }
        ],
        "problems": [],
    },
    ("ollama-log", "cpu-only-q8-kv.txt"): {
        "loads": [
            {
                "offloaded_layers": None,
                "buffers": {
                    "kv": {"CPU": 816 * MIB},
                    "compute": {"CPU": 307 * MIB},
                    "output": {"CPU": round(2.40 * MIB)},
                },
                "gpu_bytes": 0,
            }
        ],
        "problems": ["no-gpu-buffers"],
    },
    # --- nvidia-smi ---------------------------------------------------------------------
    ("nvidia-smi", "table-535-two-3090.txt"): {
        "form": "table",
        "error": None,
        "gpus": [
            _gpu(0, "NVIDIA GeForce RTX 3090", 24576, 513, "535.129.03", "00000000:01:00.0", None),
            _gpu(1, "NVIDIA GeForce RTX 3090", 24576, 12, "535.129.03", "00000000:02:00.0", None),
        ],
    },
    ("nvidia-smi", "table-470-old-layout-docker.txt"): {
        "form": "table",
        "gpus": [
            _gpu(0, "Tesla V100-PCIE...", 32510, 5038, "470.223.02", "00000000:00:0D.0", None)
            | {"name_truncated": True},
        ],
    },
    ("nvidia-smi", "table-610-kmd-two-5090.txt"): {
        "form": "table",
        "gpus": [
            _gpu(0, "NVIDIA GeForce RTX 5090", 32607, 29324, "610.57.04", "00000000:01:00.0", None),
            _gpu(1, "NVIDIA GeForce RTX 5090", 32607, 30357, "610.57.04", "00000000:02:00.0", None),
        ],
    },
    ("nvidia-smi", "table-windows-wddm-truncated-name.txt"): {
        "form": "table",
        "gpus": [
            _gpu(0, "NVIDIA GeForce RTX 4050 ...", 6141, 105, "591.59", "00000000:01:00.0", None),
        ],
    },
    ("nvidia-smi", "list-four-3090.txt"): {
        "form": "list",
        "error": None,
        "gpus": [
            _gpu(i, "NVIDIA GeForce RTX 3090", None, None, None, None, RTX3090_UUIDS[i])
            for i in range(4)
        ],
    },
    ("nvidia-smi", "list-a100-mig.txt"): {
        "form": "list",
        "gpus": [
            _gpu(
                0,
                "NVIDIA A100-SXM4-80GB",
                None,
                None,
                None,
                None,
                "GPU-513536b6-7d19-9063-b049-1e69664bb298",
            ),
            {"index": 1},
            {"index": 2},
            {"index": 3, "uuid": "GPU-69ec2344-ebac-b028-f88f-452abb3d7f11"},
        ],
    },
    ("nvidia-smi", "list-after-daemon-reload-mixed.txt"): {
        "form": "failure",
        "gpus": [],
        "error": "nvml-unknown-error",
        "message": "Failed to initialize NVML: Unknown Error",
    },
    ("nvidia-smi", "csv-header-name-only.txt"): {
        "form": "csv",
        "gpus": [
            _gpu(None, "NVIDIA GeForce GTX 1080 Ti", None, None, None, None, None),
        ],
    },
    ("nvidia-smi", "csv-header-compute-cap-first.txt"): {
        "form": "csv",
        "gpus": [
            _gpu(0, "NVIDIA TITAN V", None, None, "570.86.15", None, None)
            | {"compute_cap": "7.0", "extra": {"compute_mode": "Default"}},
            _gpu(1, "NVIDIA RTX 5880 Ada Generation", None, None, "570.86.15", None, None)
            | {"compute_cap": "8.9"},
        ],
    },
    # A header of compute_cap alone is still a query with a header.
    ("nvidia-smi", "csv-header-compute-cap-only.txt"): {
        "form": "csv",
        "gpus": [_gpu(None, None, None, None, None, None, None) | {"compute_cap": "8.9"}],
    },
    ("nvidia-smi", "csv-header-units-4-fields.txt"): {
        "form": "csv",
        "gpus": [
            _gpu(
                None, "NVIDIA GeForce RTX 3090", 24576, None, "535.129.03", "00000000:01:00.0", None
            ),
            _gpu(
                None, "NVIDIA GeForce RTX 3090", 24576, None, "535.129.03", "00000000:02:00.0", None
            ),
        ],
    },
    ("nvidia-smi", "csv-noheader-7-fields.txt"): {
        "form": "csv",
        "gpus": [
            _gpu(
                0,
                "NVIDIA GeForce RTX 3090",
                24576,
                513,
                "535.129.03",
                "00000000:01:00.0",
                RTX3090_UUIDS[0],
            ),
            _gpu(
                1,
                "NVIDIA GeForce RTX 3090",
                24576,
                12,
                "535.129.03",
                "00000000:02:00.0",
                RTX3090_UUIDS[1],
            ),
        ],
    },
    # Two and nineteen noheader columns: the order cannot be guessed (see test_parse_edge.py
    # for the same files through parse_nvidia_smi_query with their field lists).
    ("nvidia-smi", "csv-noheader-nounits-name-free.txt"): r"noheader CSV with 2 columns",
    ("nvidia-smi", "csv-noheader-nounits-19-fields.txt"): r"noheader CSV with 19 columns",
    ("nvidia-smi", "fail-no-driver.txt"): {"form": "failure", "gpus": [], "error": "no-driver"},
    ("nvidia-smi", "fail-no-driver-curly-quote-two-lines.txt"): {"error": "no-driver"},
    ("nvidia-smi", "fail-version-mismatch-nvml-version.txt"): {
        "error": "version-mismatch",
        "nvml_library_version": "570.124",
        "message": "Failed to initialize NVML: Driver/library version mismatch",
    },
    ("nvidia-smi", "fail-version-mismatch-old.txt"): {
        "error": "version-mismatch",
        "nvml_library_version": None,
    },
    ("nvidia-smi", "fail-not-found-bash.txt"): {
        "error": "not-found",
        "message": "bash: nvidia-smi: command not found",
    },
    ("nvidia-smi", "fail-not-found-docker-path.txt"): {"error": "not-found"},
    ("nvidia-smi", "fail-no-devices.txt"): {
        "error": "no-devices",
        "message": "No devices were found",
    },
    ("nvidia-smi", "fail-nvml-unknown-error.txt"): {"error": "nvml-unknown-error"},
    # --- lspci --------------------------------------------------------------------------
    ("lspci", "nnk-grep-two-3090-tabs.txt"): {
        "devices": [
            _dev("05:00.0", "10de:2204", "nvidia", True, "0300")
            | {
                "class": "VGA compatible controller",
                "revision": "a1",
                "description": "NVIDIA Corporation GA102 [GeForce RTX 3090]",
                "subsystem": "Gigabyte Technology Co., Ltd GA102 [GeForce RTX 3090] [1458:4043]",
                "modules": ["nvidiafb", "nouveau", "nvidia_drm", "nvidia"],
            },
            _dev("05:00.1", "10de:1aef", "snd_hda_intel", True, "0403")
            | {"modules": ["snd_hda_intel"]},
            _dev("0a:00.0", "10de:2204", "nvidia", True, "0300"),
            _dev("0a:00.1", "10de:1aef", "snd_hda_intel", True, "0403"),
        ]
    },
    ("lspci", "nnk-spaces-laptop-1650.txt"): {
        "devices": [
            _dev("01:00.0", "10de:1f91", "nvidia", True, "0300")
            | {
                "description": "NVIDIA Corporation TU117M [GeForce GTX 1650 Mobile / Max-Q]",
                "vendor_id": "10de",
                "device_id": "1f91",
            },
            _dev("01:00.1", "10de:10fa", "snd_hda_intel", True, "0403")
            | {"description": "NVIDIA Corporation Device"},
        ]
    },
    ("lspci", "nnk-lost-indent-3080.txt"): {
        "devices": [
            _dev("3e:00.0", "10de:2206", "nvidia", True, "0300")
            | {
                "subsystem": "Gigabyte Technology Co., Ltd Device [1458:404b]",
                "modules": ["nouveau", "nvidia_drm", "nvidia"],
            },
            _dev("3e:00.1", "10de:1aef", "snd_hda_intel", True, "0403"),
        ]
    },
    ("lspci", "k-vfio-bound-no-ids.txt"): {
        "devices": [
            _dev("07:00.0", None, "vfio-pci", True)
            | {
                "revision": "a1",
                "description": "NVIDIA Corporation GA106 [GeForce RTX 3060 Lite Hash Rate]",
            },
            _dev("07:00.1", None, None, True) | {"class": "Audio device"},
        ]
    },
    ("lspci", "domain-plain-ada.txt"): {
        "devices": [
            _dev("0000:3b:00.0", None, None, True)
            | {"description": "NVIDIA Corporation Device 2684"},
            _dev("0000:3b:00.1", None, None, True),
        ]
    },
    # --- IOMMU groups -------------------------------------------------------------------
    ("iommu-groups", "loop-1660-super-four-functions.txt"): {
        "groups": {
            "0": [{"address": "00:00.0", "vendor_device": "8086:9b53"}],
            "1": [
                {
                    "address": "00:01.0",
                    "vendor_device": "8086:1901",
                    "class_id": "0604",
                    "nvidia": False,
                },
                {
                    "address": "01:00.0",
                    "vendor_device": "10de:21c4",
                    "nvidia": True,
                    "description": "NVIDIA Corporation TU116 [GeForce GTX 1660 SUPER]",
                },
                {"address": "01:00.1", "vendor_device": "10de:1aeb"},
                {"address": "01:00.2", "vendor_device": "10de:1aec"},
                {"address": "01:00.3", "vendor_device": "10de:1aed", "class_id": "0c80"},
            ],
            "2": [{"vendor_device": "8086:9bc8"}],
            "3": [{"address": "00:14.0"}],
            "4": [{"address": "00:16.0"}],
            "5": [{"address": "00:17.0"}],
            "6": [{"address": "00:1b.0"}],
        }
    },
    ("iommu-groups", "loop-with-stderr-laptop.txt"): {
        "groups": {
            "0": [{"address": "00:00.0"}],
            "1": [
                {"address": "00:01.0"},
                {"address": "01:00.0", "vendor_device": "10de:11e1", "class_id": "0302"},
                {"address": "01:00.1", "vendor_device": "10de:0e0b"},
            ],
            "10": [{"address": "00:1d.0"}],
            "11": [{"address": "00:1f.0"}, {"address": "00:1f.2"}, {"address": "00:1f.3"}],
            "12": [{"vendor_device": "1969:e091"}],
            "13": [{"vendor_device": "168c:0034"}],
        }
    },
    ("iommu-groups", "header-tab-indented.txt"): {
        "groups": {
            "1": [
                {"address": "00:01.0", "vendor_device": "8086:0c01"},
                {
                    "address": "01:00.0",
                    "vendor_device": "10de:1187",
                    "description": "NVIDIA Corporation GK104 [GeForce GTX 760]",
                },
            ],
            "3": [{"address": "00:03.0"}],
            "5": [{"address": "00:16.0"}],
            "7": [{"address": "00:1b.0"}],
            "11": [{"address": "00:1d.0"}],
            "13": [{"vendor_device": "10ec:8168"}],
        }
    },
    ("iommu-groups", "header-colon-space-indented.txt"): {
        "groups": {
            "0": [{"address": "00:02.0", "class_id": "0380"}],
            "1": [{"address": "00:00.0"}],
            "2": [
                {"address": "00:01.0"},
                {"vendor_device": "10de:2184"},
                {"vendor_device": "10de:1aeb"},
                {"vendor_device": "10de:1aec"},
                {"vendor_device": "10de:1aed"},
            ],
        }
    },
    ("iommu-groups", "helper-driver-suffix.txt"): {
        "groups": {
            "16": [
                {"address": "0000:0a:00.0", "vendor_device": "10de:21c4", "driver": "vfio-pci"},
                {"address": "0000:0a:00.1", "driver": "vfio-pci"},
                {"address": "0000:0a:00.2", "driver": "vfio-pci"},
                {
                    "address": "0000:0a:00.3",
                    "driver": "vfio-pci",
                    "description": "NVIDIA Corporation TU116 [GeForce GTX 1650 SUPER]",
                },
            ],
            "17": [
                {"address": "0000:0b:00.0", "vendor_device": "10de:1c82", "driver": "nouveau"},
                {"address": "0000:0b:00.1", "driver": "snd_hda_intel"},
            ],
        }
    },
    ("iommu-groups", "ls-iommu-grk.txt"): {
        "groups": {
            "12": [
                {
                    "address": "0000:01:00.0",
                    "vendor_device": "1022:43d0",
                    "class_id": "0c03",
                    "driver": "xhci_hcd",
                    "description": "Advanced Micro Devices, Inc. [AMD] unknown",
                },
                {"address": "0000:01:00.1", "driver": "ahci"},
                {"address": "0000:01:00.2", "class_id": "0604", "driver": "pcieport"},
                {"address": "0000:02:00.0", "vendor_device": "1022:43c7"},
            ]
        }
    },
    # --- dmesg: IOMMU -------------------------------------------------------------------
    ("dmesg-iommu", "intel-enabled-cmdline.txt"): {
        "iommu_enabled": True,
        "vendor": "intel",
        "default_domain": None,
        "evidence": ["[    0.100185] DMAR: IOMMU enabled"],
        "cmdline": [
            "initrd=\\aab1f5db3229412687c416467bce6bf7\\6.0.9-300.fc37.x86_64\\initrd",
            "root=UUID=4d8f51db-7aeb-49f5-8b5d-1dd543116e60",
            "ro",
            "rootflags=subvol=root",
            "rhgb",
            "quiet",
            "systemd.machine_id=aab1f5db3229412687c416467bce6bf7",
            "intel_iommu=on",
            "iommu=pt",
        ],
    },
    ("dmesg-iommu", "intel-enabled-sapphire-rapids.txt"): {
        "iommu_enabled": True,
        "vendor": "intel",
        "cmdline": None,
    },
    ("dmesg-iommu", "intel-table-present-not-enabled.txt"): {
        "iommu_enabled": False,
        "vendor": "intel",
        "groups_seen": 0,
    },
    ("dmesg-iommu", "amd-epyc-groups-found.txt"): {
        "iommu_enabled": True,
        "vendor": "amd",
        "groups_seen": 2,
    },
    ("dmesg-iommu", "amd-old-kernel-iommu-adding-device.txt"): {
        "iommu_enabled": True,
        "vendor": "amd",
        "groups_seen": 5,
    },
    ("dmesg-iommu", "amd-v2-unavailable-default-domain.txt"): {
        "iommu_enabled": None,
        "vendor": "amd",
        "default_domain": "Translated",
        "evidence": [],
    },
    # --- /proc/devices ------------------------------------------------------------------
    ("proc-devices", "grep-nvidia-550-imex.txt"): {
        "majors": {
            "nvidia": 195,
            "nvidiactl": 195,
            "nvidia-caps-imex-channels": 234,
            "nvidia-nvswitch": 509,
        },
        "block_majors": {},
        "nvidia_major": 195,
        "uvm_major": None,
    },
    ("proc-devices", "full-pve-host-nvidia-frontend.txt"): {
        "majors": {
            "mem": 1,
            "/dev/vc/0": 4,
            "tty": 4,
            "nvidia-frontend": 195,
            "nvidia-nvlink": 234,
            "nvidia-caps": 235,
            "nvidia-uvm": 509,
            "usb_device": 189,
        },
        "block_majors": {"loop": 7, "sd": 8, "md": 9, "blkext": 259},
        "nvidia_major": 195,
        "uvm_major": 509,
    },
    # --- kernel command line ------------------------------------------------------------
    ("cmdline", "grub-default-commented-old-line.txt"): {
        "source": "grub",
        "params": ["quiet", "intel_iommu=on", "iommu=pt", "i915.enable_guc=3", "i915.max_vfs=7"],
        "grub": {"GRUB_CMDLINE_LINUX": []},
    },
    ("cmdline", "kernel-cmdline-zfs-systemd-boot.txt"): {
        "source": "cmdline",
        "grub": None,
        "params": [
            "root=ZFS=rpool/ROOT/pve-1",
            "boot=zfs",
            "intel_iommu=on",
            "iommu=pt",
            "i915.enable_guc=3",
            "i915.max_vfs=3",
        ],
    },
    ("cmdline", "proc-cmdline-fedora-efi-stub.txt"): {
        "source": "cmdline",
        "params": [
            "initrd=\\aab1f5db3229412687c416467bce6bf7\\6.0.9-300.fc37.x86_64\\initrd",
            "root=UUID=4d8f51db-7aeb-49f5-8b5d-1dd543116e60",
            "ro",
            "rootflags=subvol=root",
            "rhgb",
            "quiet",
            "systemd.machine_id=aab1f5db3229412687c416467bce6bf7",
            "intel_iommu=on",
            "iommu=pt",
        ],
    },
    # --- Proxmox container config -------------------------------------------------------
    ("pve-lxc-conf", "frigate-gpu-idmap.txt"): {
        "snapshots": {},
        "pending": None,
        "warnings": [],
        "cgroup_allow": [
            {"type": "c", "major": 120, "minor": 0, "access": "rwm"},
            {"type": "c", "major": 120, "minor": 1, "access": "rwm"},
            {"type": "c", "major": 195, "minor": 0, "access": "rwm"},
            {"type": "c", "major": 195, "minor": 1, "access": "rwm"},
        ],
        "mount_entries": [
            {"source": "/lxc/102010/devices/apex_0", "target": "dev/apex_0"},
            {"source": "/lxc/102010/devices/apex_1", "target": "dev/apex_1"},
            {
                "source": "/lxc/102010/devices/nvidia0",
                "target": "dev/nvidia0",
                "fstype": "none",
                "options": ["bind", "optional", "create=file"],
            },
            {"source": "/lxc/102010/devices/nvidia1", "target": "dev/nvidia1"},
        ],
        "dev_entries": [],
    },
    ("pve-lxc-conf", "dev-entries-pve8.txt"): {
        "dev_entries": [
            {"key": "dev0", "path": "/dev/dri/card0", "options": {"gid": "44"}},
            {"key": "dev1", "path": "/dev/dri/renderD128", "options": {"gid": "104"}},
        ],
        "cgroup_allow": [],
        "mount_entries": [],
    },
    ("pve-lxc-conf", "nvidia-cgroup-mount-snippet.txt"): {
        "cgroup_allow": [
            {"major": 195, "minor": "*"},
            {"major": 506, "minor": "*"},
            {"major": 509, "minor": "*"},
        ],
        "mount_entries": [
            {"source": "/dev/dri", "options": ["bind", "optional", "create=dir"]},
            {"source": "/dev/apex_0"},
            {"source": "/dev/nvidia0"},
            {"source": "/dev/nvidiactl"},
            {"source": "/dev/nvidia-uvm"},
            {"source": "/dev/nvidia-uvm-tools"},
            {"source": "/dev/nvidia-caps"},
        ],
    },
    ("pve-lxc-conf", "snapshots-with-comments.txt"): {"pending": None},
    ("pve-lxc-conf", "description-comment-then-keys.txt"): {"pending": None},
    # --- docker info --------------------------------------------------------------------
    ("docker-info", "nvidia-runtime-systemd-cgroup.txt"): {
        "server_version": "28.1.1",
        "runtimes": ["io.containerd.runc.v2", "nvidia", "runc"],
        "default_runtime": "runc",
        "cgroup_driver": "systemd",
        "cgroup_version": "2",
        "nvidia_runtime": True,
        "error": None,
        "warnings": [],
    },
    ("docker-info", "grep-runtime-seccomp-warning.txt"): {
        "runtimes": ["io.containerd.runc.v2", "runc"],
        "default_runtime": "runc",
        "nvidia_runtime": False,
        "server_version": None,
        "warnings": ["WARNING: daemon is not using the default seccomp profile"],
    },
    ("docker-info", "daemon-unreachable.txt"): {
        "error": "daemon-unreachable",
        "runtimes": [],
        "nvidia_runtime": False,
        "message": "Cannot connect to the Docker daemon at unix:///var/run/docker.sock."
        " Is the docker daemon running?",
    },
    ("docker-info", "json-no-nvidia-2020.json"): {
        "server_version": "18.09.0",
        "runtimes": ["runc"],
        "default_runtime": "runc",
        "cgroup_driver": "cgroupfs",
        "cgroup_version": None,
        "nvidia_runtime": False,
        "warnings": ["WARNING: No swap limit support"],
        "error": None,
    },
    # --- daemon.json --------------------------------------------------------------------
    ("daemon-json", "nvidia-default-runtime.json"): {
        "runtimes": {"nvidia": "nvidia-container-runtime"},
        "default_runtime": "nvidia",
        "nvidia_runtime": True,
        "cgroup_driver": None,
        "problems": [],
    },
    ("daemon-json", "invalid-trailing-comma.json"): r"line 9 column 27",
    ("daemon-json", "invalid-trailing-comma-nvidia-default.json"): r"line 9 column 1",
    ("daemon-json", "invalid-missing-comma-three-objects.json"): r"line 3 column 4: Expecting ','",
}


def _fixtures() -> list[tuple[str, str]]:
    return sorted(
        (path.parent.name, path.name) for path in FIXTURES.glob("*/*") if path.suffix != ".source"
    )


@pytest.mark.parametrize(("kind", "name"), sorted(EXPECTED))
def test_fixture_parses_to_expected(kind: str, name: str) -> None:
    text = (FIXTURES / kind / name).read_text(encoding="utf-8")
    expected = EXPECTED[(kind, name)]
    if isinstance(expected, str):
        with pytest.raises(ParseError, match=expected):
            PARSERS[kind](text)
    else:
        _matches(PARSERS[kind](text), expected)


def test_every_fixture_has_expectations() -> None:
    missing = [f"{kind}/{name}" for kind, name in _fixtures() if (kind, name) not in EXPECTED]
    assert not missing, f"fixtures without expected values: {missing}"


@pytest.mark.parametrize(("kind", "name"), _fixtures())
def test_every_fixture_has_a_source(kind: str, name: str) -> None:
    source = FIXTURES / kind / (name.rsplit(".", 1)[0] + ".source")
    assert source.is_file(), f"{kind}/{name} has no .source sidecar"
    text = source.read_text(encoding="utf-8")
    assert re.search(r"https?://", text), f"{source.name} names no URL"
    first = text.splitlines()[0]
    assert first.startswith("http") or first.startswith("constructed from"), (
        f"{source.name}: first line must be the URL or 'constructed from ...'"
    )


def test_every_kind_has_fixtures() -> None:
    kinds = {kind for kind, _name in _fixtures()}
    assert set(PARSERS) <= kinds, f"kinds without fixtures: {set(PARSERS) - kinds}"


def test_pve_conf_keeps_order_repeats_comments_and_snapshots() -> None:
    text = (FIXTURES / "pve-lxc-conf" / "snapshots-with-comments.txt").read_text()
    result = PARSERS["pve-lxc-conf"](text)
    assert [e["key"] for e in result["entries"]][:3] == ["arch", "cpulimit", "cpuunits"]
    assert {"key": "parent", "value": "test3"} in result["entries"]
    assert list(result["snapshots"]) == ["test", "test2", "test3"]
    assert result["snapshots"]["test"][0] == {"comment": "#test comment"}
    assert {"key": "snaptime", "value": "1234567890"} in result["snapshots"]["test2"]

    top = PARSERS["pve-lxc-conf"](
        (FIXTURES / "pve-lxc-conf" / "description-comment-then-keys.txt").read_text()
    )
    assert top["entries"][0] == {"comment": "# should be preserved"}
    assert top["snapshots"]["test"][0] == {"comment": "# should be thrown away"}

    frigate = PARSERS["pve-lxc-conf"](
        (FIXTURES / "pve-lxc-conf" / "frigate-gpu-idmap.txt").read_text()
    )
    idmaps = [e["value"] for e in frigate["entries"] if e.get("key") == "lxc.idmap"]
    assert idmaps == [
        "u 0 100000 1000",
        "g 0 100000 1000",
        "u 1000 2000 1",
        "g 1000 2000 1",
        "u 1001 101001 64535",
        "g 1001 101001 64535",
    ]

    pve8 = PARSERS["pve-lxc-conf"]((FIXTURES / "pve-lxc-conf" / "dev-entries-pve8.txt").read_text())
    assert {"key": "tags", "value": ""} in pve8["entries"]
