"""CLI commands of the consultation stage (thin wrappers over `ccai.consultation`)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the `ccai` app."""
