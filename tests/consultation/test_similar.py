"""Near-duplicate hints with the bundled MiniLM embeddings (real model, loaded once)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from ccai.consultation.similar import NearDuplicateFinder


@pytest.fixture(scope="module")
def finder():
    return NearDuplicateFinder()


def test_finder_ranks_paraphrases_above_unrelated(finder):
    candidates = [
        (1, "The AI should never lie to people."),
        (2, "Cats are better than dogs."),
        (3, "AI systems must respect user privacy."),
    ]
    found = finder.similar("AI must not tell lies to humans", candidates)
    assert [i for i, _ in found] == [1]
    assert finder.similar("Completely unrelated gardening advice", candidates) == []
    assert finder.embed(["x"]).shape == (1, 384)


def test_participant_sees_hints_before_submitting(app, owner, visitor, finder, count):
    app.state.finder = finder
    try:
        cid = owner.new_conversation(unlock_threshold=0)
        owner.seed(cid, "The AI should never lie to people.")
        person = visitor(cid)
        hinted = person.write("AI must not tell lies to humans")
        assert hinted.status_code == 200 and "already exist" in hinted.text
        assert "The AI should never lie to people." in hinted.text and "Submit it anyway" in hinted.text
        assert count("statements", conversation_id=cid) == 1  # nothing stored yet
        assert person.write("AI must not tell lies to humans", confirm=True).status_code == 303
        assert count("statements", conversation_id=cid) == 2
        api = TestClient(app).post(
            f"/api/v1/conversations/{cid}/similar", json={"text": "The AI shouldn't lie"}
        )
        assert api.status_code == 200 and api.json()[0]["similarity"] > 0.75
        queue = owner.client.get(f"/admin/c/{cid}/moderate").text
        assert "Similar to #0" in queue  # moderators see the closest existing statement
    finally:
        app.state.finder = None
