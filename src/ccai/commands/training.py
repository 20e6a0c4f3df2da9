"""CLI commands of the training stage (thin wrappers over `ccai.training`)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the `ccai` app."""
