"""Every command answers --help; --version prints the package version."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from ccai import __version__
from ccai.cli import app

runner = CliRunner()


def _all_commands(group: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for info in group.registered_commands:
        found.append(prefix + (info.name or info.callback.__name__.replace("_", "-"),))
    for sub in group.registered_groups:
        found.append(prefix + (sub.name,))
        found.extend(_all_commands(sub.typer_instance, prefix + (sub.name,)))
    return found


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_every_command_has_help() -> None:
    for path in [()] + _all_commands(app):
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output


def test_help_shows_bracketed_examples_whole() -> None:
    """Rich markup once ate `[analysis,constitution]` from the examples, leaving `stages=`."""
    for command in ("demo", "study"):
        result = runner.invoke(app, [command, "--help"], terminal_width=200)
        assert result.exit_code == 0 and "stages=[analysis,constitution]" in result.output


def test_importing_ccai_forbids_hub_downloads_for_the_whole_process() -> None:
    """Set once at the process boundary (ccai/__init__.py), not inside each function that loads a model."""
    import os
    import subprocess
    import sys

    code = "import os, ccai; print(os.environ['HF_HUB_OFFLINE'])"
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "1"
