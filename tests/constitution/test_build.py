"""Building the CCAI public constitution: merges proposed, reviewed by a person, applied on the next run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from ccai.constitution import Constitution, ConstitutionError, StatementSource
from ccai.constitution.build import build_constitution
from ccai.constitution.select import read_statements
from tests.constitution.conftest import with_review_merges


@pytest.fixture(scope="module")
def table(shared_data: Path) -> pd.DataFrame:
    return read_statements(shared_data / "ccai" / "ccai_statement_reference.csv")


@pytest.fixture(scope="module")
def proposed_review(table: pd.DataFrame, embedder, tmp_path_factory: pytest.TempPathFactory) -> str:
    review = tmp_path_factory.mktemp("review") / "review.yaml"
    build_constitution(table, threshold=0.723, embedder=embedder, review=review)
    return yaml.safe_dump(with_review_merges(yaml.safe_load(review.read_text())))


@pytest.mark.slow
def test_build_proposes_then_applies_review(table: pd.DataFrame, embedder, tmp_path: Path) -> None:
    review = tmp_path / "review.yaml"
    first = build_constitution(table, threshold=0.723, embedder=embedder, review=review, name="public")
    c = first.constitution
    assert not first.reviewed and review.exists()
    assert len(first.selection.statements) == 116
    merged_members = sum(len(m.members) for m in first.merges)
    assert len(c) == 116 - merged_members + len(first.merges)
    # every statement is a source of exactly one principle, with its votes
    sources = [s for p in c.principles for s in p.sources]
    assert sorted(s.id for s in sources) == sorted(first.selection.statements.index)
    assert all(
        isinstance(s, StatementSource) and s.gac >= 0.723 and set(s.group_agree) == {"0", "1"}
        for s in sources
    )
    # deterministic: the same inputs give the same constitution
    again = build_constitution(table, threshold=0.723, embedder=embedder, name="public")
    assert again.constitution.content_hash == c.content_hash

    # a person rejects one merge and rewords another; the next run applies the file
    data = with_review_merges(yaml.safe_load(review.read_text()))
    data["merges"][0]["decision"] = "reject"
    data["merges"][1]["wording"] = "Choose the response that a careful, honest person would give."
    review.write_text(yaml.safe_dump(data))
    second = build_constitution(table, threshold=0.723, embedder=embedder, review=review, name="public")
    assert second.reviewed
    merged = next(p for p in second.constitution.principles if "merge" in p.metadata)
    assert len(merged.sources) >= 2 and merged.sources[0].gac == max(s.gac for s in merged.sources)
    applied = [m for m in data["merges"] if m.get("decision", "accept") == "accept"]
    assert len(second.constitution) == 116 - sum(len(m["members"]) - 1 for m in applied)
    reworded = second.constitution.principle(f"s{data['merges'][1]['keep']}")
    assert reworded.comparison == "Choose the response that a careful, honest person would give."
    assert reworded.metadata["merge"]["wording_by"] == "person"
    assert second.constitution.content_hash != c.content_hash


def test_all_formats_with_sources(table: pd.DataFrame, embedder, tmp_path: Path) -> None:
    c = build_constitution(table, count=20, embedder=embedder).constitution
    for suffix in ("json", "yaml", "md", "html", "recipe.json"):
        c.save(tmp_path / f"p.{suffix}")
    assert Constitution.load(tmp_path / "p.json") == c == Constitution.load(tmp_path / "p.yaml")
    md = (tmp_path / "p.md").read_text()
    assert "Source: statement" in md and "GAC" in md


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: d["merges"][0].update(members=["99999"]),
            r"merges.0.members: statement\(s\) \['99999'\] are not",
        ),
        (
            lambda d: d["merges"][0].update(decision="maybe"),
            r"merges.0.decision: expected 'accept' or 'reject'",
        ),
        (lambda d: d["merges"][0].update(keep="nope"), r"merges.0.keep: nope is not one of the members"),
        (
            lambda d: d["merges"][1].update(members=list(d["merges"][0]["members"])),
            r"merges.1.members: statement .* already",
        ),
        (lambda d: d["merges"][0].update(colour="red"), r"unknown field"),
        (lambda d: d.pop("merges"), r"expected a mapping with a 'merges' list"),
    ],
)
def test_bad_review_files_refused(
    table: pd.DataFrame, proposed_review: str, tmp_path: Path, edit, expected
) -> None:
    review = tmp_path / "review.yaml"
    data = yaml.safe_load(proposed_review)
    edit(data)
    review.write_text(yaml.safe_dump(data))
    with pytest.raises(ConstitutionError, match=expected):
        build_constitution(table, threshold=0.723, embedder=_no_embedding, review=review)


def _no_embedding(texts):
    raise AssertionError("a reviewed build must not need embeddings")


def test_lm_merge_wording_is_recorded_and_a_persons_edit_shows(tmp_path: Path) -> None:
    import numpy as np

    from ccai.constitution.dedup import propose_merges, read_review, write_review

    vectors = np.array([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0]])
    texts = ["The AI should not lie", "The AI should never lie", "The AI should be kind"]
    merges = propose_merges(
        ["1", "2", "3"], texts, vectors, 0.9, wording=lambda group: "Choose the response that never lies"
    )
    assert [m.members for m in merges] == [["1", "2"]]
    assert merges[0].wording == "Choose the response that never lies."
    assert merges[0].wording_by == "lm (proposed; review before accepting)"
    review = write_review(tmp_path / "review.yaml", merges, {})
    assert read_review(review, ["1", "2", "3"])[0].wording_by.startswith("lm (proposed")
    data = yaml.safe_load(review.read_text())
    data["merges"][0]["wording"] = "Choose the response that is most truthful."
    review.write_text(yaml.safe_dump(data))
    assert read_review(review, ["1", "2", "3"])[0].wording_by == "person (edited the lm proposal)"
    rejected = propose_merges(["1", "2", "3"], texts, vectors, 0.9, wording=lambda group: "Sure, here it is")
    assert rejected[0].wording is None and "rejected" in rejected[0].wording_by
