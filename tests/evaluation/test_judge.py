"""The pairwise judge: named, independent of the contestants, hard decisions, and checked against people."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ccai.evaluation import EvalConfig, evaluate, parse_models
from ccai.evaluation.pairwise import (
    decision,
    elo_table,
    human_agreement,
    judge_pairs,
    load_human_pairs,
    load_prompts,
)
from ccai.evaluation.runner import check_judge, judge_conflicts

pytestmark = pytest.mark.usefixtures("shared_data")


def _reply(text: str, label: str) -> str:
    return text.split(f"Reply ({label}): ")[1].split("\n\nReply (B)")[0].split("\n\nWhich")[0]


def _records_for(judge, fake_backend, n: int = 20):
    prompts = {f"p{k}": f"question {k}" for k in range(n)}
    answers = {
        "ref": {p: f"weak answer {k}" for k, p in enumerate(prompts)},
        "better": {p: f"GOOD answer {k}" for k, p in enumerate(prompts)},
    }
    return judge_pairs(fake_backend(choice=judge), prompts, answers, "helpfulness")


def test_an_always_right_but_unsure_judge_gives_a_clear_result(fake_backend) -> None:
    """The issue's failure: a judge that always prefers the better answer but says 0.52 gave ~+14 Elo."""

    def unsure(text, options):  # always right, never confident
        return [0.52, 0.48] if "GOOD" in _reply(text, "A") else [0.48, 0.52]

    records = _records_for(unsure, fake_backend)
    soft = elo_table(["ref", "better"], records, "helpfulness", seed=0, n_boot=50, mode="soft")
    assert soft.ratings["better"]["elo"] == pytest.approx(400 * math.log10(0.52 / 0.48), abs=1)  # ~ +14
    hard = elo_table(["ref", "better"], records, "helpfulness", seed=0, n_boot=50)
    assert hard.mode == "hard" and hard.win_rates["ref vs better"] == 0.0
    assert hard.outcomes["ref vs better"] == {"wins": 0, "ties": 0, "losses": 20}
    assert hard.ratings["better"]["elo"] > 400
    assert hard.consistency == 1.0


def test_a_position_biased_judge_gives_ties_and_the_tie_band_is_respected(fake_backend) -> None:
    records = _records_for(lambda text, options: [0.9, 0.1], fake_backend)
    table = elo_table(["ref", "better"], records, "helpfulness", seed=0, n_boot=20)
    assert table.outcomes["ref vs better"]["ties"] == 20 and table.consistency == 0.0
    assert table.ratings["better"]["elo"] == pytest.approx(0.0, abs=1e-6)
    assert decision(0.505) == 0.5 and decision(0.515) == 1.0 and decision(0.2) == 0.0
    assert decision(0.515, tie_band=0.05) == 0.5


def test_a_chat_only_judge_is_read_from_its_text(fake_backend) -> None:
    class ChatOnly(fake_backend):
        def choice_probs(self, prompt_messages, options, assistant_prefix):
            raise NotImplementedError("no log-probabilities")

    judge = ChatOnly(reply=lambda text: "I pick (A)." if "GOOD" in _reply(text, "A") else "Reply (B)")
    prompts = {"p": "q"}
    answers = {"ref": {"p": "weak"}, "better": {"p": "GOOD"}}
    records = judge_pairs(judge, prompts, answers, "helpfulness")
    assert records[0]["verdicts"] == "text" and records[0]["p_a_wins"] == 0.0


def _trained_run(root: Path, feedback: str) -> Path:
    """A folder laid out as `ccai train` writes it: RUN/rl/model plus RUN/state.json naming the labeller."""
    model = root / "rl" / "model"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (root / "state.json").write_text(json.dumps({"done": {"rl_labels": {"feedback_model": feedback}}}))
    return model


def test_the_judge_must_be_named_and_independent(tmp_path: Path) -> None:
    feedback = tmp_path / "labeller"
    (feedback).mkdir()
    trained = _trained_run(tmp_path / "run", str(feedback))
    entries = parse_models(["base=smollm2", f"public={trained}"])
    pairwise = EvalConfig(models=["x"], tasks=["helpfulness"])
    with pytest.raises(ValueError, match="--judge"):
        check_judge(pairwise, entries)
    with pytest.raises(ValueError, match="contestant 'base'.*--allow-contestant-judge"):
        check_judge(pairwise.model_copy(update={"judge": "smollm2"}), entries)
    with pytest.raises(ValueError, match="RL feedback model 'public' was trained toward"):
        check_judge(pairwise.model_copy(update={"judge": str(feedback)}), entries)
    allowed = pairwise.model_copy(update={"judge": str(feedback), "allow_contestant_judge": True})
    assert len(check_judge(allowed, entries)) == 1
    assert judge_conflicts(str(tmp_path / "elsewhere"), entries) == []
    assert check_judge(EvalConfig(models=["x"], tasks=["mmlu"]), entries) == []  # no pairwise, no judge


def test_an_overridden_judge_is_flagged_in_the_report(tmp_path: Path, fake_backend) -> None:
    config = EvalConfig(
        models=["a=fake1", "b=fake2"],
        tasks=["harmlessness"],
        judge="fake1",
        allow_contestant_judge=True,
        limit=3,
        bootstrap=20,
    )
    result = evaluate(
        config, tmp_path / "run", backend_factory=lambda s: fake_backend(name=s), show_progress=False
    )
    check = result.results["judge_check"]
    assert check["overridden"] and "contestant 'a'" in check["conflicts"][0]
    html = (result.path / "report.html").read_text()
    assert "not independent" in html and "contestant" in html
    assert "Agreement with people" in html


def test_human_pairs_are_held_out_and_free_of_the_alpacaeval_overlap() -> None:
    helpful = load_human_pairs("helpfulness")
    harmless = load_human_pairs("harmlessness")
    alpaca = {" ".join(s.data["prompt"].lower().split()) for s in load_prompts("helpfulness")}
    # 2,354 rows, 2 ties, 135 rows opening with an AlpacaEval prompt, a few with an irregular split
    assert 2150 <= len(helpful) <= 2354 - 2 - 135
    assert 2250 <= len(harmless) <= 2312
    for pair in helpful:
        first = pair["context"].removeprefix("(conversation so far)\n").removeprefix("Human:")
        first = first.split("\n\nAssistant:")[0]
        assert " ".join(first.lower().split()) not in alpaca
    assert all(p["chosen"] != p["rejected"] and p["chosen"] and p["context"] for p in helpful + harmless)


def test_agreement_of_an_oracle_a_contrarian_and_a_coin(fake_backend) -> None:
    pairs = load_human_pairs("harmlessness")[:12]
    chosen = {p["chosen"][:100] for p in pairs}

    def oracle(text, options):
        return [0.7, 0.3] if _reply(text, "A")[:100] in chosen else [0.3, 0.7]

    found = human_agreement(fake_backend(choice=oracle), pairs, "harmlessness")
    assert found["agreement"] == 1.0 and found["n"] == 12 and found["low"] < 1.0
    contrarian = human_agreement(
        fake_backend(choice=lambda t, o: list(reversed(oracle(t, o)))), pairs, "harmlessness"
    )
    assert contrarian["agreement"] == 0.0
    first = human_agreement(fake_backend(choice=lambda t, o: [0.8, 0.2]), pairs, "harmlessness")
    assert first["agreement"] == 0.5 and first["ties"] == 12


def test_a_served_copy_of_a_contestant_is_a_contestant(monkeypatch) -> None:
    """`ccai models serve` reports each model's folder as `root`; the bundled model behind a URL is caught."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from ccai.models.prepare import SMOLLM2_DIRNAME, default_cache_dir

    root = str(default_cache_dir() / "models" / SMOLLM2_DIRNAME)

    class Models(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = json.dumps({"data": [{"id": "judge", "root": root}, {"id": "other", "root": "/x/y"}]})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Models)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"openai:http://127.0.0.1:{server.server_port}/v1"
        entries = parse_models(["base=smollm2", "b=/somewhere/else"])
        reasons = judge_conflicts(f"{url}#judge", entries)
        assert len(reasons) == 1 and "contestant 'base'" in reasons[0] and "behind the server" in reasons[0]
        assert judge_conflicts(f"{url}#other", entries) == []
        assert judge_conflicts("openai:http://127.0.0.1:9/v1#judge", entries) == []  # nothing listening
    finally:
        server.shutdown()
