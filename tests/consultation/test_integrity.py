"""What an organiser hit in the first hour (issue 11, items 1-5), each on SQLite and PostgreSQL.

Partial writes (a refused request or a rolled-back unit of work stores nothing), strict moderation never
leaking unreviewed statements, the moderator's Reason box, a vote gate that can always be reached, and an
export that holds every answer and flag the app collects.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile

import pytest
from fastapi.testclient import TestClient

from ccai.consultation import service
from ccai.consultation.store import Conversation
from tests.consultation.conftest import report_text


def _api_join(client: TestClient, cid: int) -> dict:
    token = client.post(f"/api/v1/conversations/{cid}/participants").json()["token"]
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------- 1. partial writes


def test_rolled_back_unit_of_work_stores_nothing(app, owner, count):
    """A savepoint inside the unit of work (numbering) must not commit on its own (SQLite used to)."""
    cid = owner.new_conversation()
    with app.state.sessions() as db:
        conversation = db.get(Conversation, cid)
        service.join(db, conversation, service.new_token())
        service.add_seed(db, conversation, "Kept only if committed")
        service.add_seed(db, conversation, "Also kept only if committed")
        db.rollback()
    assert count("participants", conversation_id=cid) == 0
    assert count("statements", conversation_id=cid) == 0


def test_refused_seed_csv_stores_nothing_and_names_true_lines(moderator, owner, count):
    cid = owner.new_conversation()
    too_many = "comment_text\n" + "".join(f"Bulk statement {i}\n" for i in range(service.MAX_SEED_ROWS + 1))
    response = moderator.post(
        f"/admin/c/{cid}/seeds.csv", files={"file": ("big.csv", too_many.encode(), "text/csv")}
    )
    assert response.status_code == 400 and str(service.MAX_SEED_ROWS) in response.text
    assert count("statements", conversation_id=cid) == 0
    # blank lines do not shift the line numbers the report names
    data = "comment_text\n\nFirst seed\n\n\nFirst seed\n" + "x" * 400 + "\n"
    response = moderator.post(
        f"/admin/c/{cid}/seeds.csv", files={"file": ("s.csv", data.encode(), "text/csv")}
    )
    assert response.status_code == 200
    rows = dict(re.findall(r"<tr><td>(\d+)</td><td>([^<]+)</td></tr>", response.text))
    assert set(rows) == {"6", "7"}, rows  # the duplicate on line 6, the over-long one on line 7
    assert "3 (" in response.text  # the accepted one on line 3


# ---------------------------------------------------------------- 2. strict moderation


def test_strict_moderation_hides_unreviewed_statements_everywhere(app, owner, moderator, visitor, count):
    """Votes gathered while permissive; then strict: the unreviewed statement leaves every public view."""
    cid = owner.new_conversation(unlock_threshold=0)
    seeds = [f"Seed statement {i} about AI behaviour" for i in range(6)]
    owner.seed(cid, *seeds)
    author = visitor(cid)
    assert author.write("UNREVIEWED participant statement").status_code == 303
    client = TestClient(app)
    for k in range(14):  # two camps, so the analysis forms groups and ranks every statement
        headers = _api_join(client, cid)
        for number in range(7):
            vote = 1 if (number + k) % 2 == 0 else -1
            response = client.post(
                f"/api/v1/conversations/{cid}/votes",
                headers=headers,
                json={"statement": number, "vote": vote},
            )
            assert response.status_code == 201, response.text
    permissive = report_text(app, client, cid)
    assert "UNREVIEWED" in permissive  # the probe can see it while permissive: the check below can fail
    owner.configure(cid, unlock_threshold=0, strict_moderation=True)
    results = client.get(f"/api/v1/conversations/{cid}/results").json()
    assert {r["id"] for r in results} == set(range(6))
    stale = client.get(f"/c/{cid}/report").text  # the kept report, while the worker recomputes
    assert "UNREVIEWED" not in stale and "Newer votes are being analysed" in stale
    assert "UNREVIEWED" not in report_text(app, client, cid)
    newcomer = visitor(cid)
    assert "UNREVIEWED" not in newcomer.page()
    assert newcomer.vote_all() == 6
    # once accepted it is public again
    moderator.post(f"/admin/c/{cid}/statements/6", {"op": "accept"})
    assert 6 in {r["id"] for r in client.get(f"/api/v1/conversations/{cid}/results").json()}


# ---------------------------------------------------------------- 3. the Reason box


def _forms(page: str) -> list[str]:
    return re.findall(r"<form\b.*?</form>", page, flags=re.S)


def test_enter_in_reason_box_cannot_accept_and_rejection_stays(app, owner, moderator, visitor):
    cid = owner.new_conversation(unlock_threshold=0, strict_moderation=True)
    owner.seed(cid, "A seed")
    assert visitor(cid).write("Please reject me").status_code == 303
    page = moderator.client.get(f"/admin/c/{cid}/moderate").text
    with_reason = [f for f in _forms(page) if 'name="reason"' in f]
    assert with_reason
    for form in with_reason:  # Enter submits a form's first submit button: it must be the rejection
        buttons = re.findall(r'<button type="submit" name="op" value="(\w+)"', form)
        assert buttons == ["reject"], buttons
    response = moderator.post(f"/admin/c/{cid}/statements/1", {"op": "reject", "reason": "off topic"})
    assert response.status_code == 303
    rejected = moderator.client.get(f"/admin/c/{cid}/moderate?tab=rejected").text
    assert "Please reject me" in rejected
    assert not [f for f in _forms(rejected) if 'name="reason"' in f and 'value="accept"' in f]
    person = visitor(cid)
    assert person.vote_all() == 1  # only the seed reaches participants
    assert "Please reject me" not in report_text(app, TestClient(app), cid)


# ---------------------------------------------------------------- 4. the vote gate


def test_vote_gate_never_exceeds_the_statements_there_are(owner, visitor):
    cid = owner.new_conversation()  # the default gate of 30
    owner.seed(cid, "One", "Two", "Three")
    admin_page = owner.client.get(f"/admin/c/{cid}", params={"lang": "en"}).text
    assert "Writing unlocks after 30 votes, but only 3 statement(s)" in admin_page
    person = visitor(cid)
    page = person.page(lang="en")
    assert "Vote on 3 more" in page
    assert person.vote_all() == 3
    page = person.page(lang="en")
    assert "voted on every statement" in page and "to unlock writing" not in page  # no contradiction
    assert person.write("My own statement, now unlocked").status_code == 303
    owner.seed(cid, *[f"Seed {i}" for i in range(40)])
    assert "Writing unlocks after" not in owner.client.get(f"/admin/c/{cid}", params={"lang": "en"}).text


# ---------------------------------------------------------------- 5. what it collects comes back out


def test_export_has_answers_importance_and_no_formulas(owner, moderator, visitor):
    cid = owner.new_conversation(unlock_threshold=0)
    for kind, text, choices, admitting in (
        ("screening", "Are you 18 or older?", "Yes\nNo", "Yes"),
        ("demographic", "Your age group", "18-29\n30-49\n50+", ""),
    ):
        response = owner.post(
            f"/admin/c/{cid}/questions",
            {"kind": kind, "text": text, "choices": choices, "eligible_choices": admitting},
        )
        assert response.status_code == 303, response.text
    owner.seed(cid, '=HYPERLINK("http://x.example","click")', "A plain seed")
    person = visitor(cid)
    ids = [int(i) for i in re.findall(r'name="q(\d+)"', person.page())]
    response = person.post("/answers", {f"q{ids[0]}": "Yes", f"q{ids[1]}": "30-49"})
    assert response.status_code == 303
    assert person.vote(1, statement=0, important=True).status_code == 303
    assert person.vote(-1, statement=1).status_code == 303
    response = moderator.client.get(f"/admin/c/{cid}/export.zip")
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    answers = list(csv.DictReader(io.StringIO(archive.read("participant-answers.csv").decode())))
    assert {(a["question-kind"], a["answer"]) for a in answers} == {
        ("screening", "Yes"),
        ("demographic", "30-49"),
    }
    assert all(a["eligible"] == "True" for a in answers)
    important = list(csv.DictReader(io.StringIO(archive.read("important-votes.csv").decode())))
    assert [(r["comment-id"], r["vote"]) for r in important] == [("0", "1")]
    comments = archive.read("comments.csv").decode()
    assert "'=HYPERLINK" in comments and ',"=HYPERLINK' not in comments and ",=HYPERLINK" not in comments


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "plain", "'quoted"])
def test_spreadsheet_escaping_round_trips(text):
    from ccai.consultation.exchange import spreadsheet_safe, unescape_cell

    safe = spreadsheet_safe(text)
    assert not safe.startswith(("=", "+", "-", "@", "\t"))
    assert unescape_cell(safe) == text


# ---------------------------------------------------------------- 10. colours people can tell apart


def _srgb_to_linear(c):
    import numpy as np

    c = np.asarray(c, float)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _lab(linear_rgb):
    import numpy as np

    xyz = (
        linear_rgb
        @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
        / np.array([0.9505, 1.0, 1.089])
    )
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


# Machado, Oliveira & Fernandes (2009), severity 1.0, applied to linear RGB
CVD = {
    "protan": [
        [0.152286, 1.052583, -0.204868],
        [0.114503, 0.786281, 0.099216],
        [-0.003882, -0.048116, 1.051998],
    ],
    "deutan": [
        [0.367322, 0.860646, -0.227968],
        [0.280085, 0.672501, 0.047413],
        [-0.011820, 0.042940, 0.968881],
    ],
    "tritan": [
        [1.255528, -0.076749, -0.178779],
        [-0.078411, 0.930809, 0.147602],
        [0.004733, 0.691367, 0.303900],
    ],
}


def test_group_colours_stay_apart_for_colour_blind_readers():
    """Every pair of group colours differs by ΔE76 >= 20 under each simulated colour vision (the old
    palette's pairs fell to 6-9 for deutan and protan readers)."""
    import itertools

    import numpy as np

    from ccai.consultation.live_report import PALETTE

    rgb = np.array([[int(c[i : i + 2], 16) / 255 for i in (1, 3, 5)] for c in PALETTE])
    linear = _srgb_to_linear(rgb)
    for name, matrix in {"normal": np.eye(3), **CVD}.items():
        lab = _lab(np.clip(linear @ np.asarray(matrix).T, 0, 1))
        for a, b in itertools.combinations(range(len(lab)), 2):
            distance = float(np.linalg.norm(lab[a] - lab[b]))
            assert distance >= 20, f"{PALETTE[a]} vs {PALETTE[b]} under {name}: ΔE {distance:.1f}"


def test_organiser_dashboard_counts_participation_by_answer(owner, visitor):
    cid = owner.new_conversation(unlock_threshold=0)
    response = owner.post(
        f"/admin/c/{cid}/questions",
        {"kind": "demographic", "text": "Region", "choices": "North\nSouth", "eligible_choices": ""},
    )
    assert response.status_code == 303
    owner.seed(cid, "One", "Two")
    for region, votes in (("North", 2), ("North", 0), ("South", 1)):
        person = visitor(cid)
        qid = int(re.search(r'name="q(\d+)"', person.page()).group(1))
        assert person.post("/answers", {f"q{qid}": region}).status_code == 303
        for _ in range(votes):
            person.vote(1)
    page = owner.client.get(f"/admin/c/{cid}", params={"lang": "en"}).text
    assert "3 joined · 2 voted · 3 votes" in page
    rows = re.findall(r"<tr><td>Region</td><td>(\w+)</td><td>(\d+)</td><td>(\d+)</td></tr>", page)
    assert rows == [("North", "2", "1"), ("South", "1", "1")]


def test_participant_sees_where_they_stand(app, owner, visitor):
    """After 7 votes a participant sees their own point on the map and their group's statements."""
    cid = owner.new_conversation(unlock_threshold=0)
    owner.seed(cid, *[f"Where-I-stand statement {i}" for i in range(8)])
    client = TestClient(app)
    for k in range(16):  # two camps
        headers = _api_join(client, cid)
        for number in range(8):
            vote = 1 if (number % 2 == 0 or k % 2 == 0) else -1
            client.post(
                f"/api/v1/conversations/{cid}/votes",
                headers=headers,
                json={"statement": number, "vote": vote},
            )
    person = visitor(cid)
    early = person.client.get(f"/c/{cid}/me", params={"lang": "en"}).text
    assert "Vote on 7 more statement(s)" in early and "Where do I stand?" not in person.page()
    while (number := person.current()) is not None:
        person.vote(1 if number % 2 == 0 else -1, number)
    assert "Where do I stand?" in person.page()
    page = report_text(app, person.client, cid, "me")
    assert "You are in group" in page and 'stroke-width="3"><title>You</title>' in page
    assert "What sets your group apart" in page


def test_report_previews_the_constitution_as_votes_arrive(app, owner, moderator):
    """The report shows which statements pass GAC >= 0.723 now, as the constitution stage's principles,
    versioned: a rejection drops a principle from the kept preview at once and makes a new version."""
    cid = owner.new_conversation(unlock_threshold=0)
    texts = ["The AI should tell the truth.", "The AI should respect privacy.", "The AI should be funny."]
    owner.seed(cid, *texts, "The AI should obey every order.", "The AI should avoid politics.")
    client = TestClient(app)
    for k in range(16):  # two camps: all agree on 0 and 1, split on the rest
        headers = _api_join(client, cid)
        for number in range(5):
            vote = 1 if number < 2 or k % 2 == 0 else -1
            client.post(
                f"/api/v1/conversations/{cid}/votes",
                headers=headers,
                json={"statement": number, "vote": vote},
            )

    def preview(page: str) -> str:
        return page.split('id="preview"', 1)[1].split("</section>", 1)[0]

    first = preview(report_text(app, client, cid, lang="en"))
    assert "at least 0.723" in first and "(version 1:" in first
    assert first.count("<li>") == 2 and "#0 (GAC" in first and "#1 (GAC" in first and "#2 (GAC" not in first
    assert "Choose the response that" in first and "truth" in first and "privacy" in first
    response = moderator.post(f"/admin/c/{cid}/statements/1", {"op": "reject", "reason": "test"})
    assert response.status_code == 303
    stale = preview(client.get(f"/c/{cid}/report", params={"lang": "en"}).text)
    assert "#1 (GAC" not in stale and "privacy" not in stale  # hidden at once, before the worker runs
    second = preview(report_text(app, client, cid, lang="en"))
    assert "(version 2:" in second and second.count("<li>") == 1 and "#0 (GAC" in second
