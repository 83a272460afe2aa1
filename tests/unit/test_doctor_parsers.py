"""The doctor's own parsers and its server-log reader, on real lines quoted from public threads.

Each input names its source; where an input is constructed from a documented format it says so.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from doctor.parsers import (
    parse_compute_apps,
    parse_cpuinfo,
    parse_dev_nvidia,
    parse_ollama_version,
    parse_pci_sysfs,
    version_tuple,
)
from doctor.serverlog import parse_server_log
from facts.parsers import ParseError

OUTPUTS = Path(__file__).resolve().parents[1] / "fixtures" / "outputs"

# https://github.com/ollama/ollama/issues/2332 (lscpu of a Xeon E5410: no AVX, bare metal)
LSCPU_E5410 = (
    "Model name:            Intel(R) Xeon(R) CPU           E5410  @ 2.33GHz\n"
    "Flags:                 fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat"
    " pse36 clflush dts acpi mmx fxsr sse sse2 ss ht tm pbe syscall nx lm constant_tsc"
    " arch_perfmon pebs bts rep_good nopl aperfmperf eagerfpu pni dtes64 monitor ds_cpl vmx est"
    " tm2 ssse3 cx16 xtpr pdcm dca sse4_1 lahf_lm rsb_ctxsw tpr_shadow vnmi flexpriority dtherm\n"
)
# https://github.com/uyuni-project/uyuni/issues/2112 (a KVM guest with AVX passed through)
CPUINFO_NUTANIX = (
    "model name      : Intel(R) Xeon(R) Gold 5120 CPU @ 2.20GHz\n"
    "flags           : fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36"
    " clflush mmx fxsr sse sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc nopl cpuid"
    " tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt"
    " tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch avx2\n"
)
# https://github.com/jiangcuo/pxvirt/issues/56 (lscpu on Arm)
LSCPU_ARM = "    Flags:              fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp\n"


def test_cpuinfo_without_avx_bare_metal() -> None:
    cpu = parse_cpuinfo(LSCPU_E5410)
    assert cpu["x86"] and not cpu["avx"] and not cpu["hypervisor"]
    assert cpu["model_name"].startswith("Intel(R) Xeon(R) CPU")


def test_cpuinfo_vm_with_avx() -> None:
    cpu = parse_cpuinfo(CPUINFO_NUTANIX)
    assert cpu["avx"] and cpu["avx2"] and cpu["hypervisor"]


def test_cpuinfo_arm_is_not_x86() -> None:
    cpu = parse_cpuinfo(LSCPU_ARM)
    assert not cpu["x86"] and not cpu["avx"]


def test_cpuinfo_without_flags_is_a_parse_error() -> None:
    with pytest.raises(ParseError):
        parse_cpuinfo("processor : 0\nvendor_id : GenuineIntel\n")


def test_compute_apps_from_the_processes_table() -> None:
    apps = parse_compute_apps((OUTPUTS / "nvidia-smi" / "table-535-two-3090.txt").read_text())
    assert [(a["gpu"], a["pid"], a["type"], a["used_mib"]) for a in apps["apps"]] == [
        (0, 3494, "G", 152),
        (0, 3634, "G", 144),
        (0, 5000, "G", 141),
        (0, 6614, "G", 57),
        (1, 3494, "G", 4),
    ]


def test_compute_apps_csv() -> None:
    # constructed from nvidia-smi(1) --query-compute-apps with --format=csv (header, units)
    text = (
        "pid, process_name, used_gpu_memory [MiB]\n"
        "4123, /usr/local/bin/ollama, 5120 MiB\n"
        "7788, python3, [N/A]\n"
    )
    apps = parse_compute_apps(text)["apps"]
    assert apps[0] == {
        "gpu": None,
        "pid": 4123,
        "type": "C",
        "name": "/usr/local/bin/ollama",
        "used_mib": 5120,
    }
    assert apps[1]["used_mib"] is None


def test_compute_apps_empty_csv_and_failure() -> None:
    assert parse_compute_apps("pid, process_name, used_gpu_memory [MiB]\n")["apps"] == []
    failed = parse_compute_apps((OUTPUTS / "nvidia-smi" / "fail-no-driver.txt").read_text())
    assert failed["apps"] == [] and failed["error"] == "no-driver"
    with pytest.raises(ParseError):
        parse_compute_apps("hello world\n")


# https://github.com/ollama/ollama/issues/17069 (ls -l /dev/nvidia* inside an LXC container)
DEV_LXC = """\
crw-rw-rw- 1 root root 195, 254 Jul 21 11:50 /dev/nvidia-modeset
crw-rw-rw- 1 root root 511,   0 Jul 21 11:50 /dev/nvidia-uvm
crw-rw-rw- 1 root root 511,   1 Jul 21 11:50 /dev/nvidia-uvm-tools
crw-rw-rw- 1 root root 195,   0 Jul 21 11:50 /dev/nvidia0
crw-rw-rw- 1 root root 195, 255 Jul 21 11:50 /dev/nvidiactl
"""


def test_dev_nvidia_with_uvm() -> None:
    dev = parse_dev_nvidia(DEV_LXC)
    assert dev["has_uvm"] and dev["has_ctl"] and dev["gpus"] == ["nvidia0"]
    assert dev["devices"]["nvidia-uvm"] == {"major": 511, "minor": 0}


def test_dev_nvidia_none_and_garbage() -> None:
    none = parse_dev_nvidia("ls: cannot access '/dev/nvidia*': No such file or directory\n")
    assert none["error"] == "no-device-nodes" and not none["has_uvm"]
    with pytest.raises(ParseError):
        parse_dev_nvidia("total 0\n")


def test_ollama_version_forms() -> None:
    # https://github.com/ollama/ollama/issues/13423
    both = parse_ollama_version("ollama version is 0.13.1\nWarning: client version is 0.13.2\n")
    assert (both["server"], both["client"], both["error"]) == ("0.13.1", "0.13.2", None)
    # https://github.com/ollama/ollama/issues/2332
    alone = parse_ollama_version(
        "Warning: could not connect to a running Ollama instance\n"
        "Warning: client version is 0.1.23-0-g09a6f76\n"
    )
    assert alone["server"] is None and alone["error"] == "server-unreachable"
    assert parse_ollama_version('{"version":"0.5.7"}')["server"] == "0.5.7"
    assert parse_ollama_version("bash: ollama: command not found")["error"] == "not-found"
    with pytest.raises(ParseError):
        parse_ollama_version("hello")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.5.13", (0, 5, 13)), ("v0.12.11-rc1", (0, 12, 11)), ("0.0.0", None), (None, None)],
)
def test_version_tuple(text: str | None, expected: tuple[int, int, int] | None) -> None:
    assert version_tuple(text) == expected


def test_pci_sysfs_keeps_nvidia_only() -> None:
    # constructed in the format of facts.host.NvidiaPciFunctions' sysfs loop
    text = "0000:00:02.0 0x8086 0x9bc8 0x030000\n0000:01:00.0 0x10de 0x2484 0x030000\n"
    functions = parse_pci_sysfs(text)["functions"]
    assert [f["vendor_device"] for f in functions] == ["10de:2484"]
    with pytest.raises(ParseError):
        parse_pci_sysfs("nothing here")


# https://github.com/ollama/ollama/issues/10797 (Ollama 0.5.0 on Windows, quantized KV cache)
SERVER_CONFIG_Q8 = (
    '2025/05/21 17:21:42 routes.go:1195: INFO server config env="map[CUDA_VISIBLE_DEVICES:'
    " GPU_DEVICE_ORDINAL: HIP_VISIBLE_DEVICES: HSA_OVERRIDE_GFX_VERSION: HTTPS_PROXY: HTTP_PROXY:"
    " NO_PROXY: OLLAMA_DEBUG:false OLLAMA_FLASH_ATTENTION:true OLLAMA_GPU_OVERHEAD:0"
    " OLLAMA_HOST:http://127.0.0.1:11434 OLLAMA_INTEL_GPU:false OLLAMA_KEEP_ALIVE:5m0s"
    " OLLAMA_KV_CACHE_TYPE:q8_0 OLLAMA_LLM_LIBRARY: OLLAMA_LOAD_TIMEOUT:5m0s"
    " OLLAMA_MAX_LOADED_MODELS:0 OLLAMA_MAX_QUEUE:512 OLLAMA_NUM_PARALLEL:0 OLLAMA_ORIGINS:[http:"
    "//localhost https://localhost] OLLAMA_SCHED_SPREAD:false OLLAMA_TMPDIR:"
    ' ROCR_VISIBLE_DEVICES:]"\n'
    "time=2025-05-21T17:21:42.043+08:00 level=INFO source=routes.go:1246"
    ' msg="Listening on 127.0.0.1:11434 (version 0.5.0)"\n'
)


def test_server_config_env_and_version() -> None:
    log = parse_server_log(SERVER_CONFIG_Q8)
    assert log["env"]["OLLAMA_KV_CACHE_TYPE"] == "q8_0"
    assert log["env"]["OLLAMA_FLASH_ATTENTION"] == "true"
    assert log["env"]["CUDA_VISIBLE_DEVICES"] == ""
    assert log["version"] == "0.5.0"


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            "journal-partial-offload.txt",
            {"n_ctx": 32768, "n_seq": 1, "flash_attention": False, "kv_type": None},
        ),
        (
            "llama-server-full-offload.txt",
            {"n_ctx": 4096, "n_ctx_train": 16384, "flash_attention": False, "kv_type": "f16"},
        ),
        ("cpu-only-q8-kv.txt", {"kv_type": "q8_0", "flash_attention": True, "n_ctx_train": 131072}),
        # memory.available="[23.2 GiB ...]": 23.2 * 2**30 = 24910810316.8 bytes, rounded
        ("offload-estimate-five-gpus.txt", {"vram_available": [24910810317] * 5}),
    ],
)
def test_server_log_load_details(fixture: str, expected: dict[str, object]) -> None:
    log = parse_server_log((OUTPUTS / "ollama-log" / fixture).read_text())
    for key, value in expected.items():
        assert log[key] == value, key


def test_server_log_compute_capability_lines() -> None:
    # https://github.com/ollama/ollama/issues/17841, the two wrapped lines joined
    skipped = parse_server_log(
        'msg="skipping CUDA device — compute capability not in compiled architectures"'
        ' device="NVIDIA RTX A6000" cc=860 archs="[750 890 1000 1200]"'
    )
    assert skipped["cc_skipped"]["cc"] == "8.6"
    too_old = parse_server_log(
        "2024/01/14 19:50:06 gpu.go:138: CUDA GPU is too old. Falling back to CPU mode."
        " Compute Capability detected: 5.2"
    )
    assert too_old["cc_too_old"]["cc"] == "5.2"


def test_server_log_without_ollama_lines_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="no ollama entries"):
        parse_server_log("-- No entries --\n")
    with pytest.raises(ParseError, match="not readable"):
        # journalctl's words for a user outside the systemd-journal group
        parse_server_log("No journal files were opened due to insufficient permissions.\n")
    with pytest.raises(ParseError, match="no Ollama server log lines"):
        parse_server_log("some other program's output\n")
