"""`batchops users` commands (placeholder until its owner fills it in)."""

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's subcommands."""
