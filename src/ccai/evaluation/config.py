"""The evaluation run's settings (YAML + ``key=value`` overrides, validated; unknown keys are errors)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ccai.config import Section, StageConfig

SINGLE_MODEL_TASKS = ("mmlu", "gsm8k", "bbq", "opinionqa", "safety")
MULTI_MODEL_TASKS = ("helpfulness", "harmlessness")
#: tasks that read the constitution(s) and, like the pairwise ones, need two models and a judge
CONSTITUTION_TASKS = ("adherence",)
ALL_TASKS = SINGLE_MODEL_TASKS + MULTI_MODEL_TASKS + CONSTITUTION_TASKS
JUDGED_TASKS = MULTI_MODEL_TASKS + CONSTITUTION_TASKS


class MMLUSettings(Section):
    shots: int = Field(5, ge=0, le=5)


class GSM8KSettings(Section):
    """The standard 8-shot chain-of-thought protocol (lm-eval's gsm8k_cot); fewer shots only to save time."""

    shots: int = Field(8, ge=0, le=8)
    #: "raw": a local model continues the raw few-shot text (the harness default); "chat": exemplars as
    #: chat turns for every model (servers always get this form)
    form: Literal["raw", "chat"] = "raw"
    max_new_tokens: int = Field(256, ge=1)


class AnswerSettings(Section):
    """Free-form answers for the safety prompts (greedy) and the pairwise comparisons (sampled)."""

    max_new_tokens: int = Field(128, ge=1)
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(0.9, gt=0, le=1)


class AdherenceSettings(Section):
    """Constitution adherence (``ccai.evaluation.adherence``): which principles, which prompts for each."""

    #: ``NAME=FILE`` (or ``FILE``) of each constitution to test; a study fills in its own
    constitutions: list[str] = Field(default_factory=list)
    #: principles per constitution (seeded, stratified by framing); None = ``limits.adherence`` / ``limit``
    principles: int | None = Field(None, ge=1)
    #: nearest red-team / helpful pool prompts per principle (MiniLM cosine)
    pool_prompts: int = Field(2, ge=0)
    #: scenarios per principle written from its source statements by a fixed template
    scenarios: int = Field(1, ge=0)
    #: pool prompts embedded per pool (a seeded sample; None = all)
    pool_size: int | None = Field(400, ge=1)
    #: a model that writes test prompts per principle (a spec like the models': ``openai:URL#NAME``, a
    #: folder, ``smollm2``); None = no written prompts. It may not be a contestant (a model writing its own
    #: test is a leak) unless ``allow_contestant_judge`` is set, as for the judge.
    scenario_writer: str | None = None
    #: prompts the writer is asked for per principle; None = 2 with a writer, 0 without
    generated: int | None = Field(None, ge=0)

    def generated_count(self) -> int:
        """How many written prompts to ask for per principle (0: no writer is used)."""
        if not self.scenario_writer:
            return 0
        return 2 if self.generated is None else self.generated

    @model_validator(mode="after")
    def _writer_named(self) -> AdherenceSettings:
        if self.generated and not self.scenario_writer:
            raise ValueError(
                f"generated={self.generated} needs a scenario_writer (a model that writes the prompts)"
            )
        return self

    @field_validator("constitutions")
    @classmethod
    def _named(cls, value: list[str]) -> list[str]:
        for spec in value:
            if not spec.strip() or spec.strip().endswith("="):
                raise ValueError(f"expected NAME=FILE, got {spec!r}")
        return value


class EvalConfig(StageConfig):
    """What ``ccai eval`` runs. ``limit`` caps each task's sample; ``limits`` per task."""

    models: list[str] = Field(default_factory=list)
    tasks: list[str] = Field(default_factory=lambda: list(ALL_TASKS))
    limit: int | None = Field(None, ge=1)
    limits: dict[str, int] = Field(default_factory=dict)
    #: the model that judges pairwise answers; required for helpfulness/harmlessness with two or more
    #: models, and it may not be a contestant or a contestant's RL feedback model (see allow_contestant_judge)
    judge: str | None = None
    #: let the judge be a contestant or the RL feedback model of one (the report then says so in red)
    allow_contestant_judge: bool = False
    #: "hard": Elo and win rates from win/tie/loss decisions; "soft": from the judge's probabilities
    judge_mode: Literal["hard", "soft"] = "hard"
    #: half-width of the tie band around 0.5 of the order-averaged P(A wins)
    tie_band: float = Field(0.01, ge=0, lt=0.5)
    #: the judge writes its verdict as text instead of giving log-probabilities (chat-only hosted models)
    judge_text_verdicts: bool = False
    #: held-out human pairs per dimension on which the judge's (and RL labeller's) agreement with people is
    #: measured (HH-RLHF test pairs; capped by ``limit``); 0 = skip
    agreement_pairs: int = Field(200, ge=0)
    #: keep only the HH / AlpacaEval prompts that the training stage holds out (its per-id hash split with
    #: this fraction and seed: the training defaults); false = all prompts
    heldout_only: bool = True
    heldout_fraction: float = Field(0.2, gt=0, lt=1)
    heldout_split_seed: int = 0
    device: str = "cpu"
    #: torch CPU threads (None: torch's default). On a busy shared machine 1 thread can be several times
    #: faster than oversubscribed OpenMP threads.
    threads: int | None = Field(None, ge=1)
    batch_size: int = Field(8, ge=1)
    bootstrap: int = Field(1000, ge=0)
    #: largest difference to the reference model that counts as "no difference" (TOST), per measure key
    #: (e.g. ``mmlu.accuracy: 3``); unlisted keys use ``stats.default_margin`` (5 points for percentages
    #: and bias scores, 0.02 for representativeness, 50 Elo)
    equivalence_margins: dict[str, float] = Field(default_factory=dict)
    mmlu: MMLUSettings = Field(default_factory=MMLUSettings)
    gsm8k: GSM8KSettings = Field(default_factory=GSM8KSettings)
    answers: AnswerSettings = Field(default_factory=AnswerSettings)
    adherence: AdherenceSettings = Field(default_factory=AdherenceSettings)

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if t not in ALL_TASKS]
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; choose from {list(ALL_TASKS)}")
        if not value:
            raise ValueError("no tasks selected")
        return list(dict.fromkeys(value))

    @field_validator("limits")
    @classmethod
    def _known_limits(cls, value: dict[str, int]) -> dict[str, int]:
        for task, n in value.items():
            if task not in ALL_TASKS:
                raise ValueError(f"limits.{task}: unknown task; choose from {list(ALL_TASKS)}")
            if n < 1:
                raise ValueError(f"limits.{task}: expected a positive number, got {n}")
        return value

    def heldout_split(self) -> tuple[float, int] | None:
        return (self.heldout_fraction, self.heldout_split_seed) if self.heldout_only else None

    def margin_for(self, key: str) -> float:
        from ccai.evaluation.stats import default_margin

        return self.equivalence_margins.get(key, default_margin(key))

    def limit_for(self, task: str) -> int | None:
        return self.limits.get(task, self.limit)
