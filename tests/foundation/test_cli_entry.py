"""The `batchops` entry decides before importing anything heavy; --version; shell completion."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from batchops_core.version import installed_version
from batchops_tui.cli.completion import completion_script
from batchops_tui.cli.main import COMMAND_GROUPS, chosen_command, load_group

ROOT = Path(__file__).resolve().parents[2]
ENTRY = "import sys; from batchops_tui.cli.main import main; sys.exit(main(sys.argv[1:]))"
PROBE = (  # the entry, plus the modules it left in sys.modules when it exits (also via --help)
    "import atexit, sys; "
    "atexit.register(lambda: print('MODULES', *sorted(sys.modules), file=sys.stderr)); " + ENTRY
)
HEAVY = ("sqlalchemy", "alembic", "arq", "textual", "argon2", "redis", "pandas")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env
    )


def imported_modules(stderr: str) -> set[str]:
    (line,) = [line for line in stderr.splitlines() if line.startswith("MODULES ")]
    return set(line.split()[1:])


def test_help_lists_every_command_without_importing_anything_heavy() -> None:
    result = run("-c", PROBE, "--help")
    assert result.returncode == 0, result.stderr
    imported = imported_modules(result.stderr)
    assert "batchops_tui.cli.main" in imported  # the probe sees our own imports
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY)
    assert heavy == []
    assert not any(
        m.startswith("batchops_tui.cli.") and m != "batchops_tui.cli.main" for m in imported
    )
    for command in COMMAND_GROUPS:
        assert re.search(rf"^\s+{re.escape(command.name)}\b", result.stdout, re.M), command.name


def test_a_command_imports_only_its_own_group() -> None:
    result = run("-c", PROBE, "doctor", "--help")
    assert result.returncode == 0, result.stderr
    groups = {m for m in imported_modules(result.stderr) if m.startswith("batchops_tui.cli.")}
    assert groups <= {"batchops_tui.cli.main", "batchops_tui.cli.doctor", "batchops_tui.cli.common"}
    assert "batchops_tui.cli.doctor" in groups
    assert "usage: batchops doctor" in result.stdout


def test_the_table_names_exactly_what_each_module_registers() -> None:
    """A command missing from the table could not be reached by its name."""
    modules = dict.fromkeys(c.module for c in COMMAND_GROUPS)
    for module in modules:
        parser = argparse.ArgumentParser()
        load_group(module).register(parser.add_subparsers())
        (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        registered = set(action.choices)
        listed = {n for c in COMMAND_GROUPS if c.module == module for n in (c.name, *c.aliases)}
        assert registered == listed, module


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], None),
        (["--config", "user", "doctor"], "doctor"),
        (["--config=x.toml", "user", "list"], "user"),
        (["schedules", "list"], "schedule"),
        (["--version"], None),
        (["no-such-command"], None),
    ],
)
def test_the_first_word_that_is_not_an_option_picks_the_command(
    argv: list[str], expected: str | None
) -> None:
    command = chosen_command(argv)
    assert (command.name if command else None) == expected


def test_version_of_both_entry_points_comes_from_the_installed_metadata() -> None:
    from importlib.metadata import version

    assert installed_version() == version("batchops")
    tui = run("-c", ENTRY, "--version")
    daemon = run("-m", "batchops_daemon.main", "--version")
    assert tui.returncode == 0 and tui.stdout == f"batchops {version('batchops')}\n"
    assert daemon.returncode == 0 and daemon.stdout == f"batchops-daemon {version('batchops')}\n"


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_script_names_the_commands(shell: str) -> None:
    script = completion_script(shell)
    for command in ("init", "migrate", "doctor", "user", "upload", "status", "schedule"):
        assert command in script
    if shell == "bash":
        assert "-F _shtab_batchops batchops" in script
        top = re.search(r"^_shtab_batchops_subparsers=\((.*)\)$", script, re.M)
        assert top is not None
        assert {"init", "user", "schedule", "completion"} <= set(top.group(1).split())
        assert "set-role" in script  # nested commands too
    else:
        assert script.startswith("#compdef batchops")


def test_completion_needs_no_configuration(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BATCHOPS_TIMEZONE": "Mars/Phobos"}
    result = run("-c", ENTRY, "completion", "bash", env=env)
    assert result.returncode == 0, result.stderr
    assert "_shtab_batchops" in result.stdout


def test_what_the_tui_imports_before_its_sign_in_screen_is_light() -> None:
    """The modules `batchops` loads up to the first frame; the database layer comes after it."""
    code = (
        "import sys; import batchops_tui.cli.main, batchops_core.infra.config, "
        "batchops_core.infra.logs, batchops_tui.launch, batchops_tui.app, "
        "batchops_tui.screens.signin; print(' '.join(sorted(sys.modules)))"
    )
    result = run("-c", code)
    assert result.returncode == 0, result.stderr
    loaded = set(result.stdout.split())
    assert "textual.app" in loaded
    assert (
        sorted(m for m in loaded if m.split(".")[0] in HEAVY and m.split(".")[0] != "textual") == []
    )
