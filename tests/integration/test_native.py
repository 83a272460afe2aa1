"""Tier 2: deploy.py applied for real to a systemd container, twice, then tests/verify against it.

The Ollama release here is the stand-in (tests/standin), a test fixture: it reports size and
size_vram the way Ollama does, and the verify suite decides. Tests run in file order and
build on each other (install, converge again, verify, break, upgrade).
"""

from __future__ import annotations

import pytest

from facts.docker import TcpListeners
from roles.native import ENV_DROPIN
from roles.native.firewall import UFW_PORTS, exposed_listeners
from roles.native.plan import sha256_of
from tests.integration import testbed
from tests.integration.deployer import (
    MODEL,
    api_version,
    changed,
    ran_in_order,
    run_deploy,
    run_verify,
    set_standin_env,
    set_standin_vram,
    sh,
    standin_data,
    wait_http,
)


def test_misspelled_setting_stops_before_any_change(container: str, archives: dict) -> None:
    before = testbed.tree(container)
    run = run_deploy(container, standin_data(archives["0.32.7"], topolgy="docker"))
    assert run.returncode != 0
    assert "unknown key 'topolgy' (did you mean 'topology'?)" in run.output
    assert "Traceback" not in run.output
    assert testbed.tree(container) == before


def test_dry_run_changes_nothing(container: str, archives: dict) -> None:
    before = testbed.tree(container)
    run = run_deploy(container, standin_data(archives["0.32.7"]), "--dry")
    assert run.returncode == 0, run.output[-3000:]
    assert "preflight:" in run.output and "gpu='none'" in run.output
    assert testbed.tree(container) == before


def test_first_converge_installs(container: str, archives: dict) -> None:
    run = run_deploy(container, standin_data(archives["0.32.7"]))
    assert run.returncode == 0, run.output[-5000:]
    assert run.totals["error"] == 0 and run.totals["success"] > 0, run.totals
    assert '"version":"0.32.7"' in api_version(container)


def test_second_converge_changes_nothing(container: str, archives: dict) -> None:
    run = run_deploy(container, standin_data(archives["0.32.7"]))
    assert run.returncode == 0, run.output[-5000:]
    assert run.totals["error"] == 0
    assert run.totals["success"] == 0, changed(run)
    assert run.totals["no_change"] == run.operations


def test_verify_suite_passes_and_skips_gpu_checks_without_gpu(container: str) -> None:
    result = run_verify(container)
    assert result.returncode == 0, result.stdout[-5000:]
    assert "SKIPPED" in result.stdout and "gpu='none' on this host" in result.stdout


@pytest.mark.parametrize(
    ("vram_bytes", "shown"),
    [(0, "100%/0% CPU/GPU"), (600_000_000, "% CPU/GPU")],
    ids=["cpu-fallback", "split"],
)
def test_verify_suite_fails_when_model_is_not_on_gpu(
    container: str, vram_bytes: int, shown: str
) -> None:
    set_standin_vram(container, vram_bytes)
    try:
        result = run_verify(container, "--rig-gpu=nvidia", "-k", "gpu")
    finally:
        set_standin_vram(container, None)
    assert result.returncode == 1, result.stdout[-5000:]
    assert "FAILED tests/verify/test_models.py::test_model_loads_fully_on_gpu" in result.stdout
    assert f"{MODEL} is not 100% GPU" in result.stdout and shown in result.stdout


def test_verify_suite_passes_when_model_is_fully_on_gpu(container: str) -> None:
    set_standin_vram(container, 80 * 1024**3)
    try:
        result = run_verify(container, "--rig-gpu=nvidia", "-k", "gpu")
    finally:
        set_standin_vram(container, None)
    assert result.returncode == 0, result.stdout[-5000:]
    passed = [
        line
        for line in result.stdout.splitlines()
        if line.startswith("PASSED tests/verify/test_models.py::test_model_loads_fully_on_gpu")
    ]
    assert len(passed) == 2, result.stdout[-5000:]  # the model and its 64K variant


def test_unit_files_pass_systemd_analyze_verify(container: str) -> None:
    result = testbed.exec_in(container, "systemd-analyze", "verify", "ollama.service", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def archive_server(container: str, archives: dict) -> str:
    """The archives served over HTTP on the container's own loopback (it has no network)."""
    testbed.exec_in(container, "mkdir", "-p", "/srv/releases")
    for version, path in archives.items():
        testbed.exec_in(container, "mkdir", "-p", f"/srv/releases/v{version}")
        testbed.docker("cp", str(path), f"{container}:/srv/releases/v{version}/{path.name}")
    testbed.docker(
        "exec",
        "-d",
        container,
        "python3",
        "-m",
        "http.server",
        "8765",
        "--bind",
        "127.0.0.1",
        "--directory",
        "/srv/releases",
    )
    wait_http(container, "http://127.0.0.1:8765/")
    return "http://127.0.0.1:8765/v{version}/ollama-linux-{arch}.tar.zst"


def from_url(archives: dict, url: str, version: str, sha_of: str | None = None) -> dict:
    """Host data that downloads version from url (checksum of sha_of's archive, if given)."""
    return standin_data(
        archives[version],
        ollama_version=version,
        ollama_archive_path=None,
        ollama_archive_url=url,
        ollama_archive_sha256=sha256_of(str(archives[sha_of or version])),
    )


def test_unreachable_url_names_the_url_and_the_local_archive_setting(
    container: str, archives: dict
) -> None:
    url = "http://127.0.0.1:9/v{version}/ollama-linux-{arch}.tar.zst"
    run = run_deploy(container, from_url(archives, url, "0.32.8"))
    assert run.returncode != 0
    assert "cannot download http://127.0.0.1:9/v0.32.8/ollama-linux-amd64.tar.zst" in run.output
    assert "set ollama_archive_path" in run.output
    assert '"version":"0.32.7"' in api_version(container)


def test_wrong_checksum_is_refused_and_the_installed_version_keeps_running(
    container: str, archives: dict, archive_server: str
) -> None:
    run = run_deploy(container, from_url(archives, archive_server, "0.32.8", sha_of="0.32.7"))
    assert run.returncode != 0
    assert "checksum mismatch for http://127.0.0.1:8765/v0.32.8/" in run.output
    assert "archive refused" in run.output
    assert '"version":"0.32.7"' in api_version(container)
    listing = testbed.exec_in(container, "ls", "/var/cache/ollama-rig").stdout
    assert ".part" not in listing and "0.32.8" not in listing


def test_changing_the_version_upgrades_from_the_url(
    container: str, archives: dict, archive_server: str
) -> None:
    data = from_url(archives, archive_server, "0.32.8")
    run = run_deploy(container, data)
    assert run.returncode == 0, run.output[-5000:]
    assert '"version":"0.32.8"' in api_version(container)
    again = run_deploy(container, data)
    assert again.totals["success"] == 0, changed(again)


def test_changing_it_back_downgrades_from_the_local_archive(container: str, archives: dict) -> None:
    run = run_deploy(container, standin_data(archives["0.32.7"]))
    assert run.returncode == 0, run.output[-5000:]
    assert '"version":"0.32.7"' in api_version(container)
    # The superseded archive was dropped from the cache.
    assert len(testbed.exec_in(container, "ls", "/var/cache/ollama-rig").stdout.split()) == 1


def test_a_server_that_never_answers_the_pinned_version_is_reported_with_its_journal(
    container: str, archives: dict
) -> None:
    # The 0.32.8 stand-in installed under the name 0.32.9: it answers, but the wrong version.
    data = standin_data(archives["0.32.8"], ollama_version="0.32.9", ollama_start_timeout=5)
    try:
        run = run_deploy(container, data)
        assert run.returncode != 0
        assert (
            "ollama.service did not answer version 0.32.9 at http://127.0.0.1:11434/api/version"
            " within 5s (last answer: 0.32.8); last journal lines:" in run.output
        )
        assert "ollama" in run.output.split("last journal lines:")[1]
    finally:
        assert run_deploy(container, standin_data(archives["0.32.7"])).returncode == 0


def test_interrupted_pull_is_retried_and_resumed(container: str, archives: dict) -> None:
    # set_standin_env waits for the restarted server: a deploy that found it still starting
    # would wait for it itself, and list "Ollama answers version" among its changes.
    set_standin_env(container, OLLAMA_STANDIN_FAIL_PULL_ONCE="1")
    try:
        data = standin_data(archives["0.32.7"], ollama_models=[MODEL, "llama3.1:8b"])
        run = run_deploy(container, data)
    finally:
        set_standin_env(container)
    assert run.returncode == 0, run.output[-5000:]
    assert "pull of llama3.1:8b failed (attempt 1/3); resuming" in run.output
    assert run.changed_operations() == [
        "Ollama models | Model llama3.1:8b",
        "Verification manifest | Write /etc/ollama-rig/expected.json",
    ]


# Ollama has no authentication: the allow-list is in place before it listens beyond loopback,
# and goes only once it was restarted on loopback (--json lists operations in the order run).
def test_exposed_listen_gets_an_allow_list(container: str, archives: dict) -> None:
    data = standin_data(
        archives["0.32.7"],
        ollama_listen="0.0.0.0:11434",
        ollama_allow_from=["192.168.77.0/24", "fd00:77::/64"],
    )
    run = run_deploy(container, data)
    assert run.returncode == 0, run.output[-5000:]
    ran_in_order(run, "nftables allow-list for Ollama", "Restart Ollama on change")
    ruleset = testbed.exec_in(container, "nft", "list", "table", "inet", "ollama_rig").stdout
    assert "192.168.77.0/24" in ruleset and "fd00:77::/64" in ruleset
    assert "tcp dport 11434 drop" in ruleset
    assert run_deploy(container, data).totals["success"] == 0
    result = run_verify(container)
    assert result.returncode == 0, result.stdout[-5000:]


# A port change keeps the old port filtered until the server on the new port answers (the old
# server listens on the old port until its restart), then drops it: no stale rule stays.
def test_a_port_change_keeps_the_old_port_filtered_until_the_restart(
    container: str, archives: dict
) -> None:
    moved = standin_data(
        archives["0.32.7"], ollama_listen="0.0.0.0:11500", ollama_allow_from=["192.168.77.0/24"]
    )
    run = run_deploy(container, moved)
    assert run.returncode == 0, run.output[-5000:]
    ran_in_order(
        run,
        "nftables allow-list for Ollama",
        "Restart Ollama on change",
        "nftables rules: drop the old port",
    )
    ruleset = testbed.exec_in(container, "nft", "list", "table", "inet", "ollama_rig").stdout
    assert "tcp dport 11500 drop" in ruleset and "11434" not in ruleset, ruleset
    assert "0.0.0.0:11500" in listeners(container)
    assert run_deploy(container, moved).totals["success"] == 0


def test_back_to_loopback_removes_the_allow_list(container: str, archives: dict) -> None:
    run = run_deploy(container, standin_data(archives["0.32.7"]))
    assert run.returncode == 0, run.output[-5000:]
    ran_in_order(run, "Restart Ollama on change", "Stop the firewall unit")
    tables = testbed.exec_in(container, "nft", "list", "tables").stdout
    assert "ollama_rig" not in tables, f"{tables}\n{changed(run)}"
    result = run_verify(container)
    assert result.returncode == 0, result.stdout[-5000:]


def listeners(container: str) -> list[str]:
    tcp = testbed.exec_in(container, "cat", "/proc/net/tcp", "/proc/net/tcp6").stdout
    return TcpListeners().process(tcp.splitlines())


def test_a_run_stopped_before_the_restart_keeps_the_allow_list_until_ollama_is_back_on_loopback(
    container: str, archives: dict
) -> None:
    exposed = standin_data(
        archives["0.32.7"], ollama_listen="0.0.0.0:11434", ollama_allow_from=["192.168.77.0/24"]
    )
    assert run_deploy(container, exposed).returncode == 0
    assert "0.0.0.0:11434" in listeners(container)
    # What a loopback run stopped after writing the environment leaves: the file says loopback,
    # the server still listens on every address. The next run must restart it before the rules go.
    sh(container, f"sed -i 's/0.0.0.0:11434/127.0.0.1:11434/' {ENV_DROPIN}")
    run = run_deploy(container, standin_data(archives["0.32.7"]))
    assert run.returncode == 0, run.output[-5000:]
    ran_in_order(run, "Restart Ollama on change", "Stop the firewall unit")
    assert exposed_listeners(listeners(container), 11434) == [], listeners(container)
    assert "ollama_rig" not in testbed.exec_in(container, "nft", "list", "tables").stdout
    assert run_deploy(container, standin_data(archives["0.32.7"])).totals["success"] == 0


def ufw_added(container: str) -> str:
    return testbed.exec_in(container, "ufw", "show", "added").stdout


def nft_tables(container: str) -> str:
    return testbed.exec_in(container, "nft", "list", "tables").stdout


def test_ufw_allow_list_refuses_an_inactive_ufw_then_admits_only_the_networks(
    container: str, archives: dict
) -> None:
    def ufw_data(listen: str = "0.0.0.0:11434", firewall: str = "ufw") -> dict:
        return standin_data(
            archives["0.32.7"],
            ollama_listen=listen,
            ollama_allow_from=["192.168.77.0/24"],
            ollama_firewall=firewall,
        )

    data = ufw_data()
    before = testbed.tree(container)
    refused = run_deploy(container, data)
    assert refused.returncode != 0
    assert "preflight stopped" in refused.output, refused.output[-3000:]
    assert "ollama_firewall='ufw' but ufw is inactive on this host" in refused.output
    assert testbed.tree(container) == before
    testbed.exec_in(container, "ufw", "--force", "enable")
    try:
        run = run_deploy(container, data)
        assert run.returncode == 0, run.output[-5000:]
        ran_in_order(run, "ufw allow-list for Ollama", "Restart Ollama on change")
        added = ufw_added(container)
        assert "ufw allow from 192.168.77.0/24 to any port 11434 proto tcp" in added
        assert "ufw deny 11434/tcp" in added
        assert run_deploy(container, data).totals["success"] == 0

        # A port change: the old port's rules go only after the restart, none is left behind.
        moved = ufw_data("0.0.0.0:11500")
        run = run_deploy(container, moved)
        assert run.returncode == 0, run.output[-5000:]
        ran_in_order(
            run,
            "ufw allow-list for Ollama",
            "Restart Ollama on change",
            "Remove ufw rules of the old port",
        )
        added = ufw_added(container)
        assert "ufw deny 11500/tcp" in added and "11434" not in added, added
        assert run_deploy(container, moved).totals["success"] == 0

        # Switching the firewall: the new one's rules first, then the other one's go.
        nftables = ufw_data("0.0.0.0:11500", firewall="nftables")
        run = run_deploy(container, nftables)
        assert run.returncode == 0, run.output[-5000:]
        ran_in_order(run, "nftables allow-list for Ollama", "Remove ufw rules for Ollama")
        assert "11500" not in ufw_added(container)
        assert "ollama_rig" in nft_tables(container)
        assert run_deploy(container, nftables).totals["success"] == 0
        run = run_deploy(container, moved)
        assert run.returncode == 0, run.output[-5000:]
        ran_in_order(run, "ufw allow-list for Ollama", "Stop the firewall unit")
        assert "ollama_rig" not in nft_tables(container)
        assert "ufw deny 11500/tcp" in ufw_added(container)
        assert run_deploy(container, moved).totals["success"] == 0

        back = run_deploy(container, standin_data(archives["0.32.7"]))
        assert back.returncode == 0, back.output[-5000:]
        ran_in_order(back, "Restart Ollama on change", "Remove ufw rules for Ollama")
        added = ufw_added(container)
        assert "11434" not in added and "11500" not in added, added
        assert sh(container, f"test -e {UFW_PORTS} && echo there || echo gone").strip() == "gone"
        assert run_deploy(container, standin_data(archives["0.32.7"])).totals["success"] == 0
    finally:
        testbed.exec_in(container, "ufw", "--force", "reset", check=False)
        testbed.exec_in(container, "ufw", "disable", check=False)
