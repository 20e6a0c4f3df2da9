"""What every command shares: turning library errors into one clear line and a non-zero exit."""

from __future__ import annotations

import gc
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


@contextmanager
def without_cycle_collection() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for one short batch command; at its end, freeze what is left.

    Why: importing pandas and reading a Polis export create about a million long-lived container objects
    (module dictionaries, the matrix rows) and almost no reference cycles, so every collection re-walks
    them for nothing: on bowling-green that was ~240 collections and 0.07-0.14 s of a ~1.5 s ``ccai
    analyze``, with the same peak memory when paused (231 MB both ways). Reference counting still frees
    everything that is not in a cycle. At the end the survivors go to the permanent generation
    (``gc.freeze``): otherwise the next collection, or the one at interpreter exit, walks them all once
    more (0.1-0.15 s measured). The cost: cyclic garbage made during the command is never reclaimed, which
    is fine for a command that ends the process. Never use it around servers or training loops.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def command(app: typer.Typer, name: str, **kwargs) -> Callable:
    """``@command(app, 'name')``: register a command with the project's defaults."""
    return app.command(name, no_args_is_help=kwargs.pop("no_args_is_help", True), **kwargs)
