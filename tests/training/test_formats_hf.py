"""The CAI data contract (ccai.formats.hf): rows validate, files round-trip, bad lines are named."""

from __future__ import annotations

import json

import pytest

from ccai.formats.hf import assistant, read_rows, to_dataset, user, validate_row, write_rows

SL = {
    "id": "x1",
    "source": "red_team",
    "prompt": user("hi"),
    "completion": assistant("hello"),
    "principle_ids": ["p1"],
    "initial_response": "yo",
    "critiques": ["c"],
    "revisions": ["hello"],
}
PREF = {
    "id": "x1",
    "prompt": user("hi"),
    "chosen": assistant("a"),
    "rejected": assistant("b"),
    "soft_label": 0.7,
    "p_a": 0.7,
    "p_a_orders": [0.6, 0.8],
    "principle_id": "p2",
}


def test_round_trip_and_datasets_loading(tmp_path):
    from datasets import load_dataset

    path = write_rows(tmp_path / "sl.jsonl", [SL, {**SL, "id": "x2"}], "sl")
    assert read_rows(path, "sl")[0]["completion"] == [{"role": "assistant", "content": "hello"}]
    loaded = load_dataset("json", data_files=str(path), split="train")
    assert {"prompt", "completion", "principle_ids"} <= set(loaded.column_names)
    assert loaded[1]["id"] == "x2" and loaded[0]["principle_ids"] == ["p1"]
    assert to_dataset(read_rows(path, "sl"), ["prompt", "completion"]).column_names == [
        "prompt",
        "completion",
    ]
    write_rows(tmp_path / "p.jsonl", [PREF], "preference")
    assert read_rows(tmp_path / "p.jsonl", "preference")[0]["soft_label"] == 0.7


@pytest.mark.parametrize(
    "row, kind, field",
    [
        ({**SL, "completion": user("no")}, "sl", "completion"),
        ({**SL, "source": "web"}, "sl", "source"),
        ({**SL, "extra": 1}, "sl", "extra"),
        ({**PREF, "soft_label": 1.5}, "preference", "soft_label"),
        ({**PREF, "prompt": []}, "preference", "prompt"),
    ],
)
def test_bad_rows_name_the_field(row, kind, field):
    with pytest.raises(ValueError, match=field):
        validate_row(row, kind, "here")


def test_bad_file_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(SL) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not valid JSON"):
        read_rows(path, "sl")
    path.write_text(json.dumps(SL) + "\n" + json.dumps({**SL, "prompt": "text"}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not a valid sl row \(prompt"):
        read_rows(path, "sl")
    with pytest.raises(FileNotFoundError):
        read_rows(tmp_path / "missing.jsonl", "sl")
    with pytest.raises(ValueError, match="unknown row kind"):
        validate_row(SL, "nope")


def test_write_is_all_or_nothing(tmp_path):
    path = tmp_path / "sl.jsonl"
    write_rows(path, [SL], "sl")
    with pytest.raises(ValueError):
        write_rows(path, [SL, {**SL, "source": "bad"}], "sl")
    assert len(read_rows(path, "sl")) == 1  # the old file is intact, no half-written one
