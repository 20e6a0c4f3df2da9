"""Benchmark: N concurrent chat requests through ``ccai models serve`` against one-at-a-time ``generate``.

Same backend object, same prompts, same sampling settings, same run. The baseline answers the N requests
the way a server without batching would: one ``TransformersBackend.generate`` call after another, so the
k-th request waits for the k-1 before it (its latency counts from the moment all N arrived). The server gets
the N requests at once over loopback HTTP (real uvicorn, real SmolLM2) and decodes them as one batch.
A third round streams the same requests and measures the time to the first token.

A fourth round sends them to the same server with ``--max-batch 1`` (a control: batching off, same code).
Prints tokens/s, p50/p99 latency and the ratios. Timings on a busy machine mean little: say how busy it was.

    python bench/serve.py                              # 8 requests x 32 tokens, bundled SmolLM2, CPU
    python bench/serve.py --requests 16 --tokens 64 --device cuda
"""

from __future__ import annotations

import argparse
import os
import platform
import threading
import time

PROMPTS = [
    "What should a town consider before building a new road through a park?",
    "Give me two tips for learning to cook on a budget.",
    "Why do leaves change colour in autumn?",
    "How can I disagree with a friend politely?",
    "Explain what a constitution is to a ten-year-old.",
    "What are the risks of sharing my location online?",
    "Suggest a name for a community garden.",
    "How does a bicycle stay upright?",
]


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values), q))


def baseline(backend, prompts, tokens: int, seed: int) -> dict:
    """One ``generate`` call per request, in arrival order (what an unbatched server does)."""
    before = backend.tokens_generated
    start = time.perf_counter()
    latencies = []
    for k, prompt in enumerate(prompts):
        backend.generate([prompt], max_new_tokens=tokens, temperature=0.7, top_p=0.9, seed=seed + k)
        latencies.append(time.perf_counter() - start)
    wall = time.perf_counter() - start
    return {"wall": wall, "tokens": backend.tokens_generated - before, "latencies": latencies}


def through_server(url: str, prompts, tokens: int, seed: int, stream: bool) -> dict:
    import httpx

    barrier = threading.Barrier(len(prompts) + 1)
    latencies = [0.0] * len(prompts)
    first_token = [0.0] * len(prompts)
    produced = [0] * len(prompts)
    start_box = [0.0]

    def ask(k: int) -> None:
        body = {
            "model": "smollm2",
            "messages": prompts[k],
            "max_tokens": tokens,
            "temperature": 0.7,
            "top_p": 0.9,
            "seed": seed + k,
            "stream": stream,
            "stream_options": {"include_usage": True},
        }
        barrier.wait()
        with httpx.Client(timeout=600) as client:
            if not stream:
                reply = client.post(f"{url}/chat/completions", json=body)
                reply.raise_for_status()
                produced[k] = reply.json()["usage"]["completion_tokens"]
            else:
                import json

                with client.stream("POST", f"{url}/chat/completions", json=body) as response:
                    response.raise_for_status()
                    for line in response.iter_lines():
                        if not line.startswith("data: {"):
                            continue
                        event = json.loads(line[6:])
                        if event.get("usage"):
                            produced[k] = event["usage"]["completion_tokens"]
                        elif event["choices"][0]["delta"].get("content") and not first_token[k]:
                            first_token[k] = time.perf_counter() - start_box[0]
        latencies[k] = time.perf_counter() - start_box[0]

    threads = [threading.Thread(target=ask, args=(k,)) for k in range(len(prompts))]
    for t in threads:
        t.start()
    start_box[0] = time.perf_counter()
    barrier.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start_box[0]
    return {"wall": wall, "tokens": sum(produced), "latencies": latencies, "first_token": first_token}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2", help="smollm2 or a model folder")
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()

    import torch

    from ccai.models.backends import TransformersBackend
    from ccai.models.prepare import resolve_model
    from ccai.models.serve import BackgroundServer, ServedModel, ServeLimits, create_app

    if args.threads:
        torch.set_num_threads(args.threads)
    prompts = [[{"role": "user", "content": PROMPTS[k % len(PROMPTS)]}] for k in range(args.requests)]
    backend = TransformersBackend(resolve_model(args.model), device=args.device, batch_size=1)
    backend.generate(prompts[:1], max_new_tokens=4, temperature=0.7, seed=0)  # warm-up
    print(
        f"model {args.model} on {args.device}; {args.requests} requests x {args.tokens} tokens "
        f"(temperature 0.7, top-p 0.9); torch threads {torch.get_num_threads()}; "
        f"cpus {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}; "
        f"{platform.processor() or platform.machine()}"
    )

    base = baseline(backend, prompts, args.tokens, args.seed)
    limits = ServeLimits(max_batch=args.requests, batch_window_ms=20, max_tokens=max(1024, args.tokens))
    app = create_app(models=[ServedModel("smollm2", backend)], limits=limits)
    with BackgroundServer(app) as url:
        through_server(url, prompts[:1], 4, args.seed, stream=False)  # warm-up of the HTTP path
        served = through_server(url, prompts, args.tokens, args.seed, stream=False)
        streamed = through_server(url, prompts, args.tokens, args.seed, stream=True)
    batches = app.state.workers[id(backend)].stats.batch_sizes
    # control: the same server path with batching off, to separate batching from implementation
    serial_app = create_app(models=[ServedModel("smollm2", backend)], limits=ServeLimits(max_batch=1))
    with BackgroundServer(serial_app) as url:
        serial = through_server(url, prompts, args.tokens, args.seed, stream=False)

    rows = [
        ("one-at-a-time generate", base),
        ("server, batched", served),
        ("server, batched, streamed", streamed),
        ("server, --max-batch 1", serial),
    ]
    print(
        f"{'':28} {'tokens':>7} {'wall s':>8} {'tokens/s':>9} {'p50 s':>7} {'p99 s':>7} "
        f"{'first tok p99 s':>16}"
    )
    for label, r in rows:
        ttft = f"{percentile(r['first_token'], 99):16.2f}" if any(r.get("first_token", [])) else f"{'-':>16}"
        print(
            f"{label:28} {r['tokens']:7d} {r['wall']:8.2f} {r['tokens'] / r['wall']:9.1f} "
            f"{percentile(r['latencies'], 50):7.2f} {percentile(r['latencies'], 99):7.2f} {ttft}"
        )
    speed = (served["tokens"] / served["wall"]) / (base["tokens"] / base["wall"])
    p99 = percentile(base["latencies"], 99) / percentile(served["latencies"], 99)
    print(f"server batches (after the 1-request warm-up; plain round then streamed): {batches[1:]}")
    print(f"ratio server / one-at-a-time: tokens/s x{speed:.2f}; p99 latency {p99:.2f}x lower")


if __name__ == "__main__":
    main()
