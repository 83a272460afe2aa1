"""LXC topology, Proxmox side: wanted lines from real /proc/devices listings, and merging them
into real Proxmox container configs (tests/fixtures/outputs/pve-lxc-conf/, each with .source)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest

from doctor.captures import Capture, Captures
from doctor.rules.devices import lxc_config
from facts.lxc import pve_manager_version
from facts.parsers.kernel import parse_proc_devices
from facts.parsers.lxc import parse_pve_lxc_conf
from roles.lxc import LXD_STARTERS, PROXMOX_STARTERS, device_minors
from roles.lxc.plan import (
    ConfigLine,
    LxcPlanError,
    check_host_nodes,
    device_style,
    host_refusals,
    managed_lines,
    merge_config,
    wanted_lines,
    wanted_nodes,
)
from templates import TEMPLATES

OUTPUTS = Path(__file__).parents[1] / "fixtures" / "outputs"
CONFIGS = sorted((OUTPUTS / "pve-lxc-conf").glob("*.txt"))
NODES = {
    "nvidia0": {"major": 195, "minor": 0},
    "nvidia1": {"major": 195, "minor": 1},
    "nvidiactl": {"major": 195, "minor": 255},
    "nvidia-uvm": {"major": 509, "minor": 0},
    "nvidia-uvm-tools": {"major": 509, "minor": 1},
}


def majors(name: str) -> dict[str, int]:
    text = (OUTPUTS / "proc-devices" / f"{name}.txt").read_text()
    result: dict[str, int] = parse_proc_devices(text)["majors"]
    return result


def conf(name: str) -> str:
    return (OUTPUTS / "pve-lxc-conf" / f"{name}.txt").read_text()


def mount_lines(uvm: int, nodes: list[str]) -> list[str]:
    return [
        "lxc.cgroup2.devices.allow: c 195:* rwm",
        f"lxc.cgroup2.devices.allow: c {uvm}:* rwm",
        *[f"lxc.mount.entry: /dev/{n} dev/{n} none bind,optional,create=file" for n in nodes],
    ]


# --- wanted lines ---------------------------------------------------------------------------


def test_uvm_major_comes_from_proc_devices_not_a_constant() -> None:
    # The listing's nvidia-uvm is 509 (a major seen in real configs); a moved major follows.
    lines = wanted_lines(
        ["nvidia0", "nvidiactl", "nvidia-uvm"], majors("full-pve-host-nvidia-frontend"), "mount"
    )
    assert [x.render() for x in lines] == mount_lines(509, ["nvidia0", "nvidiactl", "nvidia-uvm"])
    moved = wanted_lines(["nvidia0"], {"nvidia": 195, "nvidia-uvm": 234}, "mount")
    assert moved[1].render() == "lxc.cgroup2.devices.allow: c 234:* rwm"


def test_nodes_all_gpus_then_control_and_uvm() -> None:
    assert wanted_nodes(NODES, "all", "mount") == [
        "nvidia0",
        "nvidia1",
        "nvidiactl",
        "nvidia-uvm",
        "nvidia-uvm-tools",
    ]
    assert wanted_nodes(NODES, ["1"], "mount")[0] == "nvidia1"


def test_gpus_sorted_numerically() -> None:
    nodes = {
        **NODES,
        "nvidia10": {"major": 195, "minor": 10},
        "nvidia2": {"major": 195, "minor": 2},
    }
    assert wanted_nodes(nodes, "all", "mount")[:4] == ["nvidia0", "nvidia1", "nvidia2", "nvidia10"]


def test_missing_uvm_node_refused_with_the_fix() -> None:
    nodes = {k: v for k, v in NODES.items() if not k.startswith("nvidia-uvm")}
    with pytest.raises(LxcPlanError, match=r"/dev/nvidia-uvm does not exist.*nvidia-modprobe -u"):
        wanted_nodes(nodes, "all", "mount")


def test_uvm_module_not_loaded_refused() -> None:
    with pytest.raises(LxcPlanError, match="nvidia-uvm is not in the host's /proc/devices"):
        wanted_lines(["nvidia0"], {"nvidia": 195}, "mount")


def test_unknown_gpu_refused_naming_what_is_there() -> None:
    with pytest.raises(LxcPlanError, match=r"/dev/nvidia3.*it has: nvidia0, nvidia1"):
        wanted_nodes(NODES, ["3"], "mount")


def test_no_gpu_node_refused() -> None:
    with pytest.raises(LxcPlanError, match="no /dev/nvidiaN"):
        wanted_nodes({"nvidiactl": {}, "nvidia-uvm": {}}, "all", "mount")


def test_dev_style_skips_absent_uvm_tools_and_adds_gid() -> None:
    nodes = {k: v for k, v in NODES.items() if k != "nvidia-uvm-tools"}
    chosen = wanted_nodes(nodes, ["0"], "dev")
    assert chosen == ["nvidia0", "nvidiactl", "nvidia-uvm"]
    lines = wanted_lines(chosen, {"nvidia-uvm": 509}, "dev", gid=44)
    assert [x.render() for x in lines] == [
        "dev: /dev/nvidia0,gid=44",
        "dev: /dev/nvidiactl,gid=44",
        "dev: /dev/nvidia-uvm,gid=44",
    ]


def test_mig_adds_caps_major_and_directory_from_proc_devices() -> None:
    lines = [
        x.render()
        for x in wanted_lines(["nvidia0"], majors("full-pve-host-nvidia-frontend"), "dev", mig=True)
    ]
    assert lines == [
        "lxc.cgroup2.devices.allow: c 235:* rwm",
        "dev: /dev/nvidia0",
        "lxc.mount.entry: /dev/nvidia-caps dev/nvidia-caps none bind,optional,create=dir",
    ]
    with pytest.raises(LxcPlanError, match="nvidia-caps is not in"):
        wanted_lines(["nvidia0"], {"nvidia-uvm": 509}, "mount", mig=True)


@pytest.mark.parametrize(
    ("setting", "version", "expected"),
    [
        ("auto", (8, 2), "dev"),
        ("auto", (8, 1), "dev"),
        ("auto", (8, 0), "mount"),
        ("auto", (7, 4), "mount"),
        ("auto", None, "mount"),
        ("mount", (8, 2), "mount"),
        ("dev", None, "dev"),
    ],
)
def test_device_style(setting: str, version: tuple[int, int] | None, expected: str) -> None:
    assert device_style(setting, version) == expected  # type: ignore[arg-type]


def test_dev_style_refused_on_old_proxmox() -> None:
    with pytest.raises(LxcPlanError, match="needs Proxmox VE 8.1 or newer, this node runs 7.4"):
        device_style("dev", (7, 4))


def test_pveversion_line() -> None:
    assert pve_manager_version(
        "pve-manager/8.2.4/faa83925c9641325 (running kernel: 6.8.8-2-pve)"
    ) == (8, 2)
    assert pve_manager_version("") is None


# --- merge ----------------------------------------------------------------------------------

WANTED = wanted_lines(
    ["nvidia0", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"], {"nvidia-uvm": 511}, "mount"
)
DEV_WANTED = wanted_lines(["nvidia0", "nvidiactl", "nvidia-uvm"], {"nvidia-uvm": 511}, "dev")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
@pytest.mark.parametrize("wanted", [WANTED, DEV_WANTED], ids=["mount", "dev"])
def test_merge_keeps_every_other_line_and_is_stable(path: Path, wanted: list[ConfigLine]) -> None:
    text = path.read_text()
    merged = merge_config(text, wanted, {"nvidia-uvm": 511})
    assert merge_config(merged, wanted, {"nvidia-uvm": 511}) == merged  # re-run: no change
    before, after = parse_pve_lxc_conf(text), parse_pve_lxc_conf(merged)
    assert after["snapshots"] == before["snapshots"] and after["pending"] == before["pending"]
    assert not after["warnings"]
    # Every line that is not an NVIDIA line is still there, in the same order.
    nvidia = ("/dev/nvidia", "dev/nvidia", "c 195:", "c 511:")
    kept = [x for x in text.splitlines() if not any(n in x for n in nvidia)]
    assert [x for x in merged.splitlines() if not any(n in x for n in nvidia)] == kept
    for line in managed_lines(merged, wanted):
        assert merged.count(line + "\n") == 1  # never duplicated


def test_managed_lines_go_only_into_the_main_section() -> None:
    merged = merge_config(conf("snapshots-with-comments"), WANTED, {"nvidia-uvm": 511})
    main, _, snapshots = merged.partition("\n[test]\n")
    assert main.endswith(
        "\n".join(mount_lines(511, ["nvidia0", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"]))
        + "\n"
    )
    assert "nvidia" not in snapshots
    assert "\n\n[test]\n#test comment\n" in merged  # the blank line before a section stays


def test_description_comment_stays_first() -> None:
    merged = merge_config(conf("description-comment-then-keys"), WANTED, {"nvidia-uvm": 511})
    assert merged.startswith("# should be preserved\narch: amd64\n")
    assert "# should be thrown away" in merged


def test_existing_nvidia_lines_replaced_in_place() -> None:
    # Real snippet: 195 and the dynamic majors 506/509, nvidia-caps as a directory mount.
    snippet = conf("nvidia-cgroup-mount-snippet")
    host = {"nvidia": 195, "nvidia-uvm": 509, "nvidia-caps": 506}
    wanted = wanted_lines(["nvidia0", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"], host, "mount")
    merged = merge_config(snippet, wanted, host)
    assert merged.splitlines() == [
        "lxc.mount.entry: /dev/dri dev/dri none bind,optional,create=dir",
        "lxc.mount.entry: /dev/apex_0 dev/apex_0 none bind,optional,create=file",
        *mount_lines(509, ["nvidia0", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"]),
    ]


def test_stale_uvm_major_replaced_when_written_before() -> None:
    # After a driver update nvidia-uvm moved from 509 to 511: the old rule was ours last time.
    first = merge_config(
        conf("dev-entries-pve8"),
        wanted_lines(["nvidia0", "nvidiactl", "nvidia-uvm"], {"nvidia-uvm": 509}, "mount"),
        {"nvidia-uvm": 509},
    )
    previous = [x for x in first.splitlines() if "nvidia" in x or "c 509" in x or "c 195" in x]
    now = wanted_lines(["nvidia0", "nvidiactl", "nvidia-uvm"], {"nvidia-uvm": 511}, "mount")
    second = merge_config(first, now, {"nvidia-uvm": 511}, previous)
    assert "c 509:" not in second and second.count("c 511:* rwm") == 1
    # Without that record a rule for a major nobody holds is left alone: it might be another
    # device's whose module is not loaded (the Coral's 120 in the frigate config, say).
    assert "c 509:* rwm" in merge_config(first, now, {"nvidia-uvm": 511})


def test_other_devices_rules_are_kept() -> None:
    text = conf("frigate-gpu-idmap")
    merged = merge_config(text, WANTED, {"nvidia-uvm": 511})
    for line in (
        "c 120:0 rwm",
        "c 120:1 rwm",
        "/lxc/102010/devices/apex_0",
        "lxc.idmap: u 1000 2000 1",
    ):
        assert line in merged
    # Its own per-minor 195 rules and self-made /lxc/... nvidia nodes (mounted onto dev/nvidiaN)
    # are NVIDIA lines: replaced, so dev/nvidia0 is not mounted twice.
    assert "c 195:0 rwm" not in merged and "/lxc/102010/devices/nvidia0" not in merged
    assert merged.count("dev/nvidia0 none") == 1


def test_dev_entries_take_free_indexes_and_keep_others() -> None:
    merged = merge_config(conf("dev-entries-pve8"), DEV_WANTED, {"nvidia-uvm": 511})
    devs = parse_pve_lxc_conf(merged)["dev_entries"]
    assert [(d["key"], d["path"]) for d in devs] == [
        ("dev0", "/dev/dri/card0"),
        ("dev1", "/dev/dri/renderD128"),
        ("dev2", "/dev/nvidia0"),
        ("dev3", "/dev/nvidiactl"),
        ("dev4", "/dev/nvidia-uvm"),
    ]
    assert "tags:  \n" in merged  # trailing spaces of an untouched line kept


def test_switching_style_replaces_the_other_style() -> None:
    as_mount = merge_config(conf("dev-entries-pve8"), WANTED, {"nvidia-uvm": 511})
    as_dev = merge_config(as_mount, DEV_WANTED, {"nvidia-uvm": 511})
    assert "lxc.mount.entry: /dev/nvidia" not in as_dev and "c 195:* rwm" not in as_dev
    assert as_dev == merge_config(conf("dev-entries-pve8"), DEV_WANTED, {"nvidia-uvm": 511})


def test_unreadable_config_refused() -> None:
    with pytest.raises(Exception, match="not 'key: value'"):
        merge_config("arch amd64\n", WANTED, {"nvidia-uvm": 511})


def test_merged_config_satisfies_the_doctor() -> None:
    # The doctor's LXC rules (lxc-uvm-not-passed, lxc-uvm-major-not-allowed) find nothing.
    host = majors("full-pve-host-nvidia-frontend")  # nvidia-uvm 509
    wanted = wanted_lines(["nvidia0", "nvidiactl", "nvidia-uvm"], host, "mount")
    for path in CONFIGS:
        merged = merge_config(path.read_text(), wanted, host)
        proc = (OUTPUTS / "proc-devices" / "full-pve-host-nvidia-frontend.txt").read_text()
        items = {
            "pve-lxc-conf": Capture(
                "pve-lxc-conf", "test", parse_pve_lxc_conf(merged), None, merged
            ),
            "proc-devices": Capture("proc-devices", "test", parse_proc_devices(proc), None, proc),
        }
        captures = Captures(items=items)
        assert lxc_config(captures) == [], path.stem


# --- host checks, both platforms -------------------------------------------------------------


def test_a_host_with_nvidia_modprobe_goes_on() -> None:
    assert host_refusals(nvidia_modprobe=True) == []


def test_a_host_without_nvidia_modprobe_is_refused_with_the_package() -> None:
    refusals = host_refusals(nvidia_modprobe=False)
    assert len(refusals) == 1
    assert "/usr/bin/nvidia-modprobe is missing" in refusals[0]
    assert "package nvidia-modprobe" in refusals[0]


def test_host_nodes_check_passes_with_every_node_and_the_uvm_major() -> None:
    check_host_nodes(NODES, {"nvidia": 195, "nvidia-uvm": 509})


@pytest.mark.parametrize(
    ("missing", "says"),
    [
        ("nvidia-uvm", "/dev/nvidia-uvm does not exist on the host"),
        ("nvidiactl", "/dev/nvidiactl does not exist on the host"),
        ("gpus", "the host has no /dev/nvidiaN device node"),
        ("uvm-major", "nvidia-uvm is not in the host's /proc/devices"),
    ],
)
def test_host_nodes_check_refuses_what_cuda_needs(missing: str, says: str) -> None:
    nodes = {n: v for n, v in NODES.items() if n != missing}
    if missing == "gpus":
        nodes = {n: v for n, v in NODES.items() if not n[6:].isdigit()}
    majors = {"nvidia": 195} if missing == "uvm-major" else {"nvidia": 195, "nvidia-uvm": 509}
    with pytest.raises(LxcPlanError, match=says):
        check_host_nodes(nodes, majors)


# --- boot unit ------------------------------------------------------------------------------


def render_unit(minors: list[int], before: tuple[str, ...] = PROXMOX_STARTERS) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    text = (TEMPLATES / "lxc" / "nvidia-uvm-init.service.j2").read_text()
    return env.from_string(text).render(
        minors=minors, nvidia_modprobe="/usr/bin/nvidia-modprobe", before=list(before)
    )


def test_unit_creates_uvm_then_each_gpu_before_containers() -> None:
    unit = render_unit(device_minors(2))
    assert (
        "ExecStart=/usr/bin/nvidia-modprobe -u -c=0\nExecStart=/usr/bin/nvidia-modprobe -c=1\n"
        in unit
    )
    assert "\nBefore=pve-guests.service lxc.service\n" in unit
    assert device_minors(0) == [0]


def test_lxd_unit_is_the_same_unit_ordered_before_lxd_and_incus() -> None:
    proxmox, lxd = render_unit([0]), render_unit([0], LXD_STARTERS)
    before = [line for line in lxd.splitlines() if line.startswith("Before=")]
    assert before == [
        "Before=lxd.service lxd-containers.service snap.lxd.daemon.service incus.service"
        " incus-startup.service"
    ]
    # Only the ordering differs: the same nodes are made the same way.
    assert [x for x in proxmox.splitlines() if not x.startswith("Before=")] == [
        x for x in lxd.splitlines() if not x.startswith("Before=")
    ]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    unit = tmp_path / "nvidia-uvm-init.service"
    unit.write_text(
        render_unit([0, 1], LXD_STARTERS).replace("/usr/bin/nvidia-modprobe", "/bin/true")
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True
    )
    problems = [x for x in result.stderr.splitlines() if "nvidia-uvm-init" in x]
    assert not problems, result.stderr


def test_both_platforms_install_the_unit_through_one_function() -> None:
    source = (Path(__file__).parents[2] / "roles" / "lxc" / "__init__.py").read_text()
    assert source.count("nvidia-uvm-init.service.j2") == 1  # one place renders the unit
    assert "nvidia_boot_nodes(before=PROXMOX_STARTERS)" in source
    assert "nvidia_boot_nodes(before=LXD_STARTERS)" in source
