"""`ccai study` and `ccai demo`: the whole CCAI study (thin wrappers over `ccai.pipeline`)."""

from __future__ import annotations

from pathlib import Path

import typer

from ccai.commands._common import command, console, user_errors

STUDIES = Path(__file__).resolve().parent.parent / "studies"


def _run(config_path: Path | None, overrides: list[str], out: Path) -> None:
    from ccai.config import load_config
    from ccai.pipeline import StudyConfig, run_study

    config = load_config(StudyConfig, config_path, overrides)
    result = run_study(config, out)
    console.print(f"study written to {result.path}; open {result.path / 'index.html'}")


def register(app: typer.Typer) -> None:
    """Add `study` and `demo` to the `ccai` app."""

    @command(app, "study")
    def study_cmd(
        out: Path = typer.Option(..., "--out", "-o", help="Run folder for the whole study."),
        config: Path | None = typer.Option(
            None,
            "--config",
            "-c",
            help="Study YAML (sections: analysis, constitution, training, evaluation, stages, seed).",
        ),
        overrides: list[str] = typer.Argument(
            None, help="KEY=VALUE overrides, e.g. training.seed=1 stages=[analysis,constitution]"
        ),
    ) -> None:
        """Run the whole study, from a consultation export to the evaluation report.

        Consultation export -> analysis -> public + standard constitutions -> Constitutional-AI
        training of one model per constitution -> evaluation of the base model against both.

        Defaults reproduce the CCAI setting on its public data: the organisers' cleaning rules, two
        opinion groups, GAC >= 0.723, SmolLM2-135M-Instruct as base. Every stage writes its own
        self-describing folder under OUT, and OUT/index.html links their reports.

        Example: ccai study --out runs/study stages=[analysis,constitution]
        """
        with user_errors():
            _run(config, overrides or [], out)

    @command(app, "demo", no_args_is_help=False)
    def demo_cmd(
        out: Path = typer.Option(Path("out"), "--out", "-o", help="Run folder."),
        overrides: list[str] = typer.Argument(None, help="KEY=VALUE overrides of the demo profile."),
    ) -> None:
        """The whole study on bundled defaults, sized for a laptop CPU.

        Runs `ccai study` with the demo profile (src/ccai/studies/demo.yaml): the CCAI consultation, its
        public constitution and the project's standard one, SL-CAI + RL-CAI (DPO) on a few dozen prompts,
        and small seeded samples of every benchmark. A 135M model shows the plumbing, not alignment.
        For the paper's own analysis figures see `ccai reproduce`.

        Example: ccai demo --out out stages=[analysis,constitution]
        """
        with user_errors():
            _run(STUDIES / "demo.yaml", overrides or [], out)
