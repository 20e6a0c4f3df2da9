"""Runs over several processes: the sharing helpers on a real gloo group, and a 2-process `accelerate
launch` of `ccai train all` on the tiny model that must end with one set of files and one trained model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from multiprocessing import get_context
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import ccai
from ccai.training import parallel
from ccai.training.distributed import SINGLE, Ranks, gather, map_chunks, on_main


def test_one_process_helpers_are_plain_calls():
    assert list(map_chunks(["a", "b", "c"], lambda chunk, i: f"{chunk}{i}", SINGLE, start=1)) == [
        (1, "b1"),
        (2, "c2"),
    ]
    assert on_main(lambda: 7, SINGLE) == 7 and gather(3, SINGLE) == [3]
    with pytest.raises(ZeroDivisionError):
        list(map_chunks([1], lambda chunk, i: chunk / 0, SINGLE))


def test_accelerate_cpu_flag_starting_one_process_is_said(monkeypatch):
    from ccai.training.distributed import current

    for name in ("WORLD_SIZE", "RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")  # what `accelerate launch --cpu --num_processes 2` sets
    with pytest.warns(UserWarning, match="--multi_gpu"):
        assert current("cpu") == SINGLE
    monkeypatch.delenv("MASTER_ADDR")  # --num_processes 1: nothing to say
    assert current("cpu") == SINGLE


def test_launched_runs_go_one_after_the_other(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert parallel.plan_jobs(2, "cpu") == 1
    with pytest.raises(ValueError, match="share each run"):
        parallel.plan_jobs(2, "cpu", jobs=2)


def _worker(rank: int, init: str, out: str) -> None:
    """One of two gloo processes: which chunks it computed, what every process got back, the errors."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    ranks = Ranks(rank, 2, rank)
    done: list[int] = []

    def work(chunk: list[int], index: int) -> list[int]:
        done.append(index)
        return [x * 10 for x in chunk]

    chunks = [[0, 1], [2], [3, 4], [5], [6]]
    got = list(map_chunks(chunks, work, ranks, start=1))

    def fail_on_rank_1(chunk: list[int], index: int) -> list[int]:
        if rank == 1:
            raise ValueError(f"bad chunk {index}")
        return chunk

    errors = []
    for call in (
        lambda: list(map_chunks(chunks, fail_on_rank_1, ranks)),
        lambda: on_main(lambda: 1 / 0, ranks),
    ):
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - recorded for the test to read
            errors.append(f"{type(exc).__name__}: {exc}")
    result = {"done": done, "got": got, "main": on_main(lambda: rank + 41, ranks), "errors": errors}
    Path(out, f"{rank}.json").write_text(json.dumps(result))
    dist.destroy_process_group()


def test_two_gloo_processes_share_chunks_and_fail_together(tmp_path):
    ctx = get_context("spawn")
    init = f"file://{tmp_path / 'rendezvous'}"
    procs = [ctx.Process(target=_worker, args=(rank, init, str(tmp_path))) for rank in (0, 1)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    zero, one = (json.loads((tmp_path / f"{r}.json").read_text()) for r in (0, 1))
    assert zero["done"] == [1, 3] and one["done"] == [2, 4]  # round by round from chunk 1
    expected = [[1, [20]], [2, [30, 40]], [3, [50]], [4, [60]]]
    assert zero["got"] == one["got"] == expected  # every process gets every chunk, in order
    assert zero["main"] == one["main"] == 41
    assert one["errors"][0] == "ValueError: bad chunk 1"
    assert zero["errors"][0] == "RuntimeError: process 1 failed on chunk 1: ValueError: bad chunk 1"
    assert zero["errors"][1].startswith("ZeroDivisionError")
    assert one["errors"][1] == "RuntimeError: process 0 failed: ZeroDivisionError: division by zero"


OVERRIDES = [
    "bf16=false",
    "device=cpu",
    "threads=1",
    "seed=3",
    "data.red_team_prompts=4",
    "data.helpful_prompts=2",
    "data.max_pair_chars=400",
    "sl.generation.max_new_tokens=6",
    "sl.generation.batch_size=2",  # 3 chunks: shared out as 0, 1 | 2
    "sl.quality.drop_truncated=false",
    "sl.measure_loss=false",
    "rl.generation.max_new_tokens=6",
    "rl.generation.batch_size=2",
    "rl.train.max_length=128",
    "rl.pm_train.max_length=128",
    "rl.pm_eval_pairs=1",
    "rl.measure_loss=false",
]


@pytest.mark.slow
def test_accelerate_launch_two_processes_one_set_of_files(
    tiny_model, constitution_file, tmp_path, shared_data
):
    out = tmp_path / "runs"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(Path(ccai.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
        "CCAI_DATA_DIR": str(shared_data),
    }
    # accelerate's --cpu alone starts one process (its multi-CPU mode wants mpirun); --multi_gpu starts
    # torchrun's N processes, and device=cpu makes them join a gloo group.
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    launch += ["--main_process_port", "0", "-m", "ccai.cli", "train", "all", "-q"]
    launch += ["--constitution", str(constitution_file), "--out", str(out), f"model={tiny_model}", *OVERRIDES]
    done = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.count("run: ") == 1  # one report, from process 0

    run = out / constitution_file.stem
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["config.yaml", "manifest.json", "log.jsonl", "summary.json", run.name]
    )
    events = [json.loads(line)["event"] for line in (run / "log.jsonl").read_text().splitlines()]
    steps = ["split", "sl_data", "sl_train", "rl_pairs", "rl_labels", "pm_train", "rl_train"]
    assert events == [f"{step}_done" for step in steps]  # each step written once
    state = json.loads((run / "state.json").read_text())
    assert state["chunks"] == {"sl_data": [2, 2, 2], "rl_pairs": [2, 2]}
    for name in ("sl_cai", "rl_samples", "rl_pairs"):
        ids = [json.loads(line)["id"] for line in (run / "data" / f"{name}.jsonl").read_text().splitlines()]
        assert len(ids) == len(set(ids)), name
    assert state["done"]["sl_data"]["rows"] == 6 and state["done"]["rl_labels"]["ai_harmless_pairs"] == 4
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for stage in ("sl", "pm", "rl"):
        logged = [m["step"] for m in metrics if m["stage"] == stage and "loss" in m]
        assert logged == list(range(1, state["done"][f"{stage}_train"]["steps"] + 1)), stage
    assert json.loads((out / "summary.json").read_text())[run.name]["model"] == str(run / "rl" / "model")

    # the trained models: LoRA merged in, each stage moved the weights, the cards name the process count
    key = "model.layers.0.self_attn.q_proj.weight"
    base, sl, rl = (
        load_file(str(d / "model.safetensors"))[key] for d in (tiny_model, run / "sl/model", run / "rl/model")
    )
    assert not torch.equal(base, sl) and not torch.equal(sl, rl)
    assert "processes: 2" in (run / "rl" / "model" / "README.md").read_text()

    # sharded generation made the data set one process makes (same chunks, same per-chunk seeds)
    from ccai.config import load_config
    from ccai.training.config import TrainingConfig
    from ccai.training.train import train

    config = load_config(TrainingConfig, None, [f"model={tiny_model}", *OVERRIDES, "sl.train.epochs=0.01"])
    alone = train(config, constitution_file, tmp_path / "alone", stages=("sl",), progress=False)
    assert (alone.run_dir / "data" / "sl_cai.jsonl").read_text() == (
        run / "data" / "sl_cai.jsonl"
    ).read_text()
