"""The installed version of BatchOps, and the `--version` option both entry points share.

The version comes from the installed distribution's metadata (pyproject.toml is the one place it
is written); a source tree that was never installed falls back to the package's own constant.
`importlib.metadata` costs ~40 ms to import, so it is imported only when the version is asked for.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

DISTRIBUTION = "batchops"


def installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        from batchops_core import __version__

        return __version__


class VersionAction(argparse.Action):
    """`--version`: print `<prog> <version>` and exit 0, reading the metadata only when used."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **_: Any):
        super().__init__(
            option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, help="print the version"
        )

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(f"{parser.prog} {installed_version()}")
        parser.exit()
