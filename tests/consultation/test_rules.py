"""The pure rules: votes, submission gating, moderation, routing, screening, XIDs."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from ccai.consultation import rules
from ccai.consultation.rules import Candidate, Moderation, RuleError


@pytest.mark.parametrize("value", [1, -1, 0])
def test_valid_votes(value):
    assert rules.validate_vote(value) == value


@pytest.mark.parametrize("value", [2, -2, "1", 1.0, True, None])
def test_invalid_votes_are_refused(value):
    with pytest.raises(RuleError, match="vote must be"):
        rules.validate_vote(value)


POLICY = rules.SubmissionPolicy(is_open=True, unlock_threshold=3, max_length=40)


def test_submission_unlocks_after_threshold():
    with pytest.raises(RuleError, match="2 more") as err:
        rules.check_submission(POLICY, 1, "AI should cite sources", set())
    assert err.value.status == 403
    assert rules.check_submission(POLICY, 3, "  AI   should cite sources ", set()) == "AI should cite sources"


def test_submission_refusals_name_the_reason():
    with pytest.raises(RuleError, match="closed"):
        rules.check_submission(rules.SubmissionPolicy(False, 0, 40), 10, "x", set())
    with pytest.raises(RuleError, match="limit is 40"):
        rules.check_submission(POLICY, 3, "x" * 41, set())
    with pytest.raises(RuleError, match="empty"):
        rules.check_submission(POLICY, 3, " \n\t ", set())
    with pytest.raises(RuleError, match="already exists") as err:
        rules.check_submission(
            POLICY, 3, "ai should CITE sources.", {rules.text_key("AI should cite sources")}
        )
    assert err.value.status == 409


def test_normalised_duplicates_but_not_different_wording():
    assert rules.text_key("The AI must not lie!") == rules.text_key("the  ai must not LIE")
    assert rules.text_key("The AI must not lie") != rules.text_key("The AI must never lie")


def test_moderation_state_machine():
    assert rules.initial_state(is_seed=True) == Moderation.ACCEPTED
    assert rules.initial_state(is_seed=False) == Moderation.PENDING
    assert rules.moderate(Moderation.PENDING, "accept") == Moderation.ACCEPTED
    assert rules.moderate(Moderation.ACCEPTED, "reject", "spam") == Moderation.REJECTED
    assert rules.moderate(Moderation.REJECTED, "reset") == Moderation.PENDING
    with pytest.raises(RuleError, match="reason"):
        rules.moderate(Moderation.PENDING, "reject", "  ")
    with pytest.raises(RuleError, match="already accepted"):
        rules.moderate(Moderation.ACCEPTED, "accept")
    with pytest.raises(RuleError, match="action must be"):
        rules.moderate(Moderation.PENDING, "delete")


def test_visibility_strict_and_permissive():
    assert rules.visible(Moderation.PENDING, strict=False)
    assert not rules.visible(Moderation.PENDING, strict=True)
    assert rules.visible(Moderation.ACCEPTED, strict=True)
    assert not rules.visible(Moderation.REJECTED, strict=False)


CANDIDATES = [
    Candidate(1, Moderation.ACCEPTED, is_seed=True),
    Candidate(2, Moderation.ACCEPTED, agree=20, disagree=0, seen=20),
    Candidate(3, Moderation.PENDING, agree=1, seen=1),
    Candidate(4, Moderation.REJECTED),
    Candidate(5, Moderation.ACCEPTED, duplicate_of=2),
]


def test_routing_only_unseen_visible_non_duplicates():
    assert [c.id for c in rules.routable(CANDIDATES, seen={2}, strict=False)] == [1, 3]
    assert [c.id for c in rules.routable(CANDIDATES, seen=set(), strict=True)] == [1, 2]
    rng = np.random.default_rng(0)
    assert rules.choose_next(CANDIDATES, {1, 2, 3}, strict=False, seed_first=False, rng=rng) is None


def test_seed_first_shows_seeds_before_the_rest():
    for seed in range(20):
        chosen = rules.choose_next(CANDIDATES, set(), False, True, np.random.default_rng(seed))
        assert chosen.id == 1


def test_routing_follows_polis_priority():
    # a fresh statement outweighs a well-worn one; the draw frequency follows the priority ratio
    fresh = Candidate(10, Moderation.ACCEPTED, agree=1, seen=1)
    worn = Candidate(11, Moderation.ACCEPTED, agree=17, disagree=0, seen=20)  # 3 passes
    picks = Counter(
        rules.choose_next([fresh, worn], set(), False, False, np.random.default_rng(s)).id
        for s in range(2000)
    )
    share = picks[10] / 2000
    a, d, s = np.array([1, 17]), np.array([0, 0]), np.array([1, 20])
    from ccai.analysis.consensus import comment_priority

    weights = comment_priority(a, d, s, np.zeros(2), np.zeros(2, bool))
    assert share == pytest.approx(weights[0] / weights.sum(), abs=0.03)
    assert share > 0.8


def test_routing_is_reproducible():
    def run(seed):
        return rules.choose_next(CANDIDATES[:3], set(), False, False, rules.routing_rng(1, 7, 0, seed)).id

    assert [run(0) for _ in range(5)] == [run(0)] * 5


def test_screening_eligibility():
    screening = {1: {"Yes"}, 2: {"Weekly", "Daily"}}
    assert rules.eligible({1: "Yes", 2: "Daily"}, screening)
    assert not rules.eligible({1: "No", 2: "Daily"}, screening)
    assert not rules.eligible({1: "Yes"}, screening)
    assert rules.eligible({}, {})


def test_xid_rules():
    assert rules.check_xid(" abc ", required=False, allowlist=None) == "abc"
    assert rules.check_xid("", required=False, allowlist=None) is None
    with pytest.raises(RuleError, match="needs an external id"):
        rules.check_xid(None, required=True, allowlist=None)
    with pytest.raises(RuleError, match="allow-list"):
        rules.check_xid("eve", required=True, allowlist={"alice"})
    with pytest.raises(RuleError, match="longer than 200"):
        rules.check_xid("x" * 201, required=False, allowlist=None)
