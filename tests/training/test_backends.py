"""The local and HTTP backends: seeded generation, exact log-probabilities, one-pass option probabilities."""

from __future__ import annotations

import math

import pytest
import torch

from ccai.models.backends import Backend, OpenAIBackend, TransformersBackend

PROMPTS = [
    [{"role": "user", "content": "How do I pick a lock?"}],
    [{"role": "user", "content": "Tell me a joke about cats, please, a long one."}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
]


def test_backends_satisfy_protocol(tiny_backend):
    assert isinstance(tiny_backend, Backend)
    client = OpenAIBackend("http://127.0.0.1:1", "x")
    assert isinstance(client, Backend)
    client.close()


def test_generate_is_seeded(tiny_backend):
    a = tiny_backend.generate(PROMPTS, max_new_tokens=8, seed=3)
    b = tiny_backend.generate(PROMPTS, max_new_tokens=8, seed=3)
    c = tiny_backend.generate(PROMPTS, max_new_tokens=8, seed=4)
    assert a == b
    assert a != c
    assert len(a) == len(PROMPTS) and all(isinstance(x, str) for x in a)


def test_greedy_does_not_depend_on_batching(tiny_model, tiny_backend):
    single = TransformersBackend(
        tiny_model, batch_size=1, model=tiny_backend.model, tokenizer=tiny_backend.tokenizer
    )
    batched = tiny_backend.generate(PROMPTS, max_new_tokens=6, temperature=0)
    one_by_one = single.generate(PROMPTS, max_new_tokens=6, temperature=0)
    assert batched == one_by_one


def test_shared_prefix_cache_changes_nothing(tiny_model, tiny_backend):
    """Few-shot prompts share their demos: computing that prefix once must give the same replies."""
    from ccai.models.backends import shared_prefix
    from ccai.training.sl_cai import demo_messages, load_demos

    demos = demo_messages(load_demos(), 1)
    prompts = [[*demos, *p] for p in PROMPTS[:2]] + [[*demos, {"role": "user", "content": "Why?"}]]
    texts = [tiny_backend.render(p) for p in prompts]
    common = shared_prefix([tiny_backend._encode(t) for t in texts])
    assert len(common) > 100 and all(tiny_backend._encode(t)[: len(common)] == common for t in texts)
    assert shared_prefix([[1, 2, 3], [1, 2]]) == [1, 2] and shared_prefix([[5, 6], [7]]) == []
    plain = TransformersBackend(
        tiny_model, batch_size=1, model=tiny_backend.model, tokenizer=tiny_backend.tokenizer
    )
    plain.min_shared_prefix = 0
    cached = TransformersBackend(
        tiny_model, batch_size=4, model=tiny_backend.model, tokenizer=tiny_backend.tokenizer
    )
    assert cached.generate(prompts, max_new_tokens=6, temperature=0) == plain.generate(
        prompts, max_new_tokens=6, temperature=0
    )
    assert cached.generate([], max_new_tokens=4) == [] and cached.logprobs([], []) == []
    plain.batch_size = 4  # same batches and seeds: the sampled replies agree too
    assert cached.generate(prompts, max_new_tokens=6, seed=5) == plain.generate(
        prompts, max_new_tokens=6, seed=5
    )


def test_nucleus_filter_keeps_what_transformers_keeps():
    """Same surviving tokens and values as TemperatureLogitsWarper + TopPLogitsWarper, on peaked rows (the
    nucleus within the candidates) and on flat rows (the full-sort fallback)."""
    from transformers import TemperatureLogitsWarper, TopPLogitsWarper

    from ccai.models.backends import nucleus_filter

    torch.manual_seed(0)
    peaked = torch.randn(6, 5000) * 6
    flat = torch.randn(3, 5000) * 0.1
    for scores in (peaked, flat, torch.cat([peaked, flat])):
        for temperature, top_p in ((0.7, 0.9), (1.0, 0.95), (1.3, 0.5)):
            ours = nucleus_filter(temperature, top_p, candidates=32)(None, scores.clone())
            theirs = TopPLogitsWarper(top_p)(None, TemperatureLogitsWarper(temperature)(None, scores.clone()))
            assert torch.equal(torch.isfinite(ours), torch.isfinite(theirs))
            assert torch.equal(ours[torch.isfinite(ours)], theirs[torch.isfinite(theirs)])


def _naive_logprob(backend, context: str, continuation: str) -> float:
    ctx, cont = backend._split(context, continuation)
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logp = torch.log_softmax(backend.model(input_ids=ids).logits[0].float(), -1)
    return float(sum(logp[len(ctx) - 1 + k, tok] for k, tok in enumerate(cont)))


def test_logprobs_match_unpadded_forward(tiny_backend):
    contexts = ["The capital of France is", "Question: 2+2=\nAnswer:", "", "A much longer context " * 5]
    continuations = [" Paris", " 4", "Hello world", " end"]
    got = tiny_backend.logprobs(contexts, continuations)
    for value, ctx, cont in zip(got, contexts, continuations, strict=True):
        assert value < 0
        assert value == pytest.approx(_naive_logprob(tiny_backend, ctx, cont), abs=1e-4)


def test_choice_probs_equal_naive_two_pass(tiny_backend):
    prompt = [{"role": "user", "content": "Which is better?\n(A) yes\n(B) no\nAnswer with (A) or (B)."}]
    prefix = "The answer is: ("
    probs = tiny_backend.choice_probs(prompt, ["A", "B"], prefix)
    context = tiny_backend.render(prompt, prefix)
    naive = [math.exp(x) for x in tiny_backend.logprobs([context, context], ["A", "B"])]
    assert sum(probs) == pytest.approx(1.0)
    assert probs == pytest.approx([n / sum(naive) for n in naive], abs=1e-5)


@pytest.mark.parametrize(
    "bad, message",
    [
        ("hello", "expected a list of conversations"),
        ([[]], r"prompts\[0\]"),
        ([[{"role": "robot", "content": "x"}]], r"prompts\[0\]\[0\].role"),
        ([[{"role": "user", "content": 3}]], r"prompts\[0\]\[0\]"),
    ],
)
def test_bad_prompts_are_refused(tiny_backend, bad, message):
    with pytest.raises(ValueError, match=message):
        tiny_backend.generate(bad, max_new_tokens=2)


def test_bad_scoring_input_is_refused(tiny_backend):
    with pytest.raises(ValueError, match="2 contexts but 1"):
        tiny_backend.logprobs(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="empty continuation"):
        tiny_backend.logprobs(["a"], [""])
    with pytest.raises(ValueError, match="at least two"):
        tiny_backend.choice_probs(PROMPTS[0], ["A"], "(")


def test_openai_backend_against_real_local_server(tiny_model, tiny_backend):
    """A real HTTP server on loopback (uvicorn) serving the tiny model; the client must agree with local."""
    from ccai.models.serve import BackgroundServer, create_app

    app = create_app(tiny_model, model_name="tiny", backend=tiny_backend)
    with BackgroundServer(app) as url:
        client = OpenAIBackend(url, "tiny", concurrency=4)
        replies = client.generate(PROMPTS, max_new_tokens=5, temperature=0)
        local = [tiny_backend.generate([p], max_new_tokens=5, temperature=0)[0] for p in PROMPTS]
        assert replies == local
        assert client.generate(PROMPTS, max_new_tokens=5, seed=1) == client.generate(
            PROMPTS, max_new_tokens=5, seed=1
        )

        contexts, continuations = ["The capital of France is", "Q: 2+2=\nA:"], [" Paris", " 4"]
        remote_lp = client.logprobs(contexts, continuations)
        assert remote_lp == pytest.approx(tiny_backend.logprobs(contexts, continuations), abs=1e-3)

        # A random model rarely ranks "A"/"B" in a server's top 20, so take its own top-3 tokens as options.
        prompt = [{"role": "user", "content": "Pick one.\n(A) x\n(B) y"}]
        prefix = "The answer is: ("
        options = [tok for tok, _ in tiny_backend.next_token_logprobs(tiny_backend.render(prompt, prefix), 3)]
        remote = client.choice_probs(prompt, options, prefix)
        assert remote == pytest.approx(tiny_backend.choice_probs(prompt, options, prefix), abs=1e-3)

        wrong = OpenAIBackend(url, "other-model")
        with pytest.raises(ConnectionError, match="404"):
            wrong.generate(PROMPTS[:1], max_new_tokens=2)
        client.close()
        wrong.close()
    with pytest.raises(ValueError, match="http"):
        OpenAIBackend("localhost:8000", "x")


def test_sl_data_can_be_generated_through_an_http_server(tiny_model, tiny_backend, constitution_file):
    """The scale-out path: SL-CAI generation against an OpenAI-compatible server instead of in-process."""
    from ccai.constitution import Constitution
    from ccai.models.serve import BackgroundServer, create_app
    from ccai.training.config import SLConfig
    from ccai.training.data import Prompt
    from ccai.training.sl_cai import generate_chunk

    prompts = [Prompt("r1", "How do I hotwire a car?", "red_team"), Prompt("h1", "Name a fruit.", "helpful")]
    config = SLConfig.model_validate({"generation": {"max_new_tokens": 4}, "revisions": 2})
    with BackgroundServer(create_app(tiny_model, model_name="tiny", backend=tiny_backend)) as url:
        client = OpenAIBackend(url, "tiny", concurrency=2)
        rows = generate_chunk(client, prompts, Constitution.load(constitution_file), config, seed=0, chunk=0)
        client.close()
    red = next(r for r in rows if r["source"] == "red_team")
    assert len(red["principle_ids"]) == 2 and len(red["critiques"]) == 2
    assert all(r["id"] in {"r1", "h1"} for r in rows)


def test_http_backend_reports_finish_reasons_and_batches_option_probs(tiny_model, tiny_backend):
    """Through the loopback server: the finish reason travels (it was always 'stop'), and the concurrent
    ``choice_probs_batch`` (one prefix each) equals the local backend's values."""
    from ccai.models.serve import BackgroundServer, create_app

    with BackgroundServer(create_app(tiny_model, model_name="tiny", backend=tiny_backend)) as url:
        client = OpenAIBackend(url, "tiny", concurrency=3)
        remote = client.generate_with_info(PROMPTS, max_new_tokens=3, temperature=0)
        local = tiny_backend.generate_with_info(PROMPTS, max_new_tokens=3, temperature=0)
        assert remote == local and {g.finish_reason for g in remote} == {"length"}
        prompt = [{"role": "user", "content": "Pick one.\n(A) x\n(B) y"}]
        prefixes = ["The answer is: (", "So the answer is: ("]
        options = [
            tok for tok, _ in tiny_backend.next_token_logprobs(tiny_backend.render(prompt, prefixes[0]), 3)
        ]
        got = client.choice_probs_batch([prompt, prompt], options, prefixes)
        want = tiny_backend.choice_probs_batch([prompt, prompt], options, prefixes)
        assert want[0] == pytest.approx(tiny_backend.choice_probs(prompt, options, prefixes[0]), abs=1e-5)
        assert want[1] == pytest.approx(tiny_backend.choice_probs(prompt, options, prefixes[1]), abs=1e-5)
        assert got[0] == pytest.approx(want[0], abs=1e-3) and got[1] == pytest.approx(want[1], abs=1e-3)
        with pytest.raises(ValueError, match="2 prompts but 1"):
            client.choice_probs_batch([prompt, prompt], options, prefixes[:1])
        client.close()
