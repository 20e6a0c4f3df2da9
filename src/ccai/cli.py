"""The ``ccai`` command line: one thin command per stage; all logic lives in the library.

Each stage's commands are in ``ccai.commands.<stage>`` and import their heavy dependencies lazily,
so ``ccai --help`` stays instant.
"""

from __future__ import annotations

import typer

from ccai import __version__
from ccai.commands import analysis, constitution, consultation, evaluation, study, training

app = typer.Typer(
    name="ccai",
    help=(
        "Collective Constitutional AI end to end: run a consultation, find opinion groups and "
        "group-aware consensus, build a constitution with provenance, train models on it with "
        "Constitutional AI, and evaluate them.\n\n"
        "Shared data is read from $CCAI_DATA_DIR (default ../shared/data)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ccai {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Collective Constitutional AI end to end."""


for module in (study, consultation, analysis, constitution, training, evaluation):
    module.register(app)


if __name__ == "__main__":  # pragma: no cover
    app()
