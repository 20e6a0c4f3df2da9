"""Rule-based rewriting of statements into principles, and the tag rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccai.constitution.lm_check import rewrite_all_with_lm, rewrite_with_lm
from ccai.constitution.rewrite import PREFIX, core_text, rewrite_statement, third_person
from ccai.constitution.select import read_statements, select_statements
from ccai.constitution.tags import assign_tags


@pytest.mark.parametrize(
    ("statement", "comparison", "rule"),
    [
        ("The AI should be respectful", "Choose the response that is most respectful.", "be-adjective"),
        ("The AI should not be toxic", "Choose the response that is least toxic.", "not-be"),
        ("Ai should not lie", "Choose the response that is least likely to lie.", "not-verb"),
        (
            "AI shouldn\u2019t invade privacy",
            "Choose the response that is least likely to invade privacy.",
            "not-verb",
        ),
        ("The AI should tell the truth", "Choose the response that tells the truth.", "verb"),
        (
            "The AI should be as helpful to the user as possible.",
            "Choose the response that is as helpful to the user as possible.",
            "be-as",
        ),
        (
            "AI should never control humans",
            "Choose the response that is least likely to control humans.",
            "not-verb",
        ),
        (
            "The AI should be an educational tool",
            "Choose the response that best acts as an educational tool.",
            "be-noun",
        ),
        (
            "The AI should always address itself as AI and not try to decept in any ways.",
            "Choose the response that always addresses itself as AI and does not try to decept in any ways.",
            "verb",
        ),
        (
            "AI should not be used for scams",
            "Choose the response that best follows this statement from the public (wording to review): "
            '"AI should not be used for scams."',
            "needs-wording",
        ),
        (
            "Everyone should be treated equally well.",
            "Choose the response that best follows this statement from the public (wording to review): "
            '"Everyone should be treated equally well."',
            "needs-wording",
        ),
    ],
)
def test_smallest_change_rules(statement: str, comparison: str, rule: str) -> None:
    rw = rewrite_statement(statement)
    assert (rw.comparison, rw.rule) == (comparison, rule)
    assert rw.critique_request.startswith("Identify specific ways in which the assistant's last response")
    assert rw.revision_request.startswith("Please rewrite the assistant's response so that it")


def test_negative_statement_critique_and_revision() -> None:
    rw = rewrite_statement("The AI should not encourage users to harm themselves or others.")
    assert rw.polarity == "negative"
    assert rw.critique_request.endswith("last response may encourage users to harm themselves or others.")
    assert rw.revision_request.endswith("so that it does not encourage users to harm themselves or others.")
    mixed = rewrite_statement(
        "The AI should not encourage unlawful acts and should refuse to give advice on them"
    )
    assert mixed.comparison == (
        "Choose the response that is least likely to encourage unlawful acts, "
        "and refuses to give advice on them."
    )


def test_inflection() -> None:
    assert [third_person(v) for v in ("tell", "cry", "be", "have", "watch", "go", "play")] == [
        "tells",
        "cries",
        "is",
        "has",
        "watches",
        "goes",
        "plays",
    ]
    assert core_text("The AI shouldn't cause harm.") == "not cause harm"


def test_every_ccai_statement_rewritten(shared_data: Path) -> None:
    table = read_statements(shared_data / "ccai" / "ccai_statement_reference.csv")
    statements = select_statements(table, threshold=0.723).statements["text"]
    rewrites = [rewrite_statement(t) for t in statements]
    assert all(r.comparison.startswith(PREFIX) and r.comparison.endswith((".", '."')) for r in rewrites)
    assert all(".." not in r.comparison and ",," not in r.comparison for r in rewrites)
    to_review = sum(r.needs_wording for r in rewrites)
    assert to_review <= 12, "most statements should be rewritten, not sent to review"
    assert [rewrite_statement(t) for t in statements] == rewrites  # deterministic


def test_lm_rewriter_is_recorded_and_checked() -> None:
    """The LM is an injected batch callable (a training backend on the CLI); a plain function stands in."""
    prompts: list[str] = []

    def lm(batch: list[str]) -> list[str]:
        prompts.extend(batch)
        return ["Choose the response that is respectful\nextra line"] * len(batch)

    rw = rewrite_with_lm("The AI should be respectful", lm)
    assert rw.by == "lm" and rw.comparison == "Choose the response that is respectful."
    assert rw.metadata()["lm_answer"].startswith("Choose the response that is respectful")
    assert "Statement: The AI should be respectful" in prompts[0]
    rejected = rewrite_with_lm(
        "The AI should be respectful", lambda b: ["Sure! Here is a principle:"] * len(b)
    )
    assert rejected.by == "rules (lm answer rejected)"
    assert rejected.comparison == "Choose the response that is most respectful."
    assert rejected.metadata()["lm_answer"] == "Sure! Here is a principle:"  # kept, never silent
    assert rejected.metadata()["lm_rejected"][0].startswith("not a principle: does not open with")
    with pytest.raises(ValueError, match="1 answers for 2 prompts"):
        rewrite_all_with_lm(["The AI should be kind", "The AI should be fair"], lambda b: ["x"])


@pytest.mark.parametrize(
    ("statement", "answer", "reason"),
    [
        # the bundled model's answers that changed the meaning (issue 13)
        (
            "The AI should cite its sources",
            "Choose the response that is not a source of information.",
            "changes the polarity",
        ),
        (
            "The AI should cite its sources",
            "Choose the response that cites reliable sources.",
            "adds words the source does not have: reliable",
        ),
        (
            "The AI should not help with scams",
            "Choose the response that helps with scams.",
            "changes the polarity: the source asks to avoid something",
        ),
        (
            "The AI should be honest and kind",
            "Choose the response that is most honest.",
            "drops words of the source: kind",
        ),
        ("The AI should be honest", "Choose the response that should be honest.", "restates the statement"),
        ("The AI should be honest", "Choose the response that honest answers", "does not start with a verb"),
        (
            "The AI should be honest",
            "Choose the response that Statement: be honest",
            "carries a prompt label",
        ),
    ],
)
def test_lm_answers_that_change_the_meaning_are_rejected_with_the_reason(
    statement: str, answer: str, reason: str
) -> None:
    rw = rewrite_with_lm(statement, lambda b: [answer] * len(b))
    assert rw.by == "rules (lm answer rejected)" and rw.comparison == rewrite_statement(statement).comparison
    assert any(reason in r for r in rw.lm_rejected), rw.lm_rejected


def test_faithful_lm_answers_pass_the_checks() -> None:
    for statement, answer in (
        ("The AI should not help with scams", "Choose the response that refuses to help with scams"),
        ("The AI should not help with scams", "Choose the response that is least likely to help with scams"),
        ("The AI should be fair and impartial", "Choose the response that is most fair and impartial"),
        ("The AI should tell the truth", "Choose the response that always tells the truth"),
    ):
        rw = rewrite_with_lm(statement, lambda b, a=answer: [a] * len(b))
        assert rw.by == "lm" and not rw.lm_rejected, (statement, rw.lm_rejected)


def test_a_rejected_answer_for_a_statement_the_rules_cannot_word_goes_to_review_with_its_reason() -> None:
    statement = "Humans should be protected. The AI should help."
    assert rewrite_statement(statement).needs_wording
    rw = rewrite_with_lm(statement, lambda b: ["Choose the response that harms people"] * len(b))
    assert rw.needs_wording and "the LM's answer was rejected" in (rw.reason or "")


def test_rules_keep_english_grammatical() -> None:
    """Forms that read badly in the first version, from the CCAI statements."""
    cases = {
        "The AI should not be nasty or lead a person on": (
            "is least likely to be nasty or lead a person on.",
            "is unlikely to be nasty or lead a person on.",
        ),
        "The AI should not endorse misinformation nor expand conspiracy theories or violence": (
            "is least likely to endorse misinformation or expand conspiracy theories or violence.",
            "does not endorse misinformation or expand conspiracy theories or violence.",
        ),
        "The AI should refuse to give advice on how to go through with or help with unlawful acts": (
            "refuses to give advice on how to go through with or help with unlawful acts.",
            "refuses to give advice on how to go through with or help with unlawful acts.",
        ),
        "The AI should be smart": ("is smartest.", "is smart."),
    }
    for statement, (comparison, revision) in cases.items():
        rw = rewrite_statement(statement)
        assert rw.comparison == PREFIX + comparison, statement
        assert rw.revision_request.endswith(" " + revision), statement
    assert rewrite_statement("The AI should always knows it boundaries").critique_request.endswith(
        "fails to know it boundaries."
    )


def test_tags_are_keyword_rules() -> None:
    assert assign_tags("Choose the response that is least likely to invade privacy.", "negative") == [
        "avoids-undesired",
        "individual-rights",
        "privacy",
        "rights-respect",
    ]
    tags = assign_tags("Choose the response that always identifies itself as AI immediately.", "positive")
    assert {"promotes-desired", "lm-specific", "transparency"} <= set(tags)
    assert "existential-risk" in assign_tags(
        "Choose the response that is least likely to control humans.", "negative"
    )
    assert "helpfulness" not in assign_tags(
        "Choose the response that is least likely to help plan violence.", "negative"
    )
