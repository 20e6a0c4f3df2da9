"""CLI commands of the analysis stage (thin wrappers over `ccai.analysis`)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the `ccai` app."""
