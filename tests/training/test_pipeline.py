"""End to end on the tiny model: `ccai train all` for two constitutions, resume, online RL, bad input."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

from ccai.cli import app
from ccai.constitution import Constitution, Principle
from ccai.training.parallel import plan_jobs, threads_per_job

RUNNER = CliRunner()


def _overrides(model: Path) -> list[str]:
    return [
        f"model={model}",
        "bf16=false",
        "data.red_team_prompts=4",
        "data.helpful_prompts=2",
        "sl.generation.max_new_tokens=6",
        "sl.generation.batch_size=4",
        "sl.train.batch_size=2",
        "sl.train.max_length=160",
        "sl.train.save_steps=2",
        "sl.train.lora=false",
        "sl.train.learning_rate=1e-3",
        "rl.generation.max_new_tokens=6",
        "rl.generation.batch_size=4",
        "rl.train.batch_size=2",
        "rl.train.max_length=400",
        "rl.train.save_steps=2",
        "rl.train.lora=false",
        "rl.train.learning_rate=1e-3",
        "rl.pm_train.batch_size=2",
        "rl.pm_train.max_length=400",
        "rl.pm_train.save_steps=2",
        "rl.soft_labels=binarise",
        "rl.beta=0.5",
        "rl.num_generations=2",
        "sl.quality.drop_truncated=false",  # a random tiny model never ends a reply within 6 tokens
        "data.max_pair_chars=400",
        "rl.pm_eval_pairs=4",
    ]


@pytest.fixture(scope="module")
def second_constitution(tmp_path_factory) -> Path:
    principles = [
        Principle(
            id="s0",
            comparison="Choose the response that is most polite.",
            critique_request="Say how the answer could be more polite.",
            revision_request="Rewrite the answer to be more polite.",
        )
    ]
    path = tmp_path_factory.mktemp("c2") / "polite.yaml"
    Constitution(name="Polite", principles=principles).approve(by="ccai tests").save(path)
    return path


@pytest.fixture(scope="module")
def trained(tiny_model, constitution_file, second_constitution, tmp_path_factory, shared_data):
    out = tmp_path_factory.mktemp("runs") / "all"
    config = out.parent / "train.yaml"
    config.write_text(yaml.safe_dump({"seed": 3, "sl": {"revisions": 1}}))
    result = RUNNER.invoke(
        app,
        [
            "train",
            "all",
            "--constitution",
            str(constitution_file),
            "--constitution",
            str(second_constitution),
            "--out",
            str(out),
            "--config",
            str(config),
            "-q",
            *_overrides(tiny_model),
        ],
    )
    assert result.exit_code == 0, result.output
    return out


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_train_all_writes_two_comparable_runs(trained, tiny_model, constitution_file, second_constitution):
    summary = json.loads((trained / "summary.json").read_text())
    assert sorted(summary) == ["polite", "test"]  # folders named after the constitution files
    runs = [trained / "test", trained / "polite"]
    splits = [json.loads((r / "data" / "split.json").read_text()) for r in runs]
    assert splits[0] == splits[1]  # same prompts for both constitutions
    for run, path in zip(runs, [constitution_file, second_constitution], strict=True):
        constitution = Constitution.load(path)
        state = json.loads((run / "state.json").read_text())["done"]
        assert state["sl_train"]["loss_after"] < state["sl_train"]["loss_before"]
        assert state["rl_train"]["loss_after"] < state["rl_train"]["loss_before"]
        assert state["sl_data"]["red_team"] == 4 and state["sl_data"]["helpful"] == 2
        rows = [json.loads(line) for line in (run / "data" / "sl_cai.jsonl").read_text().splitlines()]
        ids = {p.id for p in constitution.principles}
        assert all(set(r["principle_ids"]) <= ids for r in rows)
        assert sum(bool(r["principle_ids"]) for r in rows) == 4
        base, sl, rl = _weights(tiny_model), _weights(run / "sl" / "model"), _weights(run / "rl" / "model")
        key = "model.layers.0.self_attn.q_proj.weight"
        assert not torch.equal(base[key], sl[key]) and not torch.equal(sl[key], rl[key])
        card = (run / "rl" / "model" / "README.md").read_text()
        assert constitution.content_hash in card and f"principles: {len(constitution.principles)}" in card
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["seed"] == 3 and "trl" in manifest["versions"] and str(path) in manifest["inputs"]
        metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert {m["stage"] for m in metrics} == {"sl", "pm", "rl"}
        first_dpo = next(m for m in metrics if m["stage"] == "rl" and "loss" in m)
        assert first_dpo["loss"] == pytest.approx(math.log(2), abs=1e-4)  # what loss_before records
        assert state["rl_train"]["loss_before"] == pytest.approx(math.log(2))
        stored = yaml.safe_load((run / "config.yaml").read_text())
        if plan_jobs(2, "cpu") == 2:  # trained side by side, each run with its share of the cores
            assert stored["threads"] == threads_per_job(2)
        pairs = [json.loads(line) for line in (run / "data" / "rl_pairs.jsonl").read_text().splitlines()]
        ai = [p for p in pairs if p["source"] == "ai_harmless"]
        assert len(ai) == 4 and all(p["soft_label"] >= 0.5 and p["principle_id"] in ids for p in ai)
        human = [p for p in pairs if p["source"] == "human_helpful"]
        assert len(human) == 3 == state["rl_labels"]["human_helpful_pairs"]  # 40 % of the PM's pairs
        assert (run / "pm" / "model" / "config.json").is_file()
        # quality gates counted in state.json, the run summary and the model card
        assert state["sl_data"]["sft_rows"] + sum(state["sl_data"]["rows_dropped"].values()) == 6
        assert set(state["sl_data"]["revisions_rejected"]) >= {"truncated", "copies_critique", "repeated"}
        assert summary[run.name]["sl_data"]["rows_dropped"] == state["sl_data"]["rows_dropped"]
        assert "rows_dropped" in card and "revisions_rejected" in card
        for kind in ("harmless", "helpful"):
            assert state["pm_train"][f"heldout_{kind}_pairs"] == 4
            assert 0.0 <= state["pm_train"][f"heldout_{kind}_accuracy"] <= 1.0


class _Crash(Exception):
    pass


def test_interrupted_run_resumes_to_the_same_state(trained, tiny_model, constitution_file, tmp_path):
    """Crash mid-SFT (after checkpoint 2), and also lose half the generated data; resume; compare bit for bit.

    Bit-identical by construction: the resumed run uses the reference run's torch thread count (float sums
    are reduced in the same order only with the same number of threads: with 1 vs 2 threads one weight in
    8,192 differed by 1.2e-6), the same seeded batch order (the sampler's seed and the RNG states come back
    from the checkpoint), and weights plus optimizer state are restored exactly from safetensors/torch files.
    """
    from transformers import TrainerCallback

    from ccai.config import load_config
    from ccai.training.config import TrainingConfig
    from ccai.training.train import train

    class CrashAtFirstSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            raise _Crash(f"simulated crash at step {state.global_step}")

    reference = trained / "test"
    threads = yaml.safe_load((reference / "config.yaml").read_text())["threads"]
    assert threads is not None  # every run records the thread count it ran with
    config = load_config(
        TrainingConfig, None, [*_overrides(tiny_model), "seed=3", "sl.revisions=1", f"threads={threads}"]
    )
    out = tmp_path / "run"
    with pytest.raises(_Crash):
        train(config, constitution_file, out, stages=("sl",), progress=False, callbacks=[CrashAtFirstSave()])
    assert (out / "sl" / "checkpoints" / "checkpoint-2").is_dir()
    # also pretend generation died inside the second chunk: keep chunk 1 + a partial row of chunk 2
    state = json.loads((out / "state.json").read_text())
    del state["done"]["sl_data"]
    state["chunks"]["sl_data"] = state["chunks"]["sl_data"][:1]
    (out / "state.json").write_text(json.dumps(state))
    data = out / "data" / "sl_cai.jsonl"
    lines = data.read_text().splitlines()
    data.write_text("\n".join(lines[: state["chunks"]["sl_data"][0] + 1]) + "\n")
    with pytest.raises(FileExistsError, match="pass --resume"):
        train(config, constitution_file, out, stages=("sl",), progress=False)
    train(config, constitution_file, out, stages=("sl",), progress=False, resume=True)

    assert data.read_text() == (reference / "data" / "sl_cai.jsonl").read_text()
    resumed, straight = _weights(out / "sl" / "model"), _weights(reference / "sl" / "model")
    assert resumed.keys() == straight.keys()
    for key in straight:
        assert torch.equal(resumed[key], straight[key]), key
    steps = [
        json.loads(line)["step"]
        for line in (out / "metrics.jsonl").read_text().splitlines()
        if '"loss"' in line
    ]
    assert steps == sorted(set(steps))  # no step logged twice after the resume


def test_resume_with_other_config_and_online_rl(trained, tmp_path):
    """`ccai train rl` may change rl.* before RL ran; here: GRPO with the preference model as reward."""
    run = tmp_path / "copy"
    shutil.copytree(trained / "polite", run)
    state = json.loads((run / "state.json").read_text())
    for step in ("rl_pairs", "rl_labels", "pm_train", "rl_train"):
        del state["done"][step]
    state["chunks"].pop("rl_pairs", None)
    (run / "state.json").write_text(json.dumps(state))
    (run / "data" / "rl_samples.jsonl").unlink()  # leftovers (pm/, rl/ checkpoints) must be discarded

    bad = RUNNER.invoke(app, ["train", "rl", str(run), "seed=4"])
    assert bad.exit_code == 2 and "only rl.* settings" in bad.output
    result = RUNNER.invoke(app, ["train", "rl", str(run), "-q", "rl.method=grpo", "rl.train.epochs=0.5"])
    assert result.exit_code == 0, result.output
    done = json.loads((run / "state.json").read_text())["done"]
    assert done["rl_train"]["method"] == "grpo" and done["rl_train"]["steps"] >= 1
    assert done["rl_train"]["reward_first"] is not None and done["pm_train"]["resumed_from"] is None
    assert (run / "rl" / "model" / "model.safetensors").is_file()
    stored = yaml.safe_load((run / "config.yaml").read_text())
    assert stored["rl"]["method"] == "grpo"


def test_cli_refuses_bad_input(trained, constitution_file, tmp_path):
    existing = trained / "polite"
    again = RUNNER.invoke(
        app, ["train", "sl", "--constitution", str(constitution_file), "--out", str(existing)]
    )
    assert again.exit_code == 2 and "already exists" in again.output
    typo = RUNNER.invoke(
        app,
        [
            "train",
            "sl",
            "--constitution",
            str(constitution_file),
            "--out",
            str(tmp_path / "x"),
            "sl.revisons=2",
        ],
    )
    assert typo.exit_code == 2 and "revisons" in typo.output
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x", "principles": [{"id": "a"}]}')
    bad = RUNNER.invoke(app, ["train", "sl", "--constitution", str(broken), "--out", str(tmp_path / "y")])
    assert bad.exit_code == 2 and "broken.json" in bad.output
    assert not (tmp_path / "y").exists()


def test_recorded_64_prompt_run_matches_its_config():
    """docs/runs/train-all-64 holds the records of the timed CPU run; they must stay those of its config."""
    from ccai.config import load_config
    from ccai.training.config import TrainingConfig

    root = Path(__file__).parents[2] / "docs" / "runs" / "train-all-64"
    config = load_config(TrainingConfig, root / "measure.yaml")
    assert config.data.red_team_prompts == 64 and config.sl.revisions == 1
    for name in ("ccai-public", "ccai-standard"):
        stored = yaml.safe_load((root / name / "config.yaml").read_text())
        # the records predate keys added since (issue 15): the keys they have must still match
        data = config.data.model_dump()
        assert stored["seed"] == config.seed and stored["data"] == {k: data[k] for k in stored["data"]}
        generation = config.sl.generation.model_dump()
        assert stored["sl"]["generation"] == {k: generation[k] for k in stored["sl"]["generation"]}
        done = json.loads((root / name / "state.json").read_text())["done"]
        assert done["sl_data"]["red_team"] == 64 and done["rl_labels"]["pairs"] == 64
        assert done["sl_train"]["loss_after"] < done["sl_train"]["loss_before"]


def test_recorded_issue_15_run_matches_its_config():
    """The timed run with the helpfulness arm, the gates and packed pair rows: the same config, every key."""
    from ccai.config import load_config
    from ccai.training.config import TrainingConfig

    root = Path(__file__).parents[2] / "docs" / "runs" / "train-all-64"
    config = load_config(TrainingConfig, root / "measure.yaml")
    for name in ("public", "standard"):
        folder = root / "issue-15-2026-12-03" / name
        stored = yaml.safe_load((folder / "config.yaml").read_text())
        for section in ("data", "sl", "rl"):
            assert stored[section] == getattr(config, section).model_dump(mode="json"), section
        done = json.loads((folder / "state.json").read_text())["done"]
        labels = done["rl_labels"]
        assert labels["ai_harmless_pairs"] == 64 and labels["human_helpful_pairs"] == 43
        assert done["pm_train"]["heldout_helpful_pairs"] == done["pm_train"]["heldout_harmless_pairs"] == 32
        assert sum(done["sl_data"]["rows_dropped"].values()) + done["sl_data"]["sft_rows"] == 80


def test_a_draft_constitution_is_refused_unless_accepted(tiny_model, tmp_path):
    """No person approved it: training says so and stops, or trains when told and the card says so."""
    from ccai.config import load_config
    from ccai.training.config import TrainingConfig
    from ccai.training.train import train

    principle = Principle(id="d0", comparison="Choose the response that is kind.",
                          critique_request="How could it be kinder?", revision_request="Make it kinder.")
    draft = tmp_path / "draft.json"
    Constitution(name="Draft", principles=[principle]).save(draft)
    config = load_config(TrainingConfig, None, [*_overrides(tiny_model), "data.red_team_prompts=2",
                                                "data.helpful_prompts=0"])
    with pytest.raises(ValueError, match="draft no person has approved.*ccai constitution approve"):
        train(config, draft, tmp_path / "refused", stages=("sl",), progress=False)
    assert not (tmp_path / "refused").exists()
    accepted = config.model_copy(update={"accept_unreviewed": True})
    result = train(accepted, draft, tmp_path / "run", stages=("sl",), progress=False)
    card = (result.sl_model / "README.md").read_text()
    assert "draft: not reviewed by a person" in card and "constitution_reviewed: false" in card
