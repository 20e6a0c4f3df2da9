"""Human comparisons for the helpfulness arm: parsing, ties, AlpacaEval overlap, held-out split."""

from __future__ import annotations

import gzip
import json

import pytest

from ccai.training.config import DataConfig
from ccai.training.data import is_heldout
from ccai.training.human_prefs import (
    evaluation_prompts,
    heldout_harmless_pairs,
    helpful_pairs,
    parse_transcript,
)


def test_transcripts_become_chat_messages():
    text = "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: Name a fruit.\n\nAssistant: A pear."
    assert parse_transcript(text) == [
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Name a fruit."},
        {"role": "assistant", "content": "A pear."},
    ]
    assert parse_transcript("no turns here") == []


def _write(path, rows):
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


def test_ties_overlap_and_bad_rows_are_handled(tmp_path):
    folder = tmp_path / "prefs"
    folder.mkdir()
    evals = tmp_path / "eval.jsonl"
    evals.write_text(json.dumps({"instruction": "What is the capital of France?"}) + "\n")

    def pair(q, good, bad):
        return {
            "chosen": f"\n\nHuman: {q}\n\nAssistant: {good}",
            "rejected": f"\n\nHuman: {q}\n\nAssistant: {bad}",
        }

    _write(
        folder / "helpful-x_test.jsonl.gz",
        [
            pair("How do I boil an egg?", "Put it in boiling water for 8 minutes.", "Eggs are nice."),
            pair("Same?", "Yes.", "Yes."),  # a tie
            pair("what is the capital of  France?", "Paris.", "Rome."),  # an evaluation prompt
            pair("Long?", "x" * 3000, "y"),  # over max_pair_chars
        ],
    )
    config = DataConfig(helpful_prefs=str(folder), helpful=str(evals), heldout_fraction=0.0)
    train, held, skipped = helpful_pairs(config)
    assert [p.chosen for p in train] == ["Put it in boiling water for 8 minutes."] and held == []
    assert skipped == {"ties": 1, "evaluation_overlap": 1, "unparsed": 0, "too_long": 1}
    row = train[0].row("human_helpful")
    assert row["soft_label"] == 1.0 and row["prompt"][-1] == {
        "role": "user",
        "content": "How do I boil an egg?",
    }
    (folder / "helpful-x_test.jsonl.gz").write_bytes(gzip.compress(b'{"chosen": 1}\n'))
    with pytest.raises(ValueError, match=r"helpful-x_test.jsonl.gz:1"):
        helpful_pairs(config)


def test_real_data_split_is_clean(shared_data):
    config = DataConfig()
    train, held, skipped = helpful_pairs(config)
    assert len(train) > 1000 and len(held) > 200
    assert skipped["evaluation_overlap"] >= 129 and skipped["ties"] >= 34  # as the data README counts
    train_keys = {" ".join(p.key.lower().split()) for p in train}
    assert not train_keys & {" ".join(p.key.lower().split()) for p in held}  # split by opening turn
    assert not train_keys & evaluation_prompts(config)
    harmless = heldout_harmless_pairs(config)
    red_ids = {}
    for line in (
        (shared_data / "hh_rlhf" / "red_team_prompts_harmless_base_test.jsonl").read_text().splitlines()
    ):
        row = json.loads(line)
        for k in row["source_rows"]:
            red_ids[k] = row["id"]
    assert harmless and all(
        is_heldout(red_ids[int(p.id.rsplit("_", 1)[1])], config.heldout_fraction, config.split_seed)
        for p in harmless
    )
