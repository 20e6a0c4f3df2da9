"""CLI commands of the constitution stage (thin wrappers over `ccai.constitution`)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the `ccai` app."""
