"""Parser behaviour the recorded fixtures do not pin down: query field lists, garbage, edges."""

from __future__ import annotations

from pathlib import Path

import pytest

from facts.parsers import PARSERS, ParseError
from facts.parsers.docker import parse_daemon_json
from facts.parsers.kernel import parse_cmdline, parse_dmesg_iommu, parse_proc_devices
from facts.parsers.nvidia import NOHEADER_4, NOHEADER_7, parse_nvidia_smi, parse_nvidia_smi_query
from facts.parsers.ollama import parse_api_ps, parse_ollama_list, parse_ollama_ps
from facts.parsers.pci import parse_lspci
from facts.parsers.units import binary_size, decimal_bytes

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "outputs"


def _read(kind: str, name: str) -> str:
    return (FIXTURES / kind / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("19 GB", 19_000_000_000),
        ("4.7 GB", 4_700_000_000),
        ("512 MB", 512_000_000),
        ("1.0 GB", 1_000_000_000),
        ("976 B", 976),
        ("1.2 TB", 1_200_000_000_000),
    ],
)
def test_ollama_sizes_are_decimal(text: str, size: int) -> None:
    assert decimal_bytes(text) == size


def test_log_sizes_are_binary() -> None:
    assert binary_size("23.6 GiB") == round(23.6 * 2**30)
    assert binary_size("800 MiB") == 800 * 2**20
    with pytest.raises(ParseError):
        binary_size("lots")


def test_noheader_field_orders_are_the_documented_ones() -> None:
    assert NOHEADER_7 == [
        "index",
        "name",
        "memory.total",
        "memory.used",
        "driver_version",
        "pci.bus_id",
        "uuid",
    ]
    assert NOHEADER_4 == ["name", "memory.total", "driver_version", "pci.bus_id"]


def test_query_with_known_fields_two_columns() -> None:
    text = _read("nvidia-smi", "csv-noheader-nounits-name-free.txt")
    result = parse_nvidia_smi_query(text, ["gpu_name", "memory.free"])
    assert [g["name"] for g in result["gpus"]] == [
        "NVIDIA GeForce GTX 1050 Ti",
        "NVIDIA GeForce RTX 3080 Ti",
    ]
    assert [g["memory_free_mib"] for g in result["gpus"]] == [2131, 16000]
    assert result["gpus"][0]["extra"] == {}  # named, not also under extra
    assert result["gpus"][0]["memory_total_mib"] is None
    assert "compute_cap" not in result["gpus"][0]  # not queried, so no key


def test_fixed_orders_name_neither_free_memory_nor_compute_cap() -> None:
    (gpu, _) = parse_nvidia_smi(_read("nvidia-smi", "csv-noheader-7-fields.txt"))["gpus"]
    assert "memory_free_mib" not in gpu and "compute_cap" not in gpu


def test_doctor_capture_names_free_memory_and_compute_cap() -> None:
    # The header form of doctor/kinds.py's query (units in the header, "N MiB" values).
    text = (
        "index, name, memory.total [MiB], memory.used [MiB], memory.free [MiB], driver_version,"
        " compute_cap\n"
        "0, NVIDIA GeForce RTX 3070, 8192 MiB, 410 MiB, 7782 MiB, 550.54.14, 8.6\n"
        "1, NVIDIA GeForce GTX 680, 2048 MiB, 1 MiB, 2047 MiB, 550.54.14, [N/A]\n"
    )
    first, second = parse_nvidia_smi(text)["gpus"]
    assert (first["memory_free_mib"], first["compute_cap"]) == (7782, "8.6")
    assert first["extra"] == {}  # named, not also under extra
    assert (second["memory_free_mib"], second["compute_cap"]) == (2047, None)


@pytest.mark.parametrize("value", ["sm_86", "86", "8.6.1"])
def test_compute_cap_that_is_not_major_minor_is_a_parse_error(value: str) -> None:
    with pytest.raises(ParseError, match="compute_cap is not major.minor"):
        parse_nvidia_smi(f"name, compute_cap\nNVIDIA GeForce RTX 3070, {value}\n")


def test_query_with_known_fields_nineteen_columns() -> None:
    fields = (
        "power.limit,power.min_limit,power.max_limit,memory.total,vbios_version,driver_version,"
        "name,gpu_uuid,power.draw,temperature.gpu,temperature.memory,clocks.current.graphics,"
        "clocks.sm,clocks.mem,utilization.gpu,utilization.memory,fan.speed,"
        "pcie.link.width.current,pstate"
    ).split(",")
    text = _read("nvidia-smi", "csv-noheader-nounits-19-fields.txt")
    (gpu,) = parse_nvidia_smi_query(text, fields)["gpus"]
    assert gpu["name"] == "GeForce RTX 2080"  # the name with spaces is one field
    assert gpu["uuid"] == "GPU-22b2c6ac-2d49-4863-197c-9c469071178a"
    assert gpu["memory_total_mib"] == 7979
    assert gpu["driver_version"] == "440.64"
    assert gpu["extra"]["temperature.memory"] is None  # "N/A"
    assert gpu["extra"]["pstate"] == "P2"


def test_query_wrong_column_count_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="expected 7"):
        parse_nvidia_smi_query("NVIDIA GeForce RTX 3070, 8192", NOHEADER_7)


def test_query_passes_failures_through() -> None:
    text = _read("nvidia-smi", "fail-version-mismatch-nvml-version.txt")
    result = parse_nvidia_smi_query(text, NOHEADER_7)
    assert result["error"] == "version-mismatch" and result["gpus"] == []


def test_noheader_four_columns_with_units() -> None:
    result = parse_nvidia_smi("NVIDIA GeForce RTX 3070, 8192 MiB, 550.54.14, 00000000:01:00.0\n")
    assert result["gpus"][0]["memory_total_mib"] == 8192
    assert result["gpus"][0]["driver_version"] == "550.54.14"


def test_csv_header_in_any_order() -> None:
    text = (
        "pci.bus_id, driver_version, memory.total [MiB], name\n"
        "00000000:01:00.0, 550.54.14, 8192 MiB, NVIDIA GeForce RTX 3070\n"
    )
    (gpu,) = parse_nvidia_smi(text)["gpus"]
    assert (gpu["name"], gpu["memory_total_mib"], gpu["pci_bus_id"]) == (
        "NVIDIA GeForce RTX 3070",
        8192,
        "00000000:01:00.0",
    )


@pytest.mark.parametrize(
    "line",
    [
        "sh: 1: nvidia-smi: not found",
        "FileNotFoundError: [Errno 2] No such file or directory: 'nvidia-smi'",
    ],
)
def test_other_not_found_wordings(line: str) -> None:
    assert parse_nvidia_smi(line)["error"] == "not-found"


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("nvidia-smi", "hello world\n"),
        ("nvidia-smi", ""),
        ("ollama-ps", "total 0\ndrwxr-xr-x 2 root root 40 .\n"),
        ("ollama-list", "NAME\n"),
        ("api-ps", "<html>502 Bad Gateway</html>"),
        ("api-ps", '{"error": "unauthorized"}'),
        ("api-ps", '{"models": [{"name": "x", "size": "big"}]}'),
        ("ollama-log", "just some text\nnothing to see\n"),
        ("lspci", "no devices here\n"),
        ("iommu-groups", "ls: cannot access '/sys/kernel/iommu_groups/*/devices/*'\n"),
        ("dmesg-iommu", "hello\n"),
        ("proc-devices", "Character devices:\nbanana split\n"),
        ("cmdline", "line one\nline two\n"),
        ("cmdline", 'root=/dev/sda1 foo="unclosed\n'),
        ("pve-lxc-conf", "this is not a config\n"),
        ("docker-info", "hello\n"),
        ("daemon-json", ""),
        ("daemon-json", "[]"),
        ("daemon-json", '{"runtimes": {"nvidia": "nvidia-container-runtime"}}'),
        ("daemon-json", '{"exec-opts": "native.cgroupdriver=cgroupfs"}'),
    ],
)
def test_garbage_is_a_parse_error(kind: str, text: str) -> None:
    with pytest.raises(ParseError):
        PARSERS[kind](text)


def test_bad_processor_value_is_a_parse_error() -> None:
    text = (
        "NAME    ID              SIZE    PROCESSOR    UNTIL\n"
        "x:1b    0123456789ab    1 GB    most GPU     Forever\n"
    )
    with pytest.raises(ParseError, match="PROCESSOR"):
        parse_ollama_ps(text)


def test_squeezed_table_reads_two_word_cells_by_their_unit() -> None:
    text = (
        "NAME ID SIZE PROCESSOR CONTEXT UNTIL\n"
        "llama4:latest 4f01ed6b6e01 70 GB 83%/17% CPU/GPU 8192 Forever\n"
        "x:1b 0123456789ab 976 B Unknown 4096\n"
        "root@box:~# nvidia-smi\n"
    )
    split, unknown = (result := parse_ollama_ps(text))["models"]
    assert (split["size_bytes"], split["cpu_percent"], split["gpu_percent"]) == (
        70_000_000_000,
        83,
        17,
    )
    assert (split["context"], split["until"]) == (8192, "Forever")
    assert (unknown["processor"], unknown["gpu_percent"], unknown["context"]) == (
        "Unknown",
        None,
        4096,
    )
    assert unknown["until"] is None and result["ignored_lines"] == ["root@box:~# nvidia-smi"]


def test_squeezed_ollama_list() -> None:
    text = "NAME ID SIZE MODIFIED\nqwen2.5-coder:7b 2b0496514337 4.7 GB 2 weeks ago\n"
    assert parse_ollama_list(text)["models"] == [
        {
            "name": "qwen2.5-coder:7b",
            "id": "2b0496514337",
            "size_bytes": 4_700_000_000,
            "modified": "2 weeks ago",
        }
    ]


def test_squeezed_row_with_a_bad_processor_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="PROCESSOR"):
        parse_ollama_ps("NAME ID SIZE PROCESSOR UNTIL\nx:1b 0123456789ab 1 GB most GPU Forever\n")


def test_api_ps_empty() -> None:
    assert parse_api_ps('{"models":[]}')["models"] == []


def test_lspci_vnn_prog_if_and_flags_lines() -> None:
    text = (
        "01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GF114 [GeForce GTX 560 Ti]"
        " [10de:1200] (rev a1) (prog-if 00 [VGA controller])\n"
        "\tFlags: bus master, fast devsel, latency 0\n"
        "\tKernel driver in use: nvidia\n"
    )
    (device,) = parse_lspci(text)["devices"]
    assert device["vendor_device"] == "10de:1200"
    assert device["description"] == "NVIDIA Corporation GF114 [GeForce GTX 560 Ti]"
    assert device["revision"] == "a1" and device["driver"] == "nvidia"


def test_dmesg_explicitly_disabled() -> None:
    result = parse_dmesg_iommu("[    0.000000] DMAR: IOMMU disabled\n")
    assert (result["iommu_enabled"], result["vendor"]) == (False, "intel")


def test_dmesg_without_iommu_lines_is_unknown() -> None:
    result = parse_dmesg_iommu("[    0.000000] Linux version 6.8.12-4-pve\n")
    assert (result["iommu_enabled"], result["vendor"]) == (None, None)


def test_dmesg_default_domain_passthrough() -> None:
    text = (
        "[    0.412345] iommu: Default domain type: Passthrough (set via kernel command line)\n"
        "[    0.500000] pci 0000:00:00.0: Adding to iommu group 0\n"
    )
    result = parse_dmesg_iommu(text)
    assert result["default_domain"] == "Passthrough" and result["iommu_enabled"] is True


def test_proc_devices_first_major_wins_for_a_repeated_name() -> None:
    text = "Character devices:\n231 infiniband_mad\n239 infiniband_mad\n195 nvidia-frontend\n"
    result = parse_proc_devices(text)
    assert result["majors"]["infiniband_mad"] == 231 and result["nvidia_major"] == 195


def test_cmdline_grub_append_and_quotes() -> None:
    text = (
        'GRUB_CMDLINE_LINUX_DEFAULT="quiet"\n'
        'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT intel_iommu=on iommu=pt"\n'
        "GRUB_CMDLINE_LINUX='root=/dev/mapper/pve-root'\n"
    )
    assert parse_cmdline(text) == [
        "root=/dev/mapper/pve-root",
        "quiet",
        "intel_iommu=on",
        "iommu=pt",
    ]
    assert parse_cmdline('BOOT_IMAGE=/vmlinuz dyndbg="file x.c +p" ro\n') == [
        "BOOT_IMAGE=/vmlinuz",
        "dyndbg=file x.c +p",
        "ro",
    ]


def test_pve_conf_flags_inline_comment_on_lxc_key() -> None:
    result = PARSERS["pve-lxc-conf"]("lxc.cgroup2.devices.allow: c 195:* rwm # nvidia\n")
    assert result["warnings"] and "line 1" in result["warnings"][0]
    assert result["cgroup_allow"] == [{"raw": "c 195:* rwm # nvidia"}]


def test_pve_conf_pending_section() -> None:
    result = PARSERS["pve-lxc-conf"]("arch: amd64\n\n[pve:pending]\nmemory: 4096\n")
    assert result["pending"] == [{"key": "memory", "value": "4096"}] and result["snapshots"] == {}


def test_daemon_json_cgroupfs_and_unknown_default() -> None:
    result = parse_daemon_json(
        '{"default-runtime": "nvidia", "exec-opts": ["native.cgroupdriver=cgroupfs"]}'
    )
    assert result["cgroup_driver"] == "cgroupfs"
    assert result["problems"] == ["default-runtime-unknown"]
    assert result["nvidia_runtime"] is False


def test_docker_info_json_daemon_down() -> None:
    text = (
        '{"ID":"","ServerErrors":["Cannot connect to the Docker daemon at'
        ' unix:///var/run/docker.sock. Is the docker daemon running?"],"ClientInfo":{}}'
    )
    result = PARSERS["docker-info"](text)
    assert result["error"] == "daemon-unreachable" and result["runtimes"] == []
