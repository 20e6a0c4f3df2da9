"""What every command shares: turning library errors into one clear line and a non-zero exit."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

console = Console(stderr=True)

# Errors whose message already says what went wrong and what to do next.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, KeyError)


@contextmanager
def user_errors() -> Iterator[None]:
    """Print a library error as ``error: <message>`` and exit 2, without a traceback."""
    try:
        yield
    except USER_ERRORS as exc:
        from pydantic import ValidationError

        from ccai.config import describe_invalid

        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        if isinstance(exc, ValidationError):  # a command's options, checked by the stage's config model
            message = describe_invalid(exc)
        console.print(f"[bold red]error:[/] {message}", highlight=False)
        raise typer.Exit(2) from exc


def command(app: typer.Typer, name: str, **kwargs) -> Callable:
    """``@command(app, 'name')``: register a command with the project's defaults."""
    return app.command(name, no_args_is_help=kwargs.pop("no_args_is_help", True), **kwargs)
