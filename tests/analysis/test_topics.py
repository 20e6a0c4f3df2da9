"""Topics: MiniLM embeddings, k-means, class-based TF-IDF names, consensus per topic (issue 12)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ccai.analysis import analyze
from ccai.analysis.topics import add_topics, class_tfidf_names


def test_class_tfidf_names_pick_each_topics_distinctive_words():
    texts = [
        "more buses and trains for the city",
        "trains should run every ten minutes",
        "cheaper buses please",
        "schools need more teachers",
        "teachers deserve better pay in schools",
        "smaller classes in schools",
    ]
    labels = np.array([0, 0, 0, 1, 1, 1])
    names = class_tfidf_names(texts, labels, n_words=2)
    assert set(names[0]) <= {"buses", "trains", "city", "cheaper", "minutes", "run"}
    assert "buses" in names[0] or "trains" in names[0]
    assert "schools" in names[1] and "teachers" in names[1]


def test_topics_use_the_given_embedder_and_table_follows_the_statistics(load_opendata):
    export = load_opendata("brexit-consensus")
    result = analyze(export.votes, export.statements)
    eligible = result.eligible_statements()
    # an embedder that puts statements with an even id in one place and odd ids in another
    ids = eligible.index.to_numpy()
    lookup = dict(zip(eligible["text"].astype(str), ids, strict=False))

    def embed(texts):
        return np.array([[1.0, 0.0] if lookup[t] % 2 == 0 else [0.0, 1.0] for t in texts])

    add_topics(result, 2, embed=embed)
    topic = result.statements.loc[ids, "topic"].to_numpy()
    assert len(set(topic[ids % 2 == 0])) == 1 and len(set(topic[ids % 2 == 1])) == 1
    table = result.topics
    assert table["n_statements"].sum() == len(ids)
    for row in table.itertuples():
        mine = result.statements[result.statements["topic"] == row.topic]
        assert row.gac_mean == pytest.approx(mine["gac"].mean())
        assert row.best_statement == mine["gac"].idxmax()
    assert (result.statements.loc[~result.statements["eligible"], "topic"] == -1).all()


@pytest.mark.slow
def test_minilm_topics_on_a_real_conversation(load_opendata, tmp_path):
    """The bundled MiniLM, offline: brexit-consensus's 50 statements in 4 named topics (~15 s, torch)."""
    export = load_opendata("brexit-consensus")
    result = analyze(export.votes, export.statements)
    add_topics(result, 4, seed=0)
    table = result.topics
    assert len(table) == 4 and table["name"].str.len().gt(0).all()
    assert table["n_statements"].sum() == int(result.statements["eligible"].sum())
    again = add_topics(analyze(export.votes, export.statements), 4, seed=0).topics
    pd.testing.assert_frame_equal(table, again)  # seeded
    from ccai.analysis.report import render_report

    html = render_report(result)
    assert 'id="topics"' in html and table["name"].iloc[0] in html
    result.to_dir(tmp_path)
    assert (tmp_path / "topics.csv").is_file()


def test_citation_checker_drops_and_counts_unsupported_sentences():
    from ccai.analysis.topics import check_citations

    text = (
        "People want more buses (#3, #7). Everyone loves trains. "
        "Schools matter too (#99). Cheaper fares are popular (#7)!"
    )
    kept, dropped = check_citations(text, {3, 7, 8})
    assert kept == ["People want more buses (#3, #7).", "Cheaper fares are popular (#7)!"]
    assert dropped == 2  # no citation; a citation of a statement the model was not shown
    assert check_citations("", {1}) == ([], 0)


@pytest.mark.model
def test_topic_summaries_from_the_bundled_model_cite_only_shown_statements(load_opendata):
    """SmolLM2 (bundled) writes the summaries; whatever it writes, only checked sentences survive.
    Cost: minutes on a busy 2-core machine (model load and generation)."""
    from ccai.analysis.topics import check_citations, summarize_topics
    from ccai.models.backends import make_backend

    export = load_opendata("brexit-consensus")
    result = analyze(export.votes, export.statements)
    ids = result.eligible_statements().index.to_numpy()
    lookup = dict(zip(result.eligible_statements()["text"].astype(str), ids, strict=False))
    add_topics(
        result, 2, embed=lambda texts: np.array([[1.0, 0.0] if lookup[t] < 25 else [0.0, 1.0] for t in texts])
    )
    table = summarize_topics(result, make_backend("smollm2"), max_statements=8, max_new_tokens=48)
    print(table[["name", "summary", "summary_dropped"]].to_string())  # what the model wrote, after checking
    assert {"summary", "summary_dropped"} <= set(table.columns)
    for row in table.itertuples():
        shown = set(
            result.statements[result.statements["topic"] == row.topic]
            .sort_values("gac", ascending=False)
            .head(8)
            .index.astype(int)
        )
        kept, dropped = check_citations(row.summary, shown)
        assert " ".join(kept) == row.summary and dropped == 0  # what is kept passes the check again
