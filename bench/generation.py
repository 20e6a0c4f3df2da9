"""CAI data-generation throughput, and the one-pass A/B labeller against a naive two-pass one.

1. Generation: the same red-team prompts and sampling settings, generated (a) by ccai's batched
   ``TransformersBackend.generate`` and (b) one prompt at a time with plain ``model.generate`` (the
   baseline), in the same process. Printed: useful tokens/s of each (tokens up to EOS) and the ratio.
2. Labelling: P(A) for the same A/B questions (a) with ``choice_probs`` (one forward pass) and (b) naively,
   scoring the continuations "A" and "B" with two separate passes. Printed: seconds per question and the
   ratio, plus the largest difference between the two (they must agree).
3. Shared prefix: SL-CAI critique prompts (few-shot demos + prompt + answer + critique request), generated
   with the demos' key/value cache computed once per call against the same call recomputing it for every
   prompt (``min_shared_prefix = 0``), same batches and seeds. Printed: tokens/s of each, the ratio, and
   how many replies are identical.
4. Labelling through an OpenAI-compatible server (``ccai.models.serve`` on loopback, the same model): the
   same A/B questions sent one request at a time (the labeller's path before issue 15, concurrency 1)
   against ``choice_probs_batch`` with ``--concurrency`` requests in flight, which the server scores in
   batched forward passes; the two alternate for ``--rounds`` rounds (a shared machine's load drifts).
   Printed: each round's seconds, the best per question of each and their ratio, the median ratio of the
   rounds, the largest difference between the two sets of probabilities and the mean server batch.

    nice python bench/generation.py                      # SmolLM2-135M, 32 prompts, 64 new tokens
    nice python bench/generation.py --only http          # just part 4 (labelling over HTTP)
    python bench/generation.py --prompts 16 --max-new-tokens 32 --batch-size 16 --model /path/to/hf_model

Goal (issue 5): batched generation >= 5x the one-at-a-time baseline on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CRITIQUE = "Identify specific ways in which the last answer is harmful, unethical or dangerous."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["all", "http"], default="all")
    parser.add_argument("--http-questions", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    import torch

    from ccai.formats.hf import user
    from ccai.models.backends import TransformersBackend
    from ccai.models.prepare import resolve_model
    from ccai.training.config import DataConfig
    from ccai.training.data import split_prompts

    path = resolve_model(args.model)
    backend = TransformersBackend(path, batch_size=args.batch_size)
    prompts = split_prompts(DataConfig(red_team_prompts=args.prompts, helpful_prompts=0), args.seed).red_team
    if args.only == "http":
        http = http_labelling(backend, path, args)
        print(
            json.dumps({"model": str(path), "torch_threads": torch.get_num_threads(), "http": http}, indent=2)
        )
        print(_http_line(http))
        return
    chats = [user(p.text) for p in prompts]
    settings = {"max_new_tokens": args.max_new_tokens, "temperature": 0.7, "top_p": 0.9}

    backend.generate(chats[:2], seed=args.seed, **settings)  # warm-up (allocations, kernels)
    backend.tokens_generated = 0
    start = time.perf_counter()
    backend.generate(chats, seed=args.seed, **settings)
    batched_s = time.perf_counter() - start
    batched_tokens = backend.tokens_generated

    tok, model, eos = backend.tokenizer, backend.model, backend.tokenizer.eos_token_id
    baseline_tokens = 0
    start = time.perf_counter()
    for k, chat in enumerate(chats):
        ids = tok(backend.render(chat), return_tensors="pt", add_special_tokens=False)
        torch.manual_seed(args.seed + k)
        with torch.no_grad():
            out = model.generate(
                **ids,
                do_sample=True,
                temperature=0.7,
                top_p=0.9,
                top_k=0,
                max_new_tokens=args.max_new_tokens,
                pad_token_id=eos,
            )
        new = out[0, ids["input_ids"].shape[1] :].tolist()
        baseline_tokens += new.index(eos) if eos in new else len(new)
    baseline_s = time.perf_counter() - start

    batched_rate, baseline_rate = batched_tokens / batched_s, baseline_tokens / baseline_s
    report = {
        "model": str(path),
        "torch_threads": torch.get_num_threads(),
        "prompts": len(chats),
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "batched": {
            "seconds": round(batched_s, 2),
            "tokens": batched_tokens,
            "tokens_per_s": round(batched_rate, 1),
        },
        "one_at_a_time": {
            "seconds": round(baseline_s, 2),
            "tokens": baseline_tokens,
            "tokens_per_s": round(baseline_rate, 1),
        },
        "ratio": round(batched_rate / baseline_rate, 2),
    }

    question = (
        "Here is a conversation.\n\nPerson: {p}\n\nChoose the response that is least harmful.\n\n"
        "Options:\n(A) I can't help with that, but here is a safer idea.\n(B) {p} Sure, here is how.\n\n"
        "Answer with (A) or (B)."
    )
    questions = [user(question.format(p=p.text)) for p in prompts[: args.questions]]
    prefix = "The answer is: ("
    backend.choice_probs(questions[0], ["A", "B"], prefix)  # warm-up
    start = time.perf_counter()
    one_pass = [backend.choice_probs(q, ["A", "B"], prefix)[0] for q in questions]
    one_pass_s = (time.perf_counter() - start) / len(questions)
    start = time.perf_counter()
    naive = []
    for q in questions:
        context = backend.render(q, prefix)
        la, lb = backend.logprobs([context], ["A"])[0], backend.logprobs([context], ["B"])[0]
        naive.append(math.exp(la) / (math.exp(la) + math.exp(lb)))
    naive_s = (time.perf_counter() - start) / len(questions)
    report["labeller"] = {
        "questions": len(questions),
        "one_pass_s_per_question": round(one_pass_s, 3),
        "two_pass_s_per_question": round(naive_s, 3),
        "ratio": round(naive_s / one_pass_s, 2),
        "max_abs_difference": max(abs(a - b) for a, b in zip(one_pass, naive, strict=True)),
    }
    from ccai.training.sl_cai import demo_messages, load_demos

    demos = demo_messages(load_demos(), 1)
    critiques = [
        [*demos, *chat, {"role": "assistant", "content": "Sure, here is how."}, *user(CRITIQUE)]
        for chat in chats
    ]
    timings = {}
    replies = {}
    for name, shortest in (("shared_prefix", backend.min_shared_prefix), ("recomputed", 0)):
        backend.min_shared_prefix = shortest
        backend.tokens_generated = 0
        start = time.perf_counter()
        replies[name] = backend.generate(critiques, seed=args.seed, **settings)
        timings[name] = backend.tokens_generated / (time.perf_counter() - start)
    report["few_shot_prefix"] = {
        "prompts": len(critiques),
        "shared_prefix_tokens_per_s": round(timings["shared_prefix"], 1),
        "recomputed_tokens_per_s": round(timings["recomputed"], 1),
        "ratio": round(timings["shared_prefix"] / timings["recomputed"], 2),
        "identical_replies": sum(a == b for a, b in zip(*replies.values(), strict=True)),
    }
    report["http"] = http_labelling(backend, path, args)
    print(json.dumps(report, indent=2))
    print(
        f"generation: batched {batched_rate:.1f} tokens/s vs one-at-a-time {baseline_rate:.1f} tokens/s "
        f"-> {report['ratio']}x (goal >= 5x)"
    )
    print(
        f"labeller: one pass {one_pass_s * 1000:.0f} ms vs two passes {naive_s * 1000:.0f} ms per question "
        f"-> {report['labeller']['ratio']}x"
    )
    few = report["few_shot_prefix"]
    print(
        f"few-shot prompts: shared prefix {few['shared_prefix_tokens_per_s']} tokens/s vs recomputed "
        f"{few['recomputed_tokens_per_s']} tokens/s -> {few['ratio']}x "
        f"({few['identical_replies']}/{few['prompts']} replies identical)"
    )

    print(_http_line(report["http"]))


def http_labelling(backend, path, args) -> dict:  # noqa: ANN001
    """Part 4: the labeller's questions through the loopback server, one at a time vs concurrent."""
    from ccai.constitution import Principle
    from ccai.models.backends import OpenAIBackend
    from ccai.models.serve import BackgroundServer, create_app
    from ccai.training.config import DataConfig
    from ccai.training.data import split_prompts
    from ccai.training.feedback import OPTIONS, PREFIX, FeedbackLabeller

    principle = Principle(
        id="p",
        comparison="Choose the response that is less harmful.",
        critique_request="c",
        revision_request="r",
    )
    n = args.http_questions
    prompts = split_prompts(DataConfig(red_team_prompts=n, helpful_prompts=0), args.seed + 1).red_team
    labeller = FeedbackLabeller.__new__(FeedbackLabeller)
    labeller.cot, labeller.demos = False, []
    questions = [
        labeller.question(
            p.text, "I can't help with that, but here is a safer idea.", "Sure, here is how.", principle
        )
        for p in prompts
    ]
    app = create_app(path, model_name="bench", backend=backend)
    one_s, batched_s, sizes = [], [], []
    with BackgroundServer(app) as url:
        single = OpenAIBackend(url, "bench", concurrency=1)
        many = OpenAIBackend(url, "bench", concurrency=args.concurrency)
        single.choice_probs(questions[0], OPTIONS, PREFIX)  # warm-up
        # alternate the two paths (a shared machine's load drifts; each round sees about the same load)
        for _ in range(args.rounds):
            start = time.perf_counter()
            one = [single.choice_probs(q, OPTIONS, PREFIX)[0] for q in questions]
            one_s.append(time.perf_counter() - start)
            worker = next(iter(app.state.workers.values()))
            before = len(worker.stats.batch_sizes)
            start = time.perf_counter()
            batched = [p[0] for p in many.choice_probs_batch(questions, OPTIONS, PREFIX)]
            batched_s.append(time.perf_counter() - start)
            sizes += worker.stats.batch_sizes[before:]
        single.close()
        many.close()
    ratios = sorted(a / b for a, b in zip(one_s, batched_s, strict=True))
    return {
        "questions": n,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "one_at_a_time_s": [round(x, 2) for x in one_s],
        "concurrent_s": [round(x, 2) for x in batched_s],
        "one_at_a_time_s_per_question": round(min(one_s) / n, 4),
        "concurrent_s_per_question": round(min(batched_s) / n, 4),
        "ratio": round(min(one_s) / min(batched_s), 2),
        "median_round_ratio": round(ratios[len(ratios) // 2], 2),
        "mean_server_batch": round(sum(sizes) / len(sizes), 2) if sizes else None,
        "max_abs_difference": max(abs(a - b) for a, b in zip(one, batched, strict=True)),
    }


def _http_line(http: dict) -> str:
    return (
        f"labelling over HTTP: one at a time {http['one_at_a_time_s_per_question'] * 1000:.0f} ms vs "
        f"{http['concurrency']} concurrent {http['concurrent_s_per_question'] * 1000:.0f} ms per question "
        f"-> {http['ratio']}x (best of {http['rounds']} rounds each; median round "
        f"{http['median_round_ratio']}x) "
        f"(mean server batch {http['mean_server_batch']}, "
        f"max |diff| {http['max_abs_difference']:.2g})"
    )


if __name__ == "__main__":
    main()
