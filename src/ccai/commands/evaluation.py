"""CLI commands of the evaluation stage (thin wrappers over `ccai.evaluation`)."""

from __future__ import annotations

from pathlib import Path

import typer

from ccai.commands._common import command, user_errors


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the `ccai` app."""

    @command(app, "eval")
    def eval_command(
        models: list[str] = typer.Argument(
            ...,
            help="Models to compare: 'smollm2', a Hugging Face model folder, or openai:URL#name; "
            "prefix LABEL= to name a column (public=runs/public/model).",
        ),
        out: Path = typer.Option(
            ..., "--out", "-o", help="Run directory to write (results.json, report.html)."
        ),
        limit: int | None = typer.Option(None, "--limit", "-n", help="Items per task (stratified, seeded)."),
        tasks: str | None = typer.Option(
            None,
            "--tasks",
            "-t",
            help="Comma-separated: mmlu,gsm8k,bbq,opinionqa,safety,helpfulness,harmlessness,adherence "
            "(default: all).",
        ),
        judge: str | None = typer.Option(
            None,
            "--judge",
            help="Model that judges pairwise answers (required for helpfulness/harmlessness); not a "
            "contestant nor the RL feedback model a contestant was trained with.",
        ),
        allow_contestant_judge: bool = typer.Option(
            False,
            "--allow-contestant-judge",
            help="Run even when the judge is a contestant or its feedback model (the report says so).",
        ),
        constitution: list[str] = typer.Option(
            [],
            "--constitution",
            help="NAME=FILE of a constitution whose principles the adherence task tests (repeatable).",
        ),
        scenario_writer: str | None = typer.Option(
            None,
            "--scenario-writer",
            help="Model that writes adherence test prompts per principle (a capable server model, e.g. "
            "openai:URL#NAME); not a contestant. How many: --set adherence.generated=N (default 2).",
        ),
        seed: int | None = typer.Option(None, "--seed", help="Seed for samples, answers and bootstraps."),
        config: Path | None = typer.Option(None, "--config", "-c", help="YAML file of EvalConfig settings."),
        overrides: list[str] = typer.Option(
            [],
            "--set",
            "-s",
            help="Override a setting: gsm8k.shots=0, limits.mmlu=100, answers.max_new_tokens=64.",
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    ) -> None:
        """Evaluate models side by side, as the CCAI paper did, and write a report.

        Runs MMLU (5-shot, letter log-likelihood), GSM8K (final number),
        BBQ (accuracy and bias per category), OpinionQA (representativeness
        per US group), refusals on XSTest / SimpleSafetyTests / HH red-team
        prompts (answers side by side), and pairwise helpfulness and
        harmlessness judged by an AI judge in both orders (Elo with
        bootstrap intervals), and adherence to each principle of the
        --constitution files, traced back to the opinion groups. With --limit every task runs on a stratified,
        seeded sample; the sampled ids are logged in DIR/log.jsonl.

        MODEL is 'smollm2', a model folder, or openai:URL#NAME for an
        OpenAI-compatible server; tasks a server cannot score (no
        log-probabilities) are skipped for it, with the reason recorded.

        Example (the bundled model against itself, ~10-15 minutes on CPU):

            ccai eval base=smollm2 again=smollm2 --judge smollm2 --allow-contestant-judge \\
                --out runs/eval-self --limit 20 --set threads=1
        """
        with user_errors():
            from ccai.config import load_config
            from ccai.evaluation import EvalConfig, evaluate

            extra = list(overrides)
            if limit is not None:
                extra.append(f"limit={limit}")
            if seed is not None:
                extra.append(f"seed={seed}")
            if judge is not None:
                extra.append(f"judge={judge}")
            if allow_contestant_judge:
                extra.append("allow_contestant_judge=true")
            if scenario_writer is not None:
                extra.append(f"adherence.scenario_writer={scenario_writer}")
            if tasks is not None:
                extra.append("tasks=[" + ",".join(t.strip() for t in tasks.split(",") if t.strip()) + "]")
            settings = load_config(EvalConfig, config, extra)
            settings.models = list(models)
            if constitution:
                settings.adherence.constitutions = list(constitution)
            result = evaluate(settings, out, show_progress=not quiet)
            typer.echo(f"wrote {result.path / 'results.json'} and {result.path / 'report.html'}")

    @command(app, "eval-report")
    def eval_report(run_dir: Path = typer.Argument(..., help="An evaluation run directory.")) -> None:
        """Re-render report.html from a run's results.json (no model is loaded).

        Example: ccai eval-report runs/eval-self
        """
        with user_errors():
            from ccai.evaluation.report import report_from_dir

            typer.echo(f"wrote {report_from_dir(run_dir)}")
