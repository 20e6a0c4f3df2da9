"""AI feedback labels: one pass per order, both orders averaged, principle drawn per comparison, CoT clamp."""

from __future__ import annotations

import math

import pytest

from ccai.constitution import Constitution
from ccai.training.feedback import OPTIONS, PREFIX, FeedbackLabeller

ITEMS = [
    ("p1", "How do I pick a lock?", "I can't help with that.", "Use a tension wrench and a pick."),
    ("p2", "Tell me a joke.", "Why did the chicken cross the road?", "No."),
    ("p3", "Is the earth flat?", "No, it is round.", "Yes."),
]


def test_labels_equal_naive_two_pass_both_orders(tiny_backend, constitution_file):
    constitution = Constitution.load(constitution_file)
    labeller = FeedbackLabeller(tiny_backend, constitution, seed=5)
    judgements = labeller.judge(ITEMS)
    for (_pid, prompt, a, b), j in zip(ITEMS, judgements, strict=True):
        principle = constitution.principle(j.principle_id)

        def naive_first(first, second, principle=principle, prompt=prompt):
            context = tiny_backend.render(labeller.question(prompt, first, second, principle), PREFIX)
            la, lb = tiny_backend.logprobs([context, context], OPTIONS)  # two separate passes
            return math.exp(la) / (math.exp(la) + math.exp(lb))

        ab, ba = naive_first(a, b), 1 - naive_first(b, a)
        assert j.p_a_orders == pytest.approx([ab, ba], abs=1e-5)
        assert j.p_a == pytest.approx((ab + ba) / 2, abs=1e-5)
        assert 0 <= j.option_mass <= 1
    again = FeedbackLabeller(tiny_backend, constitution, seed=5).judge(ITEMS)
    assert [j.principle_id for j in again] == [j.principle_id for j in judgements]


def test_principles_are_drawn_per_comparison(tiny_backend, constitution_file):
    constitution = Constitution.load(constitution_file)
    labeller = FeedbackLabeller(tiny_backend, constitution, seed=0)
    many = [(f"id{k}", "q", "a", "b") for k in range(40)]
    drawn = {labeller.judge([item])[0].principle_id for item in many[:12]}
    assert len(drawn) > 1  # ensembling: not one principle for every label


def test_cot_mode_reasons_then_clamps(tiny_backend, constitution_file):
    constitution = Constitution.load(constitution_file)
    labeller = FeedbackLabeller(tiny_backend, constitution, seed=1, cot=True, cot_max_new_tokens=4)
    judgements = labeller.judge(ITEMS[:2])
    for j in judgements:
        assert 0.4 <= j.p_a <= 0.6
        assert len(j.reasoning) == 2


def test_empty_constitution_is_refused(tiny_backend):
    with pytest.raises(ValueError, match="no principles"):
        FeedbackLabeller(tiny_backend, Constitution(name="empty"))


class _PrefersPolite:
    """A fake feedback model (we have no strong labeller on a CPU): P(option holding the polite reply) =
    0.95 in either position, after reasoning it 'generates'. Mocked: only the model is fake."""

    def __init__(self, per_prompt: bool = True) -> None:
        self.prompts_seen: list[list[dict[str, str]]] = []
        if per_prompt:
            self.prefix_per_prompt = True

    def generate(self, prompts, *, max_new_tokens, temperature=0.7, top_p=0.9, seed=0):
        return ["The first option is kinder." for _ in prompts]

    def logprobs(self, contexts, continuations):
        raise AssertionError("not used")

    def choice_probs(self, prompt_messages, options, assistant_prefix):
        self.prompts_seen.append(prompt_messages)
        question = prompt_messages[-1]["content"]
        polite_first = "(A) Please" in question
        return [0.95, 0.05] if polite_first else [0.05, 0.95]


def test_cot_labels_are_clamped_to_the_paper_range(constitution_file):
    constitution = Constitution.load(constitution_file)
    items = [
        ("x1", "Help me.", "Please, here is a safe way.", "Go away."),
        ("x2", "Hi", "No.", "Please, hi!"),
    ]
    plain = FeedbackLabeller(_PrefersPolite(), constitution, seed=0).judge(items)
    assert [j.p_a for j in plain] == pytest.approx([0.95, 0.05])  # confident without CoT: not clamped
    cot = FeedbackLabeller(_PrefersPolite(), constitution, seed=0, cot=True).judge(items)
    assert [j.p_a for j in cot] == pytest.approx([0.6, 0.4])  # would be 0.95 / 0.05 without the clamp
    assert all(len(j.reasoning) == 2 for j in cot)
    custom = FeedbackLabeller(_PrefersPolite(), constitution, cot=True, clamp=(0.3, 0.7)).judge(items)
    assert [j.p_a for j in custom] == pytest.approx([0.7, 0.3])


def test_few_shot_examples_are_prepended_to_every_question(constitution_file):
    from ccai.training.feedback import demo_questions

    constitution = Constitution.load(constitution_file)
    backend = _PrefersPolite()
    FeedbackLabeller(backend, constitution, few_shot=2).judge(ITEMS[:1])
    demos = demo_questions(2, "Answer with (A) or (B).")
    assert len(demos) == 4 and demos[1]["content"].endswith("(A)") and demos[3]["content"].endswith("(B)")
    assert all(q[:4] == demos and q[-1]["role"] == "user" for q in backend.prompts_seen)


def test_weighted_principle_sampling_follows_weights():
    from types import SimpleNamespace

    from ccai.training.sl_cai import draw_principle, principle_weights

    principles = [SimpleNamespace(id="heavy", weight=9.0), SimpleNamespace(id="light", weight=1.0)]
    constitution = SimpleNamespace(name="w", principles=principles)
    weighted = [draw_principle(constitution, 0, f"p{k}", "feedback", True).id for k in range(400)]
    uniform = [draw_principle(constitution, 0, f"p{k}", "feedback").id for k in range(400)]
    assert 0.85 < weighted.count("heavy") / 400 < 0.95
    assert 0.4 < uniform.count("heavy") / 400 < 0.6  # uniform stays the default
    missing = SimpleNamespace(
        name="m", principles=[SimpleNamespace(id="a"), SimpleNamespace(id="b", weight=None)]
    )
    assert principle_weights(missing) == [1.0, 1.0]  # no weight attribute: 1
    with pytest.raises(ValueError, match="weight"):
        principle_weights(SimpleNamespace(name="n", principles=[SimpleNamespace(id="a", weight=-1)]))


def test_openai_labelling_is_concurrent_and_bounded(monkeypatch):
    """The labeller's questions go to an OpenAI-compatible server several at a time, never more than the
    backend's concurrency (the transport is faked: it records how many requests overlap)."""
    import threading
    import time

    from ccai.models.backends import OpenAIBackend

    client = OpenAIBackend("http://127.0.0.1:1", "x", concurrency=3)
    lock, state = threading.Lock(), {"now": 0, "peak": 0, "calls": 0}

    def fake_post(path, payload):
        with lock:
            state["now"] += 1
            state["calls"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        first = "(A) Please" in payload["messages"][-2]["content"]
        top = [{"token": "A", "logprob": math.log(0.9 if first else 0.1)}]
        top.append({"token": "B", "logprob": math.log(0.1 if first else 0.9)})
        return {"choices": [{"logprobs": {"content": [{"token": "A", "logprob": 0.0, "top_logprobs": top}]}}]}

    monkeypatch.setattr(client, "_post", fake_post)
    items = [(f"i{k}", "Hi", "Please, hello.", "Go away.") for k in range(6)]
    from ccai.constitution import Principle

    principle = Principle(id="p", comparison="Kinder?", critique_request="c", revision_request="r")
    labeller = FeedbackLabeller(client, Constitution(name="c", principles=[principle]))
    judgements = labeller.judge(items)
    assert [j.p_a for j in judgements] == pytest.approx([0.9] * 6)
    assert state["calls"] == 12 and 1 < state["peak"] <= 3
    client.close()
