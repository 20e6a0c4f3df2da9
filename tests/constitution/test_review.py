"""The review step: wordings and merges a person edits reach every form; count means principles; approval.

Costs about 10 s (one MiniLM load shared with the other constitution tests, a few builds of 116 statements).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from ccai.constitution import Constitution, ConstitutionError, Principle
from ccai.constitution.build import build_constitution
from ccai.constitution.select import read_statements
from tests.constitution.conftest import with_review_merges


@pytest.fixture(scope="module")
def table(shared_data: Path) -> pd.DataFrame:
    return read_statements(shared_data / "ccai" / "ccai_statement_reference.csv")


def test_count_means_principles(table: pd.DataFrame, embedder) -> None:
    for n in (10, 75):
        result = build_constitution(table, count=n, embedder=embedder)
        assert len(result.constitution) == n
        assert len(result.selection.statements) >= n  # more statements than principles when some merge


def test_a_persons_wording_reaches_comparison_critique_and_revision(
    table: pd.DataFrame, embedder, tmp_path: Path
) -> None:
    review = tmp_path / "review.yaml"
    first = build_constitution(table, threshold=0.723, embedder=embedder, review=review)
    data = with_review_merges(yaml.safe_load(review.read_text()))
    assert data["wordings"], "statements with typos or without a rule rewrite are listed for the reviewer"
    flagged = {w["statement"]: w for w in data["wordings"]}
    typo = next(w for w in data["wordings"] if w.get("typos"))
    assert all(v is None or isinstance(v, str) for v in typo["typos"].values())
    # the merge similarity recorded with a review file is the one its proposals were made at
    data["settings"]["merge_similarity"] = 0.6
    target = typo["statement"]
    data["wordings"] = [
        {**flagged[target], "wording": "Choose the response that is most careful with facts."}
    ]
    # a rejected merge claims nothing: one of its statements may join another (accepted) merge
    rejected, other = data["merges"][0], data["merges"][1]
    rejected["decision"] = "reject"
    moved = rejected["members"][0]
    other["members"] = [*other["members"], moved]
    review.write_text(yaml.safe_dump(data))
    second = build_constitution(
        table, threshold=0.723, embedder=embedder, review=review, merge_similarity=0.9
    )
    assert second.constitution.metadata["merge"]["similarity"] == 0.6
    p = next(p for p in second.constitution.principles if any(s.id == target for s in p.sources))
    assert p.comparison == "Choose the response that is most careful with facts."
    assert "most careful with facts" in p.critique_request and "most careful with facts" in p.revision_request
    assert p.metadata["rewrite"]["worded_by"] == "person (review file)"
    assert "promotes-desired" in p.tags  # the direction of the person's words, not of the statement
    holder = second.constitution.principle(f"s{other['keep']}")
    assert moved in holder.metadata["merge"]["members"]
    assert first.constitution.metadata["group_labelling"].startswith("CCAI organisers' opinion groups")


def test_review_status_and_approval() -> None:
    p = Principle(
        id="p1", comparison="Choose the response that is kind.", critique_request="c", revision_request="r"
    )
    c = Constitution(name="t", principles=[p])
    assert not c.is_reviewed and "not reviewed by a person" in c.review_line()
    approved = c.approve(by="Ada", at="2026-12-03")
    assert approved.is_reviewed and approved.review.status == "approved"
    again = Constitution.from_dict(yaml.safe_load(approved.to_yaml()))
    assert again.is_reviewed
    changed = approved.model_copy(update={"name": "other"})
    assert not changed.is_reviewed and "no longer valid" in changed.review_line()
    waiting = Principle(
        id="p2",
        comparison="Choose the response that best follows ...",
        critique_request="c",
        revision_request="r",
        metadata={"rewrite": {"rule": "needs-wording", "needs_wording": True}},
    )
    with pytest.raises(ConstitutionError, match="need a person's wording"):
        Constitution(name="t", principles=[p, waiting]).approve(by="Ada")


def test_optional_principle_fields_keep_old_hashes(tmp_path: Path) -> None:
    plain = Principle(
        id="p1", comparison="Choose the response that is kind.", critique_request="c", revision_request="r"
    )
    c = Constitution(name="t", principles=[plain])
    assert "priority" not in c.to_json() and "review" not in c.to_dict()
    rich = plain.model_copy(
        update={"priority": 1, "hard_constraint": True, "rationale": "why", "weight": 0.8}
    )
    r = Constitution(name="t", principles=[rich])
    assert r.content_hash != c.content_hash
    path = r.save(tmp_path / "r.json")
    assert Constitution.load(path).principles[0].weight == 0.8
    with pytest.raises(ConstitutionError, match="weight"):
        Constitution.from_dict({"name": "t", "principles": [{**rich.model_dump(), "weight": 2}]})


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    c = Constitution(name="t")
    path = tmp_path / "c.json"
    path.write_bytes(b"\xef\xbb\xbf" + c.to_json().encode())
    assert Constitution.load(path).content_hash == c.content_hash
