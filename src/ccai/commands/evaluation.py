"""CLI commands of the evaluation stage (thin wrappers over `ccai.evaluation`)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the `ccai` app."""
