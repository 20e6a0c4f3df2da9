"""Two training runs side by side (one thread each) against the same two runs one after the other.

Why it matters: ``ccai train all`` trains the public and the standard constitution. A 135M model does not
keep two CPU threads busy, so ``ccai.training.parallel`` runs the constitutions in separate processes with
``cores // jobs`` threads each. This measures that choice on the same work, in the same run:

- baseline: two workloads one after the other, each in a fresh process with all cores' threads;
- side by side: the same two workloads at once via ``run_side_by_side``, ``cores // 2`` threads each.

A workload is what a training run spends its time on: one batch of sampled generation (SmolLM2, 16 red-team
prompts) and a few LoRA fine-tuning steps (forward + backward + AdamW). Printed: wall seconds of both (process
start and model loading included), the seconds of each part, and the ratio. Measured on 2 AMD Zen 3 cores
(2026-12-01): 47.9 s vs 45.9 s = 1.04x overall; generation 1.23x, LoRA steps 1.07x. An ad-hoc measurement
earlier that day, before the generation speed-ups and with LoRA steps of 8 x 160 tokens, gave 1.49x and
1.42x: how much side-by-side runs gain depends on the shapes; see docs/training.md for whole runs.

    python bench/side_by_side.py [--model smollm2] [--max-new-tokens 32] [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def workload(model: str, threads: int, max_new_tokens: int, steps: int, seed: int) -> dict[str, float]:
    """Generation then LoRA steps in this process with ``threads`` torch threads; seconds of each."""
    import torch
    from peft import LoraConfig, get_peft_model

    from ccai.formats.hf import user
    from ccai.models.backends import TransformersBackend
    from ccai.models.prepare import resolve_model
    from ccai.training.config import DataConfig
    from ccai.training.data import split_prompts

    torch.set_num_threads(threads)
    path = resolve_model(model)
    backend = TransformersBackend(path, batch_size=16)
    prompts = split_prompts(DataConfig(red_team_prompts=16, helpful_prompts=0), seed).red_team
    start = time.perf_counter()
    backend.generate([user(p.text) for p in prompts], max_new_tokens=max_new_tokens, seed=seed)
    generation = time.perf_counter() - start

    torch.manual_seed(seed)
    model_ = get_peft_model(
        backend.model.train(),
        LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"),
    )
    optimiser = torch.optim.AdamW([p for p in model_.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(0, backend.tokenizer.vocab_size, (4, 192))
    start = time.perf_counter()
    for _ in range(steps):
        model_(input_ids=ids, labels=ids).loss.backward()
        optimiser.step()
        optimiser.zero_grad()
    return {"generation_s": generation, "training_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from ccai.training.parallel import cpu_count, run_side_by_side

    cores = cpu_count()
    work = (args.model, args.max_new_tokens, args.steps, args.seed)

    def calls(threads: int) -> list[tuple[tuple, dict]]:
        return [((args.model, threads, *work[1:]), {}) for _ in range(2)]

    start = time.perf_counter()
    sequential = run_side_by_side(workload, calls(cores), jobs=1)
    sequential_s = time.perf_counter() - start
    start = time.perf_counter()
    parallel = run_side_by_side(workload, calls(max(1, cores // 2)), jobs=2)
    parallel_s = time.perf_counter() - start
    report = {
        "cores": cores,
        "one_after_the_other": {"wall_s": round(sequential_s, 1), "threads": cores, "runs": sequential},
        "side_by_side": {"wall_s": round(parallel_s, 1), "threads": max(1, cores // 2), "runs": parallel},
        "ratio": round(sequential_s / parallel_s, 2),
    }
    print(json.dumps(report, indent=2))
    print(
        f"two runs: one after the other {sequential_s:.1f} s vs side by side {parallel_s:.1f} s "
        f"-> {report['ratio']}x"
    )


if __name__ == "__main__":
    main()
