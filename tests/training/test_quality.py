"""SL-CAI data-quality gates: truncated, copied, empty, repeated targets kept out of SFT, and counted."""

from __future__ import annotations

import pytest

from ccai.constitution import Constitution, Principle
from ccai.models.backends import Generation, generate_with_info
from ccai.training.config import QualityConfig, SLConfig
from ccai.training.data import Prompt
from ccai.training.quality import check_revision, check_text, repeated_share, similarity, trim_to_sentence
from ccai.training.sl_cai import generate_chunk, quality_counts

CRITIQUE = "The answer explains how to break into a car, which could help someone commit theft."
REQUEST = "Rewrite the answer so that it refuses to help with anything illegal."


def test_checks_name_what_is_wrong():
    q = QualityConfig()
    good = "I can't help with breaking into cars, but a locksmith can open your own car if you're locked out."
    assert check_revision(good, False, critique=CRITIQUE, requests=[REQUEST], config=q) is None
    assert check_revision("", False, critique=CRITIQUE, requests=[], config=q) == "empty"
    assert check_revision(good, True, critique=CRITIQUE, requests=[], config=q) == "truncated"
    assert check_revision(CRITIQUE, False, critique=CRITIQUE, requests=[], config=q) == "copies_critique"
    labelled = "Here is my critique: " + CRITIQUE.lower()
    assert check_revision(labelled, False, critique=CRITIQUE, requests=[], config=q) == "copies_critique"
    assert (
        check_revision(REQUEST + "!", False, critique=CRITIQUE, requests=[REQUEST], config=q)
        == "copies_request"
    )
    loop = "I am sorry I am sorry I am sorry I am sorry I am sorry I am sorry I am sorry."
    assert repeated_share(loop) > 0.5 and check_text(loop, False, q) == "repeated"
    assert check_text(good, True, QualityConfig(drop_truncated=False)) is None
    assert similarity("a b", "") == 0.0 and similarity(good, good.upper()) == 1.0


class _Scripted:
    """A fake generator (mocked: we need exact control over replies and finish reasons) answering each
    call kind with scripted text: initial answers, critiques, revisions."""

    prefix_per_prompt = True

    def __init__(self, revisions: dict[str, Generation]) -> None:
        self.revisions = revisions

    def generate_with_info(self, prompts, *, max_new_tokens, temperature=0.7, top_p=0.9, seed=0):
        out = []
        for messages in prompts:
            last = messages[-1]["content"]
            if last.startswith("Rewrite"):  # revision request
                first = next(m["content"] for m in messages if m["content"].startswith("Q"))
                out.append(self.revisions[first])
            elif last.startswith("Explain"):  # critique request
                out.append(Generation(CRITIQUE, "stop"))
            elif last == "Q-helpful-cut":
                out.append(Generation("Bananas are rich in", "length"))
            else:
                out.append(Generation("Sure, here is how to do it.", "stop"))
        return out

    def generate(self, prompts, **kwargs):
        return [g.text for g in self.generate_with_info(prompts, **kwargs)]


def test_generate_chunk_drops_and_counts_bad_targets():
    principle = Principle(
        id="p", comparison="c", critique_request="Explain the harm.", revision_request=REQUEST
    )
    constitution = Constitution(name="t", principles=[principle])
    good = "I won't help with that, but here is how to get help legally."
    backend = _Scripted(
        {
            "Q-good": Generation(good, "stop"),
            "Q-cut": Generation("I won't help with that, but", "length"),
            "Q-copy": Generation("Critique: " + CRITIQUE, "stop"),
            "Q-echo": Generation(REQUEST, "stop"),
            "Q-empty": Generation("", "stop"),
            "Q-loop": Generation("no no no no no no no no no no no no no no no no", "stop"),
        }
    )
    prompts = [Prompt(k, k, "red_team") for k in backend.revisions] + [
        Prompt("h1", "Q-helpful", "helpful"),
        Prompt("h2", "Q-helpful-cut", "helpful"),
    ]
    config = SLConfig.model_validate({"revisions": 1, "few_shot": 0})
    rows = generate_chunk(backend, prompts, constitution, config, seed=0, chunk=0)
    dropped = {r["id"]: r["dropped"] for r in rows}
    assert dropped == {
        "Q-good": None,
        "Q-cut": "no_accepted_revision",
        "Q-copy": "no_accepted_revision",
        "Q-echo": "no_accepted_revision",
        "Q-empty": "no_accepted_revision",
        "Q-loop": "no_accepted_revision",
        "h1": None,
        "h2": "truncated",
    }
    checks = {r["id"]: r["revision_checks"] for r in rows if r["source"] == "red_team"}
    assert checks == {
        "Q-good": [""],
        "Q-cut": ["truncated"],
        "Q-copy": ["copies_critique"],
        "Q-echo": ["copies_request"],
        "Q-empty": ["empty"],
        "Q-loop": ["repeated"],
    }
    good_row = next(r for r in rows if r["id"] == "Q-good")
    assert good_row["completion"][0]["content"] == good
    counts = quality_counts(rows)
    assert counts["sft_rows"] == 2 and counts["rows_dropped"]["no_accepted_revision"] == 5
    assert counts["rows_dropped"]["truncated"] == 1 and counts["revisions_checked"] == 6
    assert counts["revisions_rejected"] == {
        "empty": 1,
        "truncated": 1,
        "copies_critique": 1,
        "copies_request": 1,
        "repeated": 1,
    }


def test_finish_reasons_from_the_local_backend_and_older_backends(tiny_backend):
    prompts = [[{"role": "user", "content": "Tell me a long story."}]]
    cut = tiny_backend.generate_with_info(prompts, max_new_tokens=2, temperature=0)
    assert cut[0].finish_reason == "length" and cut[0].truncated  # a random model never stops in 2 tokens
    assert [g.text for g in cut] == tiny_backend.generate(prompts, max_new_tokens=2, temperature=0)

    class Old:  # a third-party backend with only the three-method protocol
        def generate(self, prompts, **kwargs):
            return ["hi"] * len(prompts)

    got = generate_with_info(Old(), prompts, max_new_tokens=3)
    assert got == [Generation("hi", None)] and not got[0].truncated


def test_stop_is_reported_when_the_model_ends(tiny_model, tiny_backend, monkeypatch):
    """Force the end-of-sequence token as the first token: the reply ended naturally, so 'stop'."""
    import torch

    model = tiny_backend.model
    eos = tiny_backend.tokenizer.eos_token_id
    original = model.forward

    def forward(*args, **kwargs):
        out = original(*args, **kwargs)
        logits = out.logits.clone()
        logits[..., :] = -1e4
        logits[..., eos] = 0.0
        out.logits = logits
        return out

    monkeypatch.setattr(model, "forward", forward)
    with torch.no_grad():
        got = tiny_backend.generate_with_info(
            [[{"role": "user", "content": "Hi"}]], max_new_tokens=5, temperature=0
        )
    assert got[0].finish_reason == "stop" and got[0].text == ""


def test_quality_config_rejects_bad_values():
    with pytest.raises(ValueError):
        QualityConfig(copy_similarity=0)


def test_cut_off_replies_are_trimmed_back_to_their_last_sentence():
    cut = (
        "I can't help with breaking into cars; a locksmith can open your own car. If you are locked out, you"
    )
    assert (
        trim_to_sentence(cut, 0.5)
        == "I can't help with breaking into cars; a locksmith can open your own car."
    )
    assert trim_to_sentence('He shouted "stop!" and then the', 0.3) == 'He shouted "stop!"'
    assert trim_to_sentence("Some tips: 1. Save money. 2.", 0.3) == "Some tips: 1. Save money."  # not "2."
    assert trim_to_sentence("No sentence ends anywhere in this reply", 0.1) is None
    assert (
        trim_to_sentence("Yes. " + "and then a long clause that never ends " * 4, 0.5) is None
    )  # too little
    assert trim_to_sentence("Done.", 0.5) == "Done."


class _Trimmable(_Scripted):
    def generate_with_info(self, prompts, **kwargs):
        out = super().generate_with_info(prompts, **kwargs)
        return [
            Generation("Bananas are rich in potassium. They are also", "length")
            if messages[-1]["content"] == "Q-helpful-long"
            else reply
            for messages, reply in zip(prompts, out, strict=True)
        ]


def test_trim_truncated_keeps_cut_off_targets_that_end_a_sentence_and_counts_them():
    principle = Principle(
        id="p", comparison="c", critique_request="Explain the harm.", revision_request=REQUEST
    )
    constitution = Constitution(name="t", principles=[principle])
    long = "I won't help with breaking into cars; please ask a locksmith to open your own car. If you"
    backend = _Trimmable(
        {
            "Q-long": Generation(long, "length"),
            "Q-cut": Generation("I won't help with that, but", "length"),  # no sentence end: still dropped
        }
    )
    prompts = [Prompt(k, k, "red_team") for k in backend.revisions] + [
        Prompt("h1", "Q-helpful-long", "helpful"),
        Prompt("h2", "Q-helpful-cut", "helpful"),
    ]
    rows_by = {}
    for trim in (False, True):
        config = SLConfig.model_validate({"revisions": 1, "few_shot": 0, "quality": {"trim_truncated": trim}})
        rows_by[trim] = generate_chunk(backend, prompts, constitution, config, seed=0, chunk=0)
    assert quality_counts(rows_by[False])["sft_rows"] == 0
    rows = {r["id"]: r for r in rows_by[True]}
    assert rows["Q-long"]["dropped"] is None and rows["Q-long"]["trimmed"]
    assert rows["Q-long"]["completion"][0]["content"] == long[: long.index("car.") + 4]
    assert (
        rows["h1"]["completion"][0]["content"] == "Bananas are rich in potassium." and rows["h1"]["trimmed"]
    )
    assert rows["Q-cut"]["dropped"] == "no_accepted_revision" and rows["h2"]["dropped"] == "truncated"
    counts = quality_counts(rows_by[True])
    assert counts["sft_rows"] == 2 and counts["sft_rows_trimmed"] == 2
    assert counts["revisions_rejected"]["truncated"] == 1
