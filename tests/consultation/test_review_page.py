"""The organiser's review page writes the build's review.yaml, which `ccai constitution build` reads back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from ccai.constitution.dedup import read_review, read_wordings
from ccai.constitution.study import CCAI_REVIEW


@pytest.fixture
def review_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "review.yaml"
    shutil.copy(CCAI_REVIEW, path)
    monkeypatch.setenv("CCAI_REVIEW_FILE", str(path))
    return path


def _ids(path: Path) -> list[str]:
    data = yaml.safe_load(path.read_text())
    members = [str(s) for m in data["merges"] for s in m["members"]]
    return members + [str(w["statement"]) for w in data["wordings"]]


def test_owner_reviews_merges_and_wordings_in_the_file(owner, moderator, review_file: Path) -> None:
    page = owner.client.get("/admin/review")
    assert page.status_code == 200 and "r001" in page.text and "The AI must  be fair" in page.text
    before = review_file.read_text()
    statement = str(yaml.safe_load(before)["wordings"][0]["statement"])
    response = owner.post(
        "/admin/review",
        {
            "decision_r001": "reject",
            "mwording_r002": "Choose the response that is most accessible to people with disabilities.",
            f"swording_{statement}": "Choose the response that is most careful.",
        },
    )
    assert response.status_code == 303 and "saved=" in response.headers["location"]
    merges = {m.id: m for m in read_review(review_file, _ids(review_file))}
    wording = "Choose the response that is most accessible to people with disabilities."
    assert merges["r002"].wording == wording
    assert merges["r002"].wording_by.startswith("person (owner")
    raw = {m["id"]: m for m in yaml.safe_load(review_file.read_text())["merges"]}
    assert raw["r001"]["decision"] == "reject"
    assert read_wordings(review_file, _ids(review_file))[statement].wording == (
        "Choose the response that is most careful."
    )
    assert review_file.read_text().startswith("# Proposed merges")  # the header is kept
    shown = owner.client.get(response.headers["location"])
    assert "Saved: 1 decision(s), 2 wording(s) changed" in shown.text


def test_bad_edits_are_refused_and_the_file_is_left_alone(owner, moderator, review_file: Path) -> None:
    before = review_file.read_text()
    bad = owner.post("/admin/review", {"mwording_r001": "be fair", "decision_r002": "reject"})
    assert bad.status_code == 400 and "Choose the response that" in bad.text
    assert ">be fair</textarea>" in bad.text  # what was typed is shown again, to correct
    assert 'value="reject" checked' in bad.text
    assert owner.post("/admin/review", {"keep_r001": "999"}).status_code == 400
    assert owner.post("/admin/review", {"decision_zz9": "reject"}).status_code == 400
    assert review_file.read_text() == before
    assert moderator.client.get("/admin/review").status_code == 403
    assert moderator.post("/admin/review", {"decision_r001": "reject"}).status_code == 403
    assert review_file.read_text() == before
