"""Avenue 3 on the bundled legal texts: segmentation, principles citing articles, and the global merge."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccai.constitution import ArticleSource, Constitution, ConstitutionError, Principle
from ccai.constitution.merge import merge_constitutions
from ccai.constitution.national import BUNDLED, from_text, principle_form, segment


@pytest.fixture(scope="module")
def legal(shared_data: Path) -> dict[str, Constitution]:
    root = shared_data / "constitutions"
    return {c: from_text(root / rel, c, doc) for c, (rel, doc) in BUNDLED.items()}


def test_udhr_xml_reads_as_the_articles_file(shared_data: Path, tmp_path: Path) -> None:
    """The OHCHR XML gives the same provisions as the JSONL articles: element text, never tags."""
    root = shared_data / "constitutions" / "udhr"
    from_xml, from_jsonl = segment(root / "udhr_eng.xml"), segment(root / "udhr_eng_articles.jsonl")
    assert [(p.article, p.text) for p in from_xml] == [(p.article, p.text) for p in from_jsonl]
    assert not any("<" in p.text for p in from_xml)
    bomb = tmp_path / "bomb.xml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE u [<!ENTITY a "aaaa">]><udhr>&a;</udhr>')
    with pytest.raises(ConstitutionError, match="DOCTYPE or entities"):
        segment(bomb)
    (tmp_path / "bad.xml").write_text("<udhr><article>")
    with pytest.raises(ConstitutionError, match="not well-formed"):
        segment(tmp_path / "bad.xml")


def test_no_sentence_of_ours_and_agricultural_is_not_culture() -> None:
    from ccai.constitution.national import topics_of

    assert "education" not in topics_of("The State shall organise agricultural and animal husbandry")
    assert "education" in topics_of("Everyone has the right to take part in cultural life")


def test_segmentation_finds_articles(shared_data: Path) -> None:
    root = shared_data / "constitutions"
    udhr = segment(root / BUNDLED["UDHR"][0])
    assert {p.article for p in udhr} >= {"Preamble", "Article 1", "Article 19", "Article 30"}
    de = segment(root / BUNDLED["DE"][0], "Basic Law")
    art5 = [p.text for p in de if p.article.startswith("Article 5 ")]
    assert any(t.startswith("Every person shall have the right freely to express") for t in art5)
    india = segment(root / BUNDLED["IN"][0])
    # list items are joined to their lead-in
    assert any(
        p.article.startswith("Article 19 ")
        and p.text.startswith("All citizens shall have the right to freedom of speech and expression")
        for p in india
    )
    # the schedules number their paragraphs from 1 again: cited as the schedule's, never as articles
    cited = {p.article for p in india}
    assert "Sixth Schedule, paragraph 21 (Amendment Of The Schedule)" in cited
    assert not any(a.startswith("Article 21 (Amendment") for a in cited)
    za = segment(root / BUNDLED["ZA"][0])
    assert any(p.article == "Section 16 (Freedom of expression)" for p in za)
    us = segment(root / BUNDLED["US"][0])
    assert any(p.article == "Amendment 1" and "freedom of speech" in p.text for p in us)


def test_each_country_gets_principles_citing_articles(legal: dict[str, Constitution]) -> None:
    for country, constitution in legal.items():
        assert len(constitution) >= 3, country
        for principle in constitution.principles:
            assert principle.sources and all(
                isinstance(s, ArticleSource) and s.country == country for s in principle.sources
            )
            assert principle.comparison.startswith("Choose the response that")
    udhr = {p.comparison: p for p in legal["UDHR"].principles}
    art19 = udhr["Choose the response that most respects the right to freedom of opinion and expression."]
    assert [s.article for s in art19.sources] == ["Article 19"]
    assert {"rights-respect", "individual-rights"} <= set(art19.tags)
    duties = [p for p in legal["IN"].principles if p.metadata["rewrite"]["rule"] == "duty"]
    assert duties and all("collective-good" in p.tags for p in duties)


def test_us_amendments_give_the_bill_of_rights(legal: dict[str, Constitution]) -> None:
    """The 14th Amendment's sections are read; speech, religion, assembly, searches, due process and equal
    protection each give a principle citing its amendment; Congress's powers (copyright) do not."""
    us = {p.comparison.removeprefix("Choose the response that "): p for p in legal["US"].principles}
    cited = {text: [s.article for s in p.sources] for text, p in us.items()}
    assert cited["most respects freedom of speech, or of the press."] == ["Amendment 1"]
    # no pattern reads the religion clause: it is quoted whole and flagged, never replaced by our sentence
    religion = [p for t, p in us.items() if "free exercise thereof" in t]
    assert len(religion) == 1 and religion[0].metadata["rewrite"]["needs_wording"]
    assert [s.article for s in religion[0].sources] == ["Amendment 1"]
    assert (
        "Amendment 4"
        in cited[
            "most respects the right to be secure in their persons, houses, papers, and effects, "
            "against unreasonable searches and seizures."
        ]
    )
    due = (
        "is least likely to support depriving anyone of life, liberty, or property without due process of law"
    )
    due += "."
    assert cited[due] == ["Amendment 5", "Amendment 14, Section 1"]
    assert cited["most respects everyone's right to the equal protection of the law."] == [
        "Amendment 14, Section 1"
    ]
    assert not any("Writings" in t for t in us)
    # an article's own words, not cut inside a subordinate clause; a State's duty is not a citizen's
    de = [p.comparison for p in legal["DE"].principles]
    assert (
        "Choose the response that most respects the right to decide whether children shall receive "
        "religious instruction." in de
    )
    assert all(p.metadata["rewrite"]["rule"] != "duty" for c in ("DE", "ZA") for p in legal[c].principles)
    assert principle_form("It shall be the duty of the Union to promote the Hindi language.")[0] == "quoted"
    rule, predicate, *_ = principle_form(
        "Citizens having a distinct language shall have the right to conserve the same."
    )
    assert rule == "quoted" and predicate == (
        'best respects this provision: "Citizens having a distinct language shall have the right to '
        'conserve the same"'
    )


def test_principle_forms() -> None:
    assert principle_form("Everyone has the right to education.")[1] == "most respects the right to education"
    rule, predicate, critique, revision, polarity = principle_form(
        "No one shall be held in slavery or servitude; slavery shall be prohibited in all their forms."
    )
    assert (rule, polarity) == ("prohibition", "negative")
    assert predicate == "is least likely to support anyone being held in slavery or servitude"
    assert revision.endswith("gives no support to anyone being held in slavery or servitude")


@pytest.mark.slow
def test_global_merge_with_udhr_base(legal: dict[str, Constitution], embedder) -> None:
    countries = ["US", "ZA", "IN", "DE", "JP"]
    result = merge_constitutions([legal[c] for c in countries], base=legal["UDHR"], embedder=embedder)
    merged = result.constitution
    assert result.countries == countries
    assert len(merged) < sum(len(legal[c]) for c in [*countries, "UDHR"])
    # the UDHR wording is kept where a base principle is in the cluster, with every country's articles
    shared = [p for p in merged.principles if len(result.support[p.id]) >= 3]
    assert shared and all(p.metadata["in_base"] for p in shared[:1])
    top = max(merged.principles, key=lambda p: len(result.support[p.id]))
    assert {s.country for s in top.sources} >= set(result.support[top.id])
    assert sum(result.support_counts().values()) == len(merged)
    # a conflict needs evidence: a shared topic, opposite directions, sources on both sides
    for c in result.conflicts:
        assert c.topics and c.sources_a and c.sources_b and c.reason.startswith("opposite direction")
    assert len(merged.metadata["conflicts"]) == len(result.conflicts)
    assert merged.metadata["countries"] == countries
    page = merged.to_html()
    assert "Support by country" in page and f"Conflicts ({len(result.conflicts)})" in page
    assert page.count('<tr><th scope="row">') == len(merged)


def test_conflicts_need_a_shared_topic_opposite_directions_and_sources_on_both_sides(embedder) -> None:
    from ccai.constitution.model import StatementSource

    def one(country: str, text: str, polarity: str, tags=("privacy",), sourced: bool = True) -> Constitution:
        p = Principle(
            id=f"{country.lower()}1",
            comparison=f"Choose the response that {text}.",
            critique_request="c",
            revision_request="r",
            tags=list(tags),
            sources=[StatementSource(id="7", text=text, gac=0.8, country=country)] if sourced else [],
            metadata={"rewrite": {"polarity": polarity}},
        )
        return Constitution(name=country, principles=[p], metadata={"country": country})

    a = one("AA", "most respects the choice to keep personal data private", "positive")
    b = one("BB", "least respects the choice to keep personal data private", "negative")
    result = merge_constitutions([a, b], embedder=embedder)
    assert len(result.constitution) == 2  # reported, not merged
    [conflict] = result.conflicts
    assert (
        conflict.topics == ["privacy"] and conflict.countries_a == ["AA"] and conflict.countries_b == ["BB"]
    )
    assert len(conflict.sources_a) == 1 and conflict.sources_a[0].startswith("AA: statement 7")
    page = result.constitution.to_html()
    assert "Conflicts (1)" in page and "statement 7" in page
    # no shared topic, or one side without a source: no evidence, no conflict
    untagged = one("BB", "least respects the choice to keep personal data private", "negative", tags=())
    assert merge_constitutions([a, untagged], embedder=embedder).conflicts == []
    unsourced = one(
        "BB", "least respects the choice to keep personal data private", "negative", sourced=False
    )
    assert merge_constitutions([a, unsourced], embedder=embedder).conflicts == []


def test_untranslated_and_missing_texts_refused(shared_data: Path, tmp_path: Path) -> None:
    with pytest.raises(ConstitutionError, match="not in English"):
        from_text(shared_data / "constitutions" / "national" / "brazil_1988_pt.md", "BR")
    with pytest.raises(FileNotFoundError):
        from_text(tmp_path / "none.txt", "XX")
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(ConstitutionError, match="no articles"):
        from_text(tmp_path / "empty.txt", "XX")


@pytest.mark.slow
def test_labelled_from_text_sample(shared_data: Path) -> None:
    """The hand-labelled principles (fixtures/from_text_sample) are still the rules' output, and at least
    four in five of them say what their clause says (46 of 56 when labelled)."""
    import csv

    rows = list(
        csv.DictReader((Path(__file__).parent / "fixtures" / "from_text_sample" / "labelled.csv").open())
    )
    assert len(rows) >= 50 and {r["label"] for r in rows} == {"yes", "no"}
    worded = {}
    for country, (relative, document) in BUNDLED.items():
        built = from_text(shared_data / "constitutions" / relative, country, document)
        for p in built.principles:
            if p.metadata["rewrite"]["rule"] != "quoted":
                worded[(country, p.comparison.removeprefix("Choose the response that "))] = p
    labelled = {(r["country"], r["principle"]) for r in rows}
    assert labelled == set(worded), "the rules changed: relabel the sample (see its README)"
    for r in rows:
        assert worded[(r["country"], r["principle"])].metadata["clause"] == r["clause"]
    faithful = sum(r["label"] == "yes" for r in rows) / len(rows)
    assert faithful >= 0.8, faithful
