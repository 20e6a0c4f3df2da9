"""The rule rewriter over every statement in the shared data that is phrased as a rule for an AI.

Costs about 5 s (1,418 CCAI comments and the 17 Polis conversations, rules and spelling checks only).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ccai.constitution.rewrite import (
    AI_RULE,
    NEEDS_WORDING,
    PREFIX,
    Rewrite,
    clean,
    garbled,
    rewrite_statement,
    suspected_typos,
)


def _ai_rules(shared_data: Path) -> list[str]:
    files = [
        shared_data / "ccai_polis" / "comments.csv",
        *sorted((shared_data / "polis-opendata").glob("*/comments.csv")),
    ]
    texts = []
    for path in files:
        for text in pd.read_csv(path)["comment-body"].dropna().astype(str):
            text = clean(text)
            if text and AI_RULE.match(text):
                texts.append(text)
    return texts


def test_the_check_catches_the_known_garbles() -> None:
    """The check itself can fire: forms the first rewriter produced (issue 13) are all caught."""
    bad = {
        "AI should clearly identify itself": "Choose the response that clearlies identify itself.",
        "The AI should should be kind": "Choose the response that shoulds be kind.",
        "AI should not lie but tell the truth": PREFIX + "is least likely to lie but tell the truth.",
        "AI should be friend not foe": "Choose the response that is most friend not foe.",
        "AI should be accessible to all": "Choose the response that accessibles to all.",
        "AI should cite sources and not plagiarize": PREFIX + "cites sources and not plagiarize.",
    }
    for statement, comparison in bad.items():
        rw = Rewrite(statement, comparison, "Identify x.", "Please x.", "positive", "verb")
        assert garbled(rw), comparison


def test_no_garbled_rewrite_over_all_ai_rules(shared_data: Path) -> None:
    texts = _ai_rules(shared_data)
    assert (
        len(texts) > 600
    )  # the CCAI comments phrased "AI should ..." (the Polis ones are about other things)
    rewrites = [rewrite_statement(t) for t in texts]
    problems = [(r.statement, garbled(r)) for r in rewrites if garbled(r)]
    assert problems == []
    for r in rewrites:
        assert r.comparison.startswith(PREFIX) and r.comparison.endswith((".", '."'))
        assert "shoulds" not in r.comparison and "lies " not in r.comparison.split("likely to")[0][:0]
        if r.needs_wording:
            assert r.reason, r.statement  # every statement sent to review says why
    rewritten = sum(not r.needs_wording for r in rewrites)
    # the check must not pass by sending everything to review
    assert rewritten / len(rewrites) >= 0.75, f"only {rewritten} of {len(rewrites)} rewritten by the rules"


@pytest.mark.parametrize(
    ("statement", "comparison"),
    [
        (
            "AI should clearly and repeatedly identify itself as AI",
            "clearly and repeatedly identifies itself as AI.",
        ),
        (
            "AI should immediately stop hate groups from using it",
            "immediately stops hate groups from using it.",
        ),
        (
            "AI should properly cite sources and not plagerize",
            "properly cites sources and does not plagerize.",
        ),
        ("The AI should should not be scary", "is least scary."),
        ("The AI should not lie but tell the truth", "does not lie but tells the truth."),
        ("AI should simply stick to facts", "simply sticks to facts."),
    ],
)
def test_former_garbles_now_read_right(statement: str, comparison: str) -> None:
    assert rewrite_statement(statement).comparison == PREFIX + comparison


def test_unrewritable_statements_go_to_review_not_quoted_as_principles() -> None:
    for statement in (
        "AI should not be used for scams",
        "AI should ideologically neutral",
        "AI should be AI",
    ):
        rw = rewrite_statement(statement)
        assert rw.rule == NEEDS_WORDING and rw.needs_wording and rw.reason
        assert rw.metadata()["needs_wording"] is True


def test_typos_are_flagged_with_a_suggestion_never_changed() -> None:
    rw = rewrite_statement("AI should properly cite sources and not plagerize")
    assert dict(rw.typos) == {"plagerize": "plagiarize"}
    assert "plagerize" in rw.comparison  # the words stay the public's
    assert rw.metadata()["typos"] == {"plagerize": "plagiarize"}
    assert suspected_typos("The AI should be honest") == ()
    assert ("should should", "should") in rewrite_statement("The AI should should be kind").typos
