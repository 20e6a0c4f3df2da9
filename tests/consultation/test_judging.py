"""The judging round on SQLite and PostgreSQL: configuration, answers generated ahead, judgments, report, CSV.

The model servers are remote APIs from the app's point of view, so here they are replaced by a client that
answers deterministically (``EchoClient``: it records each request). The real server path
(``ccai models serve`` with the bundled model) is exercised by ``test_judging_browser.py``.
"""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
import sqlalchemy as sa

from ccai.consultation import judging, judging_report, live_report, service
from ccai.consultation.judging_store import JudgedModel, JudgeVerdict
from ccai.models.backends import Generation

PROMPTS = ["How do I apologise to a friend?", "Is it safe to eat raw eggs?", "Write a haiku about rain."]


class EchoClient:
    """Stands in for a model server: '<model> answers: <prompt>' for every chat request."""

    calls: list[tuple[str, str, int, int]] = []

    def __init__(self, model):
        self.model = model

    def generate_with_info(self, prompts, *, max_new_tokens, temperature=0.7, top_p=0.9, seed=0):
        out = []
        for messages in prompts:
            EchoClient.calls.append((self.model.model, messages[-1]["content"], max_new_tokens, seed))
            out.append(Generation(f"{self.model.model} answers: {messages[-1]['content']}", "stop"))
        return out


@pytest.fixture(autouse=True)
def echo(monkeypatch):
    EchoClient.calls = []
    monkeypatch.setattr(judging, "default_client", EchoClient)


def _setup(owner, models=("base", "public"), prompts=PROMPTS, **settings) -> int:
    cid = owner.new_conversation("Judge the models", **settings)
    for label in models:
        response = owner.post(
            f"/admin/c/{cid}/judging/models",
            {"label": label, "base_url": "http://127.0.0.1:9/v1", "model": f"m-{label}"},
        )
        assert response.status_code == 303, response.text
    response = owner.post(f"/admin/c/{cid}/judging/prompts", {"prompts": "\n".join(prompts)})
    assert response.status_code == 303, response.text
    return cid


def _enable(owner, cid, **extra):
    form = {"enabled": "on", "max_tokens": "32"} | extra
    response = owner.post(f"/admin/c/{cid}/judging/settings", form)
    assert response.status_code == 303, response.text


def _item(html: str) -> dict:
    prompt = re.search(r'name="prompt" value="(\d+)"', html)
    pair = re.search(r'name="pair" value="([\d-]+)"', html)
    answers = re.findall(r'<div class="answer-text">([^<]*)</div>', html)
    return {"prompt": int(prompt.group(1)), "pair": pair.group(1), "a": answers[0], "b": answers[1]}


def _judge(visitor, choice: str, item: dict | None = None):
    home = visitor.client.get(f"/c/{visitor.cid}").text  # the cookie
    page = visitor.client.get(f"/c/{visitor.cid}/judge").text
    item = item or _item(page)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page + home).group(1)
    data = {"csrf_token": csrf, "prompt": item["prompt"], "pair": item["pair"], "choice": choice}
    return visitor.client.post(f"/c/{visitor.cid}/judge", data=data, follow_redirects=False), item


def test_organiser_sets_up_the_round_and_answers_are_generated_ahead(owner, visitor, count):
    cid = owner.new_conversation("Judge the models")
    one = owner.post(
        f"/admin/c/{cid}/judging/models", {"label": "base", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    )
    assert one.status_code == 303
    refused = owner.post(f"/admin/c/{cid}/judging/settings", {"enabled": "on", "max_tokens": "32"})
    assert refused.status_code == 400 and "at least two models" in refused.text
    bad_url = owner.post(
        f"/admin/c/{cid}/judging/models", {"label": "x", "base_url": "ftp://host", "model": "m"}
    )
    assert bad_url.status_code == 400 and "base_url" in bad_url.text
    again = owner.post(
        f"/admin/c/{cid}/judging/models", {"label": "base", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    )
    assert again.status_code == 409
    owner.post(
        f"/admin/c/{cid}/judging/models",
        {"label": "public", "base_url": "http://127.0.0.1:9/v1", "model": "p"},
    )
    owner.post(f"/admin/c/{cid}/judging/prompts", {"prompts": "\n".join(PROMPTS[:2])})
    repeat = owner.post(f"/admin/c/{cid}/judging/prompts", {"prompts": "\n\n" + PROMPTS[0]})
    assert repeat.status_code == 400 and "line 3" in repeat.text
    _enable(owner, cid)
    # nothing to judge before the answers exist
    person = visitor(cid)
    assert "You have judged every pair" in person.client.get(f"/c/{cid}/judge").text
    response = owner.post(f"/admin/c/{cid}/judging/generate")
    assert response.status_code == 303
    assert count("model_answers") >= 4
    assert sorted(c[1] for c in EchoClient.calls) == sorted(PROMPTS[:2] * 2)
    assert {c[2] for c in EchoClient.calls} == {32} and {c[3] for c in EchoClient.calls} == {0, 1}
    page = owner.client.get(f"/admin/c/{cid}/judging").text
    assert "4 answers generated" in page and "m answers: " + PROMPTS[0] in page
    assert owner.post(f"/admin/c/{cid}/judging/generate").status_code == 400  # nothing missing
    # a participant sees the prompt, two anonymous answers, never a model label
    html = person.client.get(f"/c/{cid}/judge").text
    item = _item(html)
    assert {item["a"].split(" answers")[0], item["b"].split(" answers")[0]} == {"m", "p"}
    assert "public" not in html and "http://127.0.0.1:9" not in html


def test_judgments_follow_the_vote_rules(owner, visitor, count, app):
    cid = _setup(owner)
    owner.post(f"/admin/c/{cid}/judging/generate")
    person = visitor(cid)
    page = person.client.get(f"/c/{cid}/judge").text
    assert "no judging round open" in page
    response, _ = _judge(person, "a", {"prompt": 0, "pair": "1-2"})
    assert response.status_code == 404  # not enabled yet
    _enable(owner, cid)
    first = _item(person.client.get(f"/c/{cid}/judge").text)
    assert first == _item(person.client.get(f"/c/{cid}/judge").text)  # a reload shows the same sides
    response, _ = _judge(person, "sideways")
    assert response.status_code == 400
    bad = person.client.post(
        f"/c/{cid}/judge", data={"csrf_token": "forged", "prompt": 0, "pair": first["pair"], "choice": "a"}
    )
    assert bad.status_code == 403
    before = count("judgments", conversation_id=cid)
    response, item = _judge(person, "a")
    assert response.status_code == 303 and item == first
    assert count("judgments", conversation_id=cid) == before + 1
    followed = person.client.get(response.headers["location"]).text
    assert "Judgment saved." in followed and "data-focus" in followed
    # the stored sides are the ones shown: answer A's model is left_id
    with app.state.sessions() as db:
        row = judging.judgment_rows(db, cid)[-1]
        assert item["a"].startswith(f"m-{row['model_a']} answers")
    # htmx gets only the panel
    page = person.client.get(f"/c/{cid}/judge").text
    nxt = _item(page)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    partial = person.client.post(
        f"/c/{cid}/judge",
        data={"csrf_token": csrf, "prompt": nxt["prompt"], "pair": nxt["pair"], "choice": "both_bad"},
        headers={"HX-Request": "true"},
    )
    assert partial.status_code == 200 and partial.text.startswith('<div id="judging">')
    # a closed conversation takes no judgments
    owner.configure(cid, topic="Judge the models", is_open=False)
    data = {"csrf_token": csrf, "prompt": nxt["prompt"], "pair": nxt["pair"], "choice": "b"}
    response = person.client.post(f"/c/{cid}/judge", data=data, follow_redirects=False)
    assert response.status_code == 403 and "closed" in response.text
    assert count("judgments", conversation_id=cid) == before + 2


def test_moderation_of_answers(owner, visitor, app):
    cid = _setup(owner, prompts=PROMPTS[:1], strict_moderation=True)
    owner.post(f"/admin/c/{cid}/judging/generate")
    _enable(owner, cid)
    person = visitor(cid)
    assert "You have judged every pair" in person.client.get(f"/c/{cid}/judge").text  # pending: hidden
    ids = [
        int(x)
        for x in re.findall(r"/judging/answers/(\d+)", owner.client.get(f"/admin/c/{cid}/judging").text)
    ]
    assert len(set(ids)) == 2
    no_reason = owner.post(f"/admin/c/{cid}/judging/answers/{ids[0]}", {"op": "reject"})
    assert no_reason.status_code == 400
    page = owner.client.get(f"/admin/c/{cid}/judging").text
    forms = re.findall(r"<form .*?</form>", page, re.S)
    for form in [f for f in forms if 'name="reason"' in f]:  # Enter in Reason submits only the rejection
        assert re.findall(r'name="op" value="(\w+)"', form) == ["reject"]
    for answer in sorted(set(ids)):
        assert owner.post(f"/admin/c/{cid}/judging/answers/{answer}", {"op": "accept"}).status_code == 303
    assert "Answer A" in person.client.get(f"/c/{cid}/judge").text
    response = owner.post(f"/admin/c/{cid}/judging/answers/{ids[0]}", {"op": "reject", "reason": "unsafe"})
    assert response.status_code == 303
    assert "You have judged every pair" in person.client.get(f"/c/{cid}/judge").text


def test_report_win_rates_per_opinion_group_ratings_and_ai_agreement(owner, visitor, app):
    """Two camps vote opposite ways on the statements and prefer opposite models: the report finds both."""
    cid = _setup(owner)
    owner.seed(cid, *[f"Statement {k}: the assistant should be careful about topic {k}" for k in range(6)])
    owner.post(f"/admin/c/{cid}/judging/generate")
    _enable(owner, cid)
    people = []
    for k in range(16):
        person = visitor(cid)
        camp = k % 2
        while (number := person.current()) is not None:
            value = 1 if (number % 2 == 0 or camp == 0) else -1
            assert person.vote(value, number).status_code == 303
        for _ in PROMPTS:  # camp 0 prefers model "public", camp 1 "base" (model names m-public / m-base)
            page = person.client.get(f"/c/{cid}/judge").text
            item = _item(page)
            wanted = "m-public" if camp == 0 else "m-base"
            choice = "a" if item["a"].startswith(wanted) else "b"
            response, _ = _judge(person, choice, item)
            assert response.status_code == 303
        people.append(person)
    with app.state.sessions() as db:
        conversation = service.get_conversation(db, cid)
        live = live_report.build(db, conversation)
        report = judging_report.build(db, conversation, live, n_boot=50)
    everyone = next(r for r in report.pairs if r["group"] == "all")
    assert everyone["n"] == 16 * 3 and everyone["a_wins"] == 24 and everyone["b_wins"] == 24
    groups = [r for r in report.pairs if r["group"] not in ("all", "none")]
    assert len(groups) == 2, report.pairs
    rates = sorted(r["win_rate"] for r in groups)
    assert rates == [0.0, 1.0]  # pair (base, public): one group always picks base, the other never
    assert all(r["low"] is not None and r["low"] <= r["win_rate"] <= r["high"] for r in groups)
    assert report.ratings["base"]["elo"] == 0.0
    assert report.left_share["n"] == 48
    assert report.ai_agreement == []
    # an AI judge that prefers "public" on every prompt agrees with camp 0 only
    with app.state.sessions() as db:
        ids = {
            m.label: m.id
            for m in db.scalars(sa.select(JudgedModel).where(JudgedModel.conversation_id == cid))
        }
        for prompt in judging.prompts(db, cid):
            db.add(
                JudgeVerdict(
                    prompt_id=prompt.id,
                    first_id=ids["base"],
                    second_id=ids["public"],
                    p_first_wins=0.1,
                    judge="openai:x#j",
                )
            )
        db.commit()
        report = judging_report.build(db, service.get_conversation(db, cid), live, n_boot=50)
    agreement = {r["group"]: r["agreement"] for r in report.ai_agreement}
    assert agreement["all"] == 0.5 and sorted(v for g, v in agreement.items() if g != "all") == [0.0, 1.0]
    first = people[0].client.get(f"/c/{cid}/report/judging").text  # the worker computes the groups ...
    assert 'id="report-computing"' in first
    app.state.jobs.join()
    page = people[0].client.get(f"/c/{cid}/report/judging").text  # ... and the page shows them
    assert 'id="win-rates"' in page and "Group" in page and "openai:x#j" in page

    # the joint section: a principle written from statement 1 (camp 0 agreed, camp 1 disagreed), with the
    # judgments on the prompts close to it
    from ccai.consultation import principles_report
    from ccai.consultation.chat import load_constitution
    from ccai.consultation.similar import NearDuplicateFinder

    constitution = load_constitution(
        _constitution_json(statement="Statement 1: the assistant should be careful about topic 1")
    )
    with app.state.sessions() as db:
        names, rows = principles_report.build(
            db, service.get_conversation(db, cid), constitution, NearDuplicateFinder(), live
        )
    privacy, cooking = rows[0], rows[1]
    assert privacy.statements[0]["number"] == 1 and privacy.statements[0]["agree"] == 0.5
    assert sorted(privacy.statements[0]["groups"].values()) == [0.0, 1.0] and sorted(names) == sorted(
        privacy.statements[0]["groups"]
    )
    assert cooking.prompts and cooking.prompts[0]["text"] == "Is it safe to eat raw eggs?"
    assert cooking.judgments == [{"a": "base", "b": "public", "n": 16, "win_rate": 0.5}]
    # ... and on the page, once the organiser attaches that constitution
    app.state.chat_finder = getattr(app.state, "chat_finder", None) or NearDuplicateFinder()
    data = _constitution_json(statement="Statement 1: the assistant should be careful about topic 1")
    assert (
        owner.post(f"/admin/c/{cid}/judging/constitution", files={"file": ("c.json", data)}).status_code
        == 303
    )
    page = people[1].client.get(f"/c/{cid}/report/judging").text
    section = page[page.index('id="principle-privacy"') : page.index('id="principle-cooking"')]
    assert "Statement 1: the assistant should be careful about topic 1" in section
    assert re.findall(r"<td>(\d+) %</td>", section) == ["50", "100", "0"] or re.findall(
        r"<td>(\d+) %</td>", section
    ) == ["50", "0", "100"]
    assert "Is it safe to eat raw eggs?" in page[page.index('id="principle-cooking"') :]

    # ... and the AI judge's adherence from a `ccai eval` run on the same constitution joins each principle
    results = _adherence_results(load_constitution(data))
    refused = owner.post(
        f"/admin/c/{cid}/judging/adherence", files={"file": ("r.json", json.dumps({"details": {}}).encode())}
    )
    assert refused.status_code == 400 and "holds no adherence result" in refused.text
    attached = owner.post(f"/admin/c/{cid}/judging/adherence", files={"file": ("results.json", results)})
    assert attached.status_code == 303
    admin_page = owner.client.get(f"/admin/c/{cid}/judging").text
    assert "Attached: adherence on 2 principles of “test public”, against base." in admin_page
    page = people[1].client.get(f"/c/{cid}/report/judging").text
    assert "same content" in page[page.index('id="adherence-source"') :]
    section = page[page.index('id="principle-privacy"') : page.index('id="principle-cooking"')]
    cells = re.findall(r'<tr data-model="public"><td>public</td><td>(\d+) %</td>', section)
    assert cells == ["75"], section  # 3 wins of 4 prompts against the reference
    cooking = page[page.index('id="principle-cooking"') : page.index('id="principle-honesty"')]
    assert re.findall(r'<tr data-model="public"><td>public</td><td>(\d+) %</td>', cooking) == ["25"]
    honesty = page[page.index('id="principle-honesty"') :]
    assert "The AI judge did not evaluate this principle." in honesty
    # a result for another constitution is kept but not shown
    other = load_constitution(_constitution_json(statement="Something else entirely."))
    other = other.model_copy(update={"name": "another constitution"})
    owner.post(f"/admin/c/{cid}/judging/adherence", files={"file": ("r.json", _adherence_results(other))})
    page = people[1].client.get(f"/c/{cid}/report/judging").text
    assert "for another constitution" in page and 'class="adherence"' not in page


def test_report_is_built_once_per_state_of_its_inputs(owner, visitor, app):
    """A second view with nothing new reuses the built report; a judgment, a new verdict or an attached
    adherence result makes the next view build it again."""
    cid = _setup(owner)
    owner.post(f"/admin/c/{cid}/judging/generate")
    _enable(owner, cid)
    person = visitor(cid)
    assert _judge(person, "a")[0].status_code == 303
    cache = app.state.judging_reports
    person.client.get(f"/c/{cid}/report/judging")
    app.state.jobs.join()  # the opinion groups, computed by the worker
    first = person.client.get(f"/c/{cid}/report/judging").text
    builds = cache.builds
    again = person.client.get(f"/c/{cid}/report/judging").text
    assert cache.builds == builds and again == first
    assert _judge(person, "b")[0].status_code == 303  # the next item
    assert "2 judgments by 1 people" in person.client.get(f"/c/{cid}/report/judging").text
    assert cache.builds == builds + 1
    with app.state.sessions() as db:  # an AI-judge verdict arrives
        ids = {m.label: m.id for m in judging.models(db, cid)}
        prompt = judging.prompts(db, cid)[0]
        db.add(
            JudgeVerdict(
                prompt_id=prompt.id,
                first_id=ids["base"],
                second_id=ids["public"],
                p_first_wins=0.2,
                judge="openai:x#j",
            )
        )
        db.commit()
    assert "openai:x#j" in person.client.get(f"/c/{cid}/report/judging").text
    assert cache.builds == builds + 2


def _adherence_results(constitution) -> bytes:
    """A `ccai eval` results.json whose adherence section comes from the real summary code: model
    ``public`` against ``base`` wins 3 of 4 privacy prompts and 1 of 4 cooking prompts (honesty not run)."""
    from ccai.evaluation.adherence import Item, summarize

    evaluated = constitution.principles[:2]
    items = [
        Item("public", p.id, f"red-team/{k}", f"prompt {k} for {p.id}", "red-team")
        for p in evaluated
        for k in range(4)
    ]
    wins = {"privacy": 3, "cooking": 1}
    records = [
        {
            "id": i.key,
            "a": "base",
            "b": "public",
            "p_a_wins": 0.1 if int(i.prompt_id[-1]) < wins[i.principle] else 0.9,
        }
        for i in items
    ]
    summary = summarize(
        [("public", constitution, evaluated)], items, records, ["base", "public"], seed=0, n_boot=50
    )
    return json.dumps({"details": {"adherence": summary}, "skipped": {}}).encode()


def test_export_csv_counts_the_latest_judgment(owner, visitor, app):
    cid = _setup(owner, prompts=['=HYPERLINK("http://x") what does this do?'])
    owner.post(f"/admin/c/{cid}/judging/generate")
    _enable(owner, cid)
    person = visitor(cid)
    page = person.client.get(f"/c/{cid}/judge").text
    item = _item(page)
    assert _judge(person, "a", item)[0].status_code == 303
    assert _judge(person, "both_bad", item)[0].status_code == 303  # changes the mind
    response = owner.client.get(f"/admin/c/{cid}/judgments.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 1 and rows[0]["choice"] == "both_bad" and rows[0]["preferred"] == ""
    assert rows[0]["prompt_text"] == '\'=HYPERLINK("http://x") what does this do?' and {
        rows[0]["model_a"],
        rows[0]["model_b"],
    } == {
        "base",
        "public",
    }
    assert list(rows[0]) == judging.EXPORT_COLUMNS
    assert visitor(cid).client.get(f"/admin/c/{cid}/judgments.csv", follow_redirects=False).status_code == 303


def test_sides_are_balanced_over_participants(owner, visitor):
    cid = _setup(owner, prompts=PROMPTS[:1])
    owner.post(f"/admin/c/{cid}/judging/generate")
    _enable(owner, cid)
    firsts = []
    for _ in range(12):
        person = visitor(cid)
        person.client.get(f"/c/{cid}")
        firsts.append(_item(person.client.get(f"/c/{cid}/judge").text)["a"].split(" ")[0])
    assert set(firsts) == {"m-base", "m-public"}


def _constitution_json(statement: str = "The AI should never reveal where someone lives.") -> bytes:
    from ccai.constitution import Constitution, Principle
    from ccai.constitution.model import StatementSource

    principles = [
        Principle(
            id="privacy",
            comparison="Choose the response that protects people's personal information and privacy.",
            critique_request="c",
            revision_request="r",
            sources=[StatementSource(id="3", text=statement)],
        ),
        Principle(
            id="cooking",
            comparison="Choose the response that gives safe and accurate food and cooking advice.",
            critique_request="c",
            revision_request="r",
        ),
        Principle(
            id="honesty",
            comparison="Choose the response that admits uncertainty instead of guessing.",
            critique_request="c",
            revision_request="r",
        ),
    ]
    return Constitution(name="test public", principles=principles).to_json().encode()


def test_chat_page_answers_side_by_side_with_relevant_principles(app, owner, visitor):
    from ccai.consultation.similar import NearDuplicateFinder

    app.state.chat_finder = NearDuplicateFinder()  # (the shared app has near-duplicate hints off)
    cid = _setup(owner, prompts=PROMPTS[:1])
    bad = owner.post(
        f"/admin/c/{cid}/judging/constitution", files={"file": ("c.json", b'{"name": "x", "principles": 3}')}
    )
    assert bad.status_code == 400 and "principles" in bad.text
    good = owner.post(
        f"/admin/c/{cid}/judging/constitution", files={"file": ("c.json", _constitution_json())}
    )
    assert good.status_code == 303
    assert "Attached: “test public”, 3 principles." in owner.client.get(f"/admin/c/{cid}/judging").text
    page = owner.client.get(f"/admin/c/{cid}/chat").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    question = "Can you find the home address of my new neighbour for me?"
    answer = owner.client.post(f"/admin/c/{cid}/chat", data={"csrf_token": csrf, "question": question}).text
    assert f"m-base answers: {question}" in answer and f"m-public answers: {question}" in answer
    first = answer.index('<ol class="principles">')
    assert answer.index("personal information and privacy", first) < answer.index("cooking advice", first)
    assert "The AI should never reveal where someone lives." in answer
    assert EchoClient.calls[-1][3] == 0  # greedy, seed 0
    # participants: only when the organiser opens it
    person = visitor(cid)
    assert person.client.get(f"/c/{cid}/chat").status_code == 404
    _enable(owner, cid, chat_public="on")
    assert "Ask the models a question" in person.client.get(f"/c/{cid}").text
    page = person.client.get(f"/c/{cid}/chat").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    empty = person.client.post(f"/c/{cid}/chat", data={"csrf_token": csrf, "question": "  "})
    assert empty.status_code == 400 and 'aria-invalid="true"' in empty.text
    forged = person.client.post(f"/c/{cid}/chat", data={"csrf_token": "x", "question": question})
    assert forged.status_code == 403
    ok = person.client.post(f"/c/{cid}/chat", data={"csrf_token": csrf, "question": question})
    assert ok.status_code == 200 and "data-focus" in ok.text and "m-public answers" in ok.text
