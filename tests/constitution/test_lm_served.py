"""The LM rewriter through an OpenAI-compatible server on loopback (``ccai models serve``'s app, in a thread):
`ccai constitution build --rewriter lm --model openai:URL#NAME` from the CLI, every answer checked, every
rejection visible with its reason and the rule-based principle kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ccai.cli import app
from ccai.constitution import Constitution
from ccai.constitution.lm_check import check_answer
from ccai.constitution.rewrite import rewrite_statement

runner = CliRunner()


def _serve(model_dir: Path | str, name: str):
    from ccai.models.backends import TransformersBackend
    from ccai.models.prepare import resolve_model
    from ccai.models.serve import BackgroundServer, create_app

    folder = resolve_model(model_dir)
    return BackgroundServer(create_app(folder, model_name=name, backend=TransformersBackend(folder)))


def _build_through(
    url: str, name: str, csv: Path, out: Path, count: int, tokens: int
) -> tuple[str, Constitution]:
    result = runner.invoke(
        app,
        [
            "constitution",
            "build",
            "--statements",
            str(csv),
            "--count",
            str(count),
            "--out",
            str(out),
            "--rewriter",
            "lm",
            "--model",
            f"openai:{url}#{name}",
            "--max-new-tokens",
            str(tokens),
        ],
    )
    assert result.exit_code == 0, result.output
    return result.output, Constitution.load(out / "public.json")


def _assert_checked(constitution: Constitution) -> tuple[int, int]:
    """Every principle carries the LM's answer; a used answer passes the checks, a rejected one kept the
    rules' wording and says why. Returns (used, rejected)."""
    used = rejected = 0
    for principle in constitution.principles:
        rewrite = principle.metadata["rewrite"]
        statement = principle.sources[0].text
        assert isinstance(rewrite["lm_answer"], str)
        if rewrite["by"] == "lm":
            used += 1
            comparison, problems = check_answer(statement, rewrite["lm_answer"])
            assert not problems and principle.comparison == comparison
        else:
            rejected += 1
            assert rewrite["by"] == "rules (lm answer rejected)" and rewrite["lm_rejected"]
            assert principle.comparison == rewrite_statement(statement).comparison
    return used, rejected


@pytest.mark.slow
def test_build_through_a_served_model_checks_every_answer(
    shared_data: Path, embedder, tmp_path: Path
) -> None:
    """A tiny random-weight model behind the server: its answers are noise, so all are rejected, each with
    a reason, and the constitution is the rules' one."""
    from ccai.models.prepare import tiny_model_dir

    model = tiny_model_dir(tmp_path / "tiny", seed=0)
    csv = shared_data / "ccai" / "ccai_statement_reference.csv"
    with _serve(model, "tiny") as url:
        output, built = _build_through(url, "tiny", csv, tmp_path / "run", count=4, tokens=8)
    used, rejected = _assert_checked(built)
    assert used == 0 and rejected == len(built.principles) == 4
    assert "rewritten by the LM" in output and "0 of 4; rejected" in output
    assert all(
        p.metadata["rewrite"]["lm_rejected"][0].startswith("not a principle") for p in built.principles
    )
    assert built.metadata["rewriter"] == f"lm (openai:{url}#tiny)"


@pytest.mark.slow
@pytest.mark.model
def test_build_through_served_smollm2(shared_data: Path, embedder, tmp_path: Path) -> None:
    """The bundled SmolLM2-135M behind the server: whatever it says, what is used passed the checks."""
    csv = shared_data / "ccai" / "ccai_statement_reference.csv"
    with _serve("smollm2", "smollm2") as url:
        output, built = _build_through(url, "smollm2", csv, tmp_path / "run", count=4, tokens=24)
    used, rejected = _assert_checked(built)
    assert used + rejected == len(built.principles) == 4
    print(f"SmolLM2-135M via the server: {used} used, {rejected} rejected\n{output}")
