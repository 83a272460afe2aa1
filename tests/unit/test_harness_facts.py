"""The harness facts' commands run for real in a shell here (their YAML cases, with recorded
output, are in tests/unit/pyinfra_cases/facts/harness.*)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from facts.harness import ConfigFileState, UserAccount


def run_fact(command: str) -> list[str]:
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def test_a_missing_file_lists_the_folders_to_make_outermost_first(tmp_path: Path) -> None:
    fact = ConfigFileState()
    path = tmp_path / ".cline/data/settings/providers.json"
    state = fact.process(run_fact(fact.command(str(path), str(tmp_path))))
    assert state["kind"] is None and state["content"] is None
    assert state["missing_dirs"] == [
        str(tmp_path / ".cline"),
        str(tmp_path / ".cline/data"),
        str(tmp_path / ".cline/data/settings"),
    ]


def test_a_symlinked_file_reads_as_its_target_with_exact_text(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "opencode.json"
    real.parent.mkdir()
    real.write_text('{"a": "é"}\n\n')
    real.chmod(0o644)
    (tmp_path / ".config/opencode").mkdir(parents=True)
    link = tmp_path / ".config/opencode/opencode.json"
    link.symlink_to(real)
    fact = ConfigFileState()
    state = fact.process(run_fact(fact.command(str(link), str(tmp_path))))
    assert state["content"] == '{"a": "é"}\n\n' and state["mode"] == "644"
    assert state["kind"] == "regular file" and state["link_target"] == str(real)
    assert state["missing_dirs"] == []


def test_an_empty_file_is_a_regular_file_with_no_text(tmp_path: Path) -> None:
    (tmp_path / "empty.json").touch()
    fact = ConfigFileState()
    state = fact.process(run_fact(fact.command(str(tmp_path / "empty.json"), str(tmp_path))))
    assert state["kind"] == "regular file" and state["content"] == ""


def test_user_account_of_this_user_and_of_nobody() -> None:
    fact = UserAccount()
    me = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    account = fact.process(run_fact(fact.command(me)))
    assert account is not None and account["uid"] == os.getuid() and account["home"]
    assert fact.process(run_fact(fact.command("no-such-user-here"))) is None
