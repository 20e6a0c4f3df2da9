"""The training run configuration: one YAML file (every key optional), CLI ``key=value`` overrides on top.

Defaults are sized for a CPU demo run of SmolLM2-135M (64 red-team prompts, one revision, LoRA). The
resolved copy is written to ``<run>/config.yaml``; a resumed run must have the same resolved config.

Example ``train.yaml``::

    model: smollm2
    seed: 0
    data: {red_team_prompts: 64, helpful_prompts: 96}
    sl: {revisions: 1, generation: {max_new_tokens: 64}}
    rl: {method: dpo, soft_labels: soft}
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ccai.config import Section, StageConfig


class DataConfig(Section):
    """Where prompts come from and how many; the held-out split is seeded and never trained on."""

    red_team: str = "hh_rlhf/red_team_prompts_harmless_base_test.jsonl"
    helpful: str = "alpaca_eval/alpaca_eval.jsonl"
    red_team_prompts: int = Field(64, ge=1, description="training red-team prompts used")
    helpful_prompts: int = Field(
        96, ge=0, description="helpful prompts mixed into SFT (default: 40 % red-team, as in CAI)"
    )
    helpful_prefs: str = Field(
        "helpfulness_prefs", description="human helpfulness comparisons (HH-RLHF helpful test splits)"
    )
    harmless_prefs: str = Field(
        "hh_rlhf/harmless-base_test.jsonl.gz", description="human harmlessness comparisons (PM evaluation)"
    )
    max_pair_chars: int = Field(1200, ge=50, description="longer human comparisons are skipped (CPU budget)")
    generated_red_team: int = Field(
        0, ge=0, description="extra red-team prompts written few-shot by the model from the training pool"
    )
    heldout_fraction: float = Field(0.2, ge=0.0, lt=1.0)
    split_seed: int = 0
    max_prompt_chars: int = Field(400, ge=10, description="longer prompts are skipped (CPU budget)")


class GenerationConfig(Section):
    max_new_tokens: int = Field(64, ge=1, le=4096)
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    batch_size: int = Field(32, ge=1, description="prompts per generate call and per resumable chunk")


class OptimConfig(Section):
    """Shared by every trainer (SFT, reward model, DPO, GRPO/RLOO)."""

    lora: bool = True
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    learning_rate: float = Field(2e-4, gt=0)
    epochs: float = Field(1.0, gt=0)
    batch_size: int = Field(4, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_length: int = Field(512, ge=16)
    save_steps: int = Field(8, ge=1, description="checkpoint every N optimiser steps (for resume)")
    warmup_ratio: float = Field(0.0, ge=0.0, lt=1.0)


class QualityConfig(Section):
    """SL-CAI data-quality gates (ccai.training.quality); every rejection is counted in state.json."""

    drop_truncated: bool = Field(True, description="drop targets cut off at max_new_tokens")
    trim_truncated: bool = Field(
        False, description="cut a cut-off target back to its last complete sentence instead of dropping it"
    )
    min_trimmed_share: float = Field(
        0.5, gt=0.0, le=1.0, description="trim only when the complete sentences keep this share of the text"
    )
    copy_similarity: float = Field(
        0.8, gt=0.0, le=1.0, description="a revision this similar to the critique or a request is a copy"
    )
    max_repeated: float = Field(
        0.5, gt=0.0, le=1.0, description="share of repeated word 3-grams above which text is degenerate"
    )


class SLConfig(Section):
    revisions: int = Field(1, ge=1, le=8, description="critique -> revision rounds per prompt")
    few_shot: int = Field(1, ge=0, le=2, description="project-written demonstrations prepended")
    generation: GenerationConfig = GenerationConfig()
    critique_max_new_tokens: int | None = Field(None, ge=1, description="default: generation.max_new_tokens")
    train: OptimConfig = OptimConfig()
    measure_loss: bool = Field(True, description="training-set loss before and after (first 32 rows)")
    quality: QualityConfig = QualityConfig()


class RLConfig(Section):
    method: Literal["dpo", "grpo", "rloo", "none"] = "dpo"
    prompts: int | None = Field(None, ge=1, description="RL prompts; default = data.red_team_prompts")
    generation: GenerationConfig = GenerationConfig(temperature=1.0)
    feedback_model: str = Field("base", description="'base', 'sl', a model folder, or openai:URL#MODEL")
    cot: bool = Field(False, description="chain-of-thought labels, clamped to [clamp_low, clamp_high]")
    cot_max_new_tokens: int = Field(64, ge=1)
    clamp_low: float = Field(0.4, ge=0.0, le=0.5)
    clamp_high: float = Field(0.6, ge=0.5, le=1.0)
    soft_labels: Literal["soft", "binarise"] = "soft"
    min_margin: float = Field(0.0, ge=0.0, lt=0.5, description="binarise: drop pairs with |p - 0.5| below")
    beta: float = Field(0.1, gt=0)
    kl_beta: float | None = Field(
        None, ge=0.0, description="grpo/rloo KL coefficient; default TRL's (grpo 0.0, rloo 0.05)"
    )
    helpful_fraction: float = Field(
        0.4, ge=0.0, lt=1.0, description="share of human helpfulness comparisons in the PM and DPO pairs"
    )
    revision_pairs: bool = Field(
        False, description="also DPO pairs 'final revision preferred over initial answer' (HF recipe)"
    )
    few_shot: int = Field(0, ge=0, le=2, description="worked A/B examples prepended to the labeller")
    pm_eval_pairs: int = Field(
        32, ge=0, description="held-out human pairs of each kind (harmless, helpful) the PM is scored on"
    )
    reward_model: bool = Field(True, description="train the preference model (always on for grpo/rloo)")
    pm_train: OptimConfig = OptimConfig(learning_rate=1e-4)
    train: OptimConfig = OptimConfig(learning_rate=5e-5)
    num_generations: int = Field(4, ge=2, description="grpo/rloo: completions per prompt")
    measure_loss: bool = Field(True, description="DPO loss, first 32 pairs after training (before: ln 2)")


class TrainingConfig(StageConfig):
    """One run: SL-CAI then RL-CAI from one base model, one constitution, one seed."""

    model: str = Field("smollm2", description="'smollm2' or a local Hugging Face model folder")
    generator: str | None = Field(None, description="backend for data generation; default: the model itself")
    device: str = "cpu"
    bf16: Literal["auto"] | bool = Field("auto", description="auto: only where the CPU/GPU has bf16 units")
    threads: int | None = Field(
        None, ge=1, description="torch threads (default: torch's count when the run starts; kept on resume)"
    )
    accept_unreviewed: bool = Field(
        False, description="train on a constitution no person approved (the model card says so)"
    )
    principle_sampling: Literal["uniform", "weighted"] = Field(
        "uniform", description="weighted: principles drawn in proportion to their consensus weight"
    )
    data: DataConfig = DataConfig()
    sl: SLConfig = SLConfig()
    rl: RLConfig = RLConfig()

    @model_validator(mode="after")
    def _needs_pm(self) -> TrainingConfig:
        if self.rl.method in ("grpo", "rloo") and not self.rl.reward_model:
            raise ValueError(
                f"rl.method={self.rl.method} uses the preference model: set rl.reward_model=true"
            )
        return self
