"""The judging round end to end: a real ``ccai models serve`` process, the consultation app, chromium.

The model server (a subprocess, as an organiser would run it) serves two models: the bundled SmolLM2-135M
as ``base`` and, as ``public``, a copy of it *trained* on a small constitution by ccai's own training entry
(``ccai.training.train.train``, SL-CAI only: critiques and revisions of four prompts, then six steps of LoRA
SFT merged into a plain model folder with its card). The training runs once per cache
(``$CCAI_CACHE_DIR/test-models``: once per session in CI, whose caches start empty; reused with
``CCAI_TEST_WARM_CACHE=1``); about three minutes on two loaded CPU cores. An organiser, in the browser, names
both models, adds two prompts, has the answers generated in the background, names the base model as AI
judge, and opens the round. Participants from two opinion camps (they voted on the statements beforehand)
judge in the browser at phone and desktop widths; the rest of each camp judges through the service. The
report page then shows win rates for each opinion group and the AI judge's agreement. Kept cheap: two
prompts, 12 tokens per answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from ccai.consultation import accounts, judging, service
from ccai.consultation.judging_store import JudgedModel
from ccai.consultation.store import token_digest
from ccai.consultation.web.app import WebSettings, create_app
from tests.consultation.live_server import free_port, running

pytestmark = [pytest.mark.browser, pytest.mark.model, pytest.mark.slow]
PROMPTS = ["How can I tell a friend they hurt me?", "Should I share my neighbour's address online?"]
SEEDS = [
    f"Statement {k}: the assistant should {w}"
    for k, w in enumerate(
        [
            "explain its reasoning",
            "refuse harmful requests",
            "respect privacy",
            "admit uncertainty",
            "avoid political opinions",
            "prioritise user autonomy",
            "follow local laws",
            "say it is an AI",
        ]
    )
]
CAMP = 12  # people per opinion camp


#: the training run behind the served ``public`` model: small, seeded, and still every step of SL-CAI
TRAINING = [
    "seed=0",
    "threads=2",
    "data.red_team_prompts=3",
    "data.helpful_prompts=1",
    "sl.generation.max_new_tokens=24",
    "sl.quality.drop_truncated=false",  # 24-token answers are cut off; the test needs rows, not polish
    "sl.train.epochs=3",
    "sl.train.batch_size=2",
    "sl.train.learning_rate=1e-3",  # far from the base in a dozen steps: its answers must differ
    "sl.train.max_length=256",
    "sl.train.save_steps=100",
    "rl.method=none",
]
PRINCIPLES = ["is kind and honest", "protects other people's privacy"]


def _constitution():
    from ccai.constitution import Constitution, Principle

    return Constitution(
        name="public test",
        principles=[
            Principle(
                id=f"p{k}",
                comparison=f"Choose the response that {w}.",
                critique_request=f"Identify how the last response fails to be one that {w}.",
                revision_request=f"Rewrite the response so that it {w}.",
            )
            for k, w in enumerate(PRINCIPLES)
        ],
    ).approve(by="ccai tests")


@pytest.fixture(scope="session")
def trained_copy() -> Path:
    """SmolLM2 trained (SL-CAI, LoRA merged) on the test constitution: a model folder with ``README.md``.

    Built once into ``$CCAI_CACHE_DIR/test-models/judging-<hash of the settings>`` through
    :func:`ccai.files.cached_dir` (a lock and an atomic rename, so a cut-short run is never reused).
    """
    from ccai.config import load_config
    from ccai.files import cached_dir
    from ccai.models.prepare import default_cache_dir, is_model_dir
    from ccai.training.config import TrainingConfig
    from ccai.training.train import train

    constitution = _constitution()
    # the principles' hash, not content_hash: that one covers the approval and its time, new every run
    key = hashlib.sha256(json.dumps([TRAINING, constitution.reviewed_content_hash]).encode()).hexdigest()[:12]
    target = default_cache_dir() / "test-models" / f"judging-{key}"

    def build(folder: Path) -> None:
        path = constitution.save(folder / "public.json")
        config = load_config(TrainingConfig, None, TRAINING)
        started = time.time()
        train(config, path, folder / "run", stages=("sl",), progress=False)
        (folder / "seconds.txt").write_text(f"{time.time() - started:.1f}\n")

    def complete(folder: Path) -> bool:
        return is_model_dir(folder / "run" / "sl" / "model") and (folder / "seconds.txt").is_file()

    return cached_dir(target, build, complete) / "run" / "sl" / "model"


@pytest.fixture(scope="module")
def model_server(tmp_path_factory, trained_copy):
    """``ccai models serve -m base=smollm2 -m public=TRAINED`` on a free port."""
    folder = tmp_path_factory.mktemp("served")
    port = free_port()
    command = [
        sys.executable,
        "-c",
        "from ccai.cli import app; app()",
        "models",
        "serve",
        "-m",
        "base=smollm2",
        "-m",
        f"public={trained_copy}",
        "--port",
        str(port),
        "--max-tokens",
        "64",
    ]
    with open(folder / "serve.log", "w") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError("ccai models serve exited: " + (folder / "serve.log").read_text()[-2000:])
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        process.kill()
        raise AssertionError("ccai models serve did not start in 180 s")
    yield f"{url}/v1"
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:  # a request still open on a loaded machine
        process.kill()
        process.wait(20)


@pytest.fixture(scope="module")
def consultation(tmp_path_factory):
    """The consultation app in a uvicorn thread, with two camps that voted on the statements."""
    home = tmp_path_factory.mktemp("judging-browser")
    app = create_app(
        WebSettings(
            database_url=f"sqlite:///{home / 'db.sqlite3'}", secret_key="k" * 40, near_duplicates=False
        )
    )
    with app.state.sessions() as db:
        owner = accounts.create_user(db, "chair@example.org", "browser-pass", "owner")
        conversation = service.create_conversation(db, owner, {"topic": "How should an AI assistant answer?"})
        for text in SEEDS:
            service.add_seed(db, conversation, text)
        rng = np.random.default_rng(0)
        for person in range(2 * CAMP):  # camp = person % 2; they disagree on the odd statements
            participant = service.join(db, conversation, f"camp-{person}")
            for number in range(len(SEEDS)):
                lean = 1 if (number % 2 == 0 or person % 2 == 0) else -1
                service.cast_vote(db, conversation, participant, number, lean if rng.random() < 0.9 else 0)
        db.commit()
        cid = conversation.id
    with running(app) as base:
        yield app, base, cid
    app.state.engine.dispose()


def _wait_for_text(page, url: str, text: str, seconds: float = 600) -> None:
    deadline = time.time() + seconds
    while text not in page.content():
        assert time.time() < deadline, f"{text!r} did not appear on {url}"
        time.sleep(2)
        page.goto(url)


def _preferred(app, cid: int) -> dict[str, str]:
    """Answer text -> model label (the test's knowledge, never shown to participants)."""
    with app.state.sessions() as db:
        labels = {m.id: m.label for m in judging.models(db, cid)}
        return {a.text: labels[a.model_id] for a in judging.answers(db, cid).values()}


def test_served_public_model_is_the_trained_copy(model_server, trained_copy):
    """The server's ``public`` is the trained folder: a card naming SL-CAI, weights moved from the base."""
    from safetensors.torch import load_file

    from ccai.models.prepare import prepare_smollm2

    listed = {m["id"]: m for m in httpx.get(f"{model_server}/models", timeout=10).json()["data"]}
    assert Path(listed["public"]["root"]) == trained_copy and not listed["public"]["system_prompt"]
    card = (trained_copy / "README.md").read_text()
    assert "SL-CAI model (public test)" in card and "constitution_name: public test" in card
    state = json.loads((trained_copy.parent.parent / "state.json").read_text())
    assert state["done"]["sl_train"]["steps"] >= 4, state["done"]["sl_train"]
    key = "model.layers.10.mlp.down_proj.weight"
    base, trained = (load_file(str(p / "model.safetensors"))[key] for p in (prepare_smollm2(), trained_copy))
    assert not (base == trained).all()


def test_organiser_opens_round_people_judge_report_shows_groups(model_server, consultation, browser, shots):
    app, base, cid = consultation
    desktop, phone = {"viewport": {"width": 1280, "height": 900}}, {"viewport": {"width": 390, "height": 844}}
    admin = browser.new_context(**desktop).new_page()
    admin.goto(f"{base}/admin/c/{cid}/judging")
    admin.get_by_label("Email").fill("chair@example.org")
    admin.get_by_label("Password").fill("browser-pass")
    admin.get_by_role("button", name="Log in").click()
    for label in ("base", "public"):
        admin.get_by_label("Label").fill(label)
        admin.get_by_label("Server address (base URL)").fill(model_server)
        admin.get_by_label("Model", exact=True).fill(label)
        admin.get_by_role("button", name="Add model").click()
    admin.get_by_label("New prompts, one per line").fill("\n".join(PROMPTS))
    admin.get_by_role("button", name="Add prompts").click()
    admin.get_by_label("Longest answer (tokens)").fill("12")
    admin.get_by_label("AI judge (openai:<base URL>#<model>, optional)").fill(f"openai:{model_server}#base")
    admin.get_by_role("button", name="Save settings").click()
    admin.get_by_role("button", name="Generate the missing answers").click()  # answered at once, works after
    url = f"{base}/admin/c/{cid}/judging"
    _wait_for_text(admin, url, "4 answers generated")
    admin.get_by_label("Participants can judge the answers").check()
    admin.get_by_role("button", name="Save settings").click()
    admin.get_by_role("button", name="Ask the AI judge").click()
    _wait_for_text(admin, url, "AI judge verdicts")
    admin.screenshot(path=shots / "judging-admin-1280.png", full_page=True)

    # two people of each camp judge in the browser, one on a phone and one on a desktop each
    by_text = _preferred(app, cid)
    assert len(by_text) == 4 and set(by_text.values()) == {"base", "public"}
    for person in range(4):
        context = browser.new_context(**(phone if person < 2 else desktop))
        context.add_cookies([{"name": f"ccai_p{cid}", "value": f"camp-{person}", "url": base}])
        page = context.new_page()
        page.goto(f"{base}/c/{cid}")
        page.get_by_role("link", name="Judge the AI's answers").click()
        for step in range(len(PROMPTS)):
            page.get_by_role("button", name="A is better").wait_for()
            if person == 0 and step == 0:
                page.screenshot(path=shots / "judging-390.png", full_page=True)
            if person == 2 and step == 0:
                page.screenshot(path=shots / "judging-1280.png", full_page=True)
            first = page.locator(".answer-text").first.inner_text()
            wanted = "public" if person % 2 == 0 else "base"
            before = page.locator("#judge-prompt").inner_text()
            button = "A is better" if by_text.get(first) == wanted else "B is better"
            page.get_by_role("button", name=button).click()
            if step + 1 < len(PROMPTS):  # htmx swapped the panel: focus is on the next request
                page.wait_for_function(
                    "b => document.querySelector('#judge-prompt')?.innerText !== b", arg=before
                )
                assert page.evaluate("document.activeElement.id") == "judge-prompt"
        page.locator("p.notice", has_text="You have judged every pair of answers").wait_for()
        assert "Judgment saved." in page.locator("#announce").inner_text()
        context.close()

    # the rest of both camps judge the same way through the service
    with app.state.sessions() as db:
        conversation = service.get_conversation(db, cid)
        labels = {m.id: m.label for m in db.query(JudgedModel).filter_by(conversation_id=cid)}
        for person in range(4, 2 * CAMP):
            participant = service.find_participant(db, cid, f"camp-{person}")
            while item := judging.next_item(
                db, conversation, participant, token_digest(f"camp-{person}")
            ).item:
                wanted = "public" if person % 2 == 0 else "base"
                choice = "a" if labels[item.left.model_id] == wanted else "b"
                judging.judge(db, conversation, participant, item.prompt.number, item.pair, choice)
                db.flush()
        db.commit()

    for width, size in (("1280", desktop), ("390", phone)):
        report = browser.new_context(**size).new_page()
        for _ in range(60):  # the opinion groups come from the background worker's report
            report.goto(f"{base}/c/{cid}/report/judging")
            if not report.locator("#report-computing").count():
                break
            report.wait_for_timeout(1000)
        table = report.locator("#win-rates")
        table.wait_for()
        rows = table.locator("tbody tr")
        groups = {
            rows.nth(k).get_attribute("data-group"): rows.nth(k).locator("td").nth(1).inner_text()
            for k in range(rows.count())
        }
        assert groups["all"] == "50 %", groups
        named = sorted(v for g, v in groups.items() if g not in ("all", "none"))
        assert named == ["0 %", "100 %"], groups  # one group always preferred base, the other public
        assert "Agreement with the AI judge" in report.content() and "#base" in report.content()
        report.screenshot(path=shots / f"judging-report-{width}.png", full_page=True)
    csv_text = admin.request.get(f"{base}/admin/c/{cid}/judgments.csv").text()
    assert csv_text.count("\n") == 1 + 2 * CAMP * len(PROMPTS)


def test_chat_page_shows_answers_side_by_side_with_principles(
    model_server, consultation, browser, shots, tmp_path
):
    """The organiser attaches a constitution and opens the chat to participants; a participant asks."""
    from ccai.constitution import Constitution, Principle
    from ccai.constitution.model import StatementSource

    app, base, cid = consultation
    constitution = Constitution(
        name="public test",
        principles=[
            Principle(
                id="privacy",
                comparison="Choose the response that protects people's privacy and personal information.",
                critique_request="c",
                revision_request="r",
                sources=[StatementSource(id="2", text=SEEDS[2])],
            ),
            Principle(
                id="reasons",
                comparison="Choose the response that explains its reasoning.",
                critique_request="c",
                revision_request="r",
                sources=[StatementSource(id="0", text=SEEDS[0])],
            ),
        ],
    )
    path = constitution.save(tmp_path / "public.json")
    with app.state.sessions() as db:  # the models, when this test runs without the one above
        conversation = service.get_conversation(db, cid)
        for label in ("base", "public"):
            if label not in {m.label for m in judging.models(db, cid)}:
                judging.add_model(db, conversation, label, model_server, label)
        judging.settings(db, cid).max_tokens = 12
        db.commit()
    admin = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    admin.goto(f"{base}/admin/c/{cid}/judging")
    if admin.get_by_label("Email").count():
        admin.get_by_label("Email").fill("chair@example.org")
        admin.get_by_label("Password").fill("browser-pass")
        admin.get_by_role("button", name="Log in").click()
    admin.get_by_label("Constitution (JSON written by ccai constitution)").set_input_files(str(path))
    admin.get_by_role("button", name="Attach constitution").click()
    admin.get_by_text("Attached: “public test”, 2 principles.").wait_for()
    admin.get_by_label("Participants can use the chat page").check()
    admin.get_by_role("button", name="Save settings").click()
    admin.get_by_text("Saved").first.wait_for()
    # the AI judge's adherence: a real `ccai eval` of both served models on this constitution's principles
    results = _adherence_run(model_server, path, tmp_path / "eval")
    admin.get_by_label("Adherence result (results.json written by ccai eval)").set_input_files(str(results))
    admin.get_by_role("button", name="Attach adherence result").click()
    admin.locator("#adherence-attached").wait_for()
    assert "2 principles of “public test”, against base" in admin.locator("#adherence-attached").inner_text()
    admin.screenshot(path=shots / "judging-admin-adherence-1280.png", full_page=True)
    question = "Can I post my neighbour's home address on social media?"
    for width, size in (("1280", {"width": 1280, "height": 900}), ("390", {"width": 390, "height": 844})):
        context = browser.new_context(viewport=size)
        context.add_cookies([{"name": f"ccai_p{cid}", "value": "camp-5", "url": base}])
        page = context.new_page()
        page.goto(f"{base}/c/{cid}")
        page.get_by_role("link", name="Ask the models a question").click()
        page.get_by_label("Your question").fill(question)
        page.get_by_role("button", name="Ask", exact=True).click(timeout=600_000)  # waits for the answers
        page.locator("#chat-answers").wait_for(timeout=600_000)  # slow only on a loaded CPU
        assert page.evaluate("document.activeElement.id") == "chat-answers"
        labels = page.locator(".answer h3").all_inner_texts()
        assert labels == ["base", "public"]
        assert all(t.strip() for t in page.locator(".answer-text").all_inner_texts())
        first = page.locator("ol.principles > li").first
        assert "privacy" in first.inner_text()
        first.locator("summary").click()
        assert SEEDS[2] in first.inner_text()
        page.screenshot(path=shots / f"chat-{width}.png", full_page=True)
        # the joint report: each principle with its sources, and now the AI judge's adherence figure
        page.goto(f"{base}/c/{cid}/report/judging")
        privacy = page.locator("#principle-privacy")
        privacy.wait_for()
        assert SEEDS[2] in privacy.inner_text()
        rows = privacy.locator("table.adherence tbody tr")
        assert rows.count() == 1 and rows.first.get_attribute("data-model") == "public"
        assert rows.first.locator("td").nth(1).inner_text().endswith("%")
        assert "same content" in page.locator("#adherence-source").inner_text()
        page.screenshot(path=shots / f"judging-report-adherence-{width}.png", full_page=True)
        context.close()


def _adherence_run(model_server: str, constitution: Path, out: Path) -> Path:
    """``ccai eval`` (its Python entry) with the adherence task: ``public`` against ``base`` under each
    principle, one scenario prompt per principle, ``base`` as judge (allowed: it is only a test)."""
    from ccai.evaluation.config import EvalConfig
    from ccai.evaluation.runner import evaluate

    server = f"openai:{model_server}"
    config = EvalConfig(
        models=[f"base={server}#base", f"public={server}#public"],
        tasks=["adherence"],
        judge=f"{server}#base",
        allow_contestant_judge=True,
        agreement_pairs=0,
        bootstrap=50,
        answers={"max_new_tokens": 16},
        adherence={"constitutions": [f"public={constitution}"], "pool_prompts": 0, "scenarios": 1},
    )
    result = evaluate(config, out, show_progress=False)
    assert result.results["details"]["adherence"]["constitutions"][0]["n_evaluated"] == 2
    return result.path / "results.json"
