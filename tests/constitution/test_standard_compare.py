"""The project's standard constitution, and comparing constitutions (concept overlap, tags, HTML report)."""

from __future__ import annotations

from pathlib import Path

from ccai.constitution import Constitution, Principle
from ccai.constitution.compare import compare, mark_inspired_by_standard
from ccai.constitution.standard import STANDARD_PATH, build_standard, standard_constitution


def test_shipped_standard_is_generated_from_source() -> None:
    shipped = standard_constitution()
    assert shipped == build_standard()
    assert Constitution.load(STANDARD_PATH.with_suffix(".yaml")) == shipped
    assert 40 <= len(shipped) <= 60
    areas = {p.metadata["area"] for p in shipped.principles}
    assert areas == {"harm", "rights", "honesty", "fairness", "lm", "helpful"}
    assert all(p.comparison.startswith("Choose the response that") for p in shipped.principles)


def test_compare_self_and_cai_paper(embedder, cai_paper: Constitution, tmp_path: Path) -> None:
    standard = standard_constitution()
    same = compare(standard, standard, embedder)
    assert same.a_covered == same.b_covered == 1.0 and not same.unique_to_a()
    other = compare(cai_paper, standard, embedder)
    assert 0.0 <= other.a_covered <= 1.0 and 0.0 <= other.b_covered <= 1.0
    assert len(other.matched_pairs()) + len(other.unique_to_a()) == len(cai_paper)
    curve = other.coverage_curve()
    assert list(curve.values()) == sorted(curve.values(), reverse=True)
    marked = mark_inspired_by_standard(other)
    assert sum("inspired-by-standard" in p.tags for p in marked.principles) == len(other.matched_pairs())


def test_compare_report_escapes_text(embedder) -> None:
    evil = Constitution(
        name="<script>x</script>",
        principles=[
            Principle(
                id="p1",
                comparison="Choose the response that is <b>kind</b>.",
                critique_request="c",
                revision_request="r",
            )
        ],
    )
    page = compare(evil, standard_constitution(), embedder).to_html()
    assert "<script>x" not in page and "<b>kind" not in page and "&lt;b&gt;kind" in page


def test_matching_is_one_to_one_and_html_agrees_with_summary(embedder) -> None:
    def make(name: str, texts: list[str]) -> Constitution:
        return Constitution(
            name=name,
            principles=[
                Principle(id=f"p{i}", comparison=t, critique_request="c", revision_request="r")
                for i, t in enumerate(texts)
            ],
        )

    a = make("a", ["Choose the response that is most honest.", "Choose the response that is most truthful."])
    b = make("b", ["Choose the response that is most honest.", "Choose the response that cites its sources."])
    result = compare(a, b, embedder, threshold=0.6)
    assert [(x, y) for x, y, _ in result.matched_pairs()] == [("p0", "p0")]  # one B principle, one match
    assert result.a_covered == 0.5 and result.unique_to_a() == ["p1"]
    page = result.to_html()
    assert page.count("<td>p0</td>") == 2 and result.summary()["matched_pairs"] == 1
    marked = mark_inspired_by_standard(result)
    assert [p.id for p in marked.principles if "inspired-by-standard" in p.tags] == ["p0"]


def test_principle_clauses_split_several_ideas() -> None:
    from ccai.constitution.clauses import principle_clauses

    whole, *ideas = principle_clauses(
        "Please choose the response that is the most helpful, honest, and harmless."
    )
    assert whole.startswith("Please choose") and ideas == [
        "the most helpful",
        "the most honest",
        "the most harmless",
    ]
    assert principle_clauses("Choose the response that is as harmless and ethical as possible.")[1:] == [
        "is as harmless as possible",
        "is as ethical as possible",
    ]
    # a list whose last item is a longer phrase is left whole; a one-idea principle is only its core
    assert (
        principle_clauses(
            "Choose the response that is least likely to assist with fraud, theft or other crimes."
        )[1:]
        == []
    )
    assert principle_clauses("Choose the response that is most truthful about what it believes.")[1:] == [
        "is most truthful about what it believes",
        "is most truthful",
    ]


def test_cai_paper_matches_standard_clause_by_clause(embedder, cai_paper: Constitution) -> None:
    result = compare(cai_paper, standard_constitution(), embedder)
    clauses = {(a, b): (ca, cb) for a, b, _, ca, cb in result.matched_clauses()}
    assert clauses[("cai-paper-01", "std-21")] == ("the most honest", "is most truthful")  # honest ~ truthful
    assert ("cai-paper-03", "std-51") in clauses  # "as helpful as possible" ~ "as helpful as it can"
    pairs = result.summary()["pairs"]
    assert [(p["a"], p["b"]) for p in pairs] == [(a, b) for a, b, _ in result.matched_pairs()]
    page = result.to_html()
    assert "clause: <mark>the most honest</mark>" in page


def test_no_hub_match_between_control_and_violence(embedder) -> None:
    a = Constitution(
        name="a",
        principles=[
            Principle(
                id=f"p{i}",
                comparison=f"Choose the response that is least likely to {t}.",
                critique_request="c",
                revision_request="r",
            )
            for i, t in enumerate(["control humans", "condone violent behavior"])
        ],
    )
    pairs = {(x, y) for x, y, _ in compare(a, standard_constitution(), embedder).matched_pairs()}
    assert ("p0", "std-01") not in pairs and ("p1", "std-01") in pairs
