"""`batchops completion bash|zsh`: a shell completion script generated from the real parser.

The script is generated (by shtab) from the full parser, with every command module imported, so
it always names the commands and options this version has. Install it with e.g.
`batchops completion bash > ~/.local/share/bash-completion/completions/batchops`.
"""

from __future__ import annotations

import argparse
import sys

SHELLS = ("bash", "zsh")


def register(sub: argparse._SubParsersAction) -> None:
    command = sub.add_parser(
        "completion",
        help="print a shell completion script (bash or zsh)",
        description="Print a completion script; e.g. `batchops completion bash > "
        "~/.local/share/bash-completion/completions/batchops`, or for zsh a `_batchops` file "
        "in a directory of $fpath.",
    )
    command.add_argument("shell", choices=SHELLS, help="the shell to complete for")
    command.set_defaults(without_settings=print_completion)


def completion_script(shell: str) -> str:
    import shtab

    from batchops_tui.cli.main import build_parser

    return shtab.complete(build_parser(), shell=shell)


def print_completion(args: argparse.Namespace) -> int:
    sys.stdout.write(completion_script(args.shell))
    return 0
