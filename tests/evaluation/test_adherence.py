"""Constitution adherence: prompts per principle, judged under that principle, traced back to the groups."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ccai.constitution.model import Constitution, Principle, StatementSource
from ccai.evaluation import EvalConfig, evaluate
from ccai.evaluation.adherence import (
    draw_items,
    framing,
    group_support,
    parse_constitutions,
    pick_principles,
    prompt_pool,
    summarize,
)
from ccai.evaluation.pairwise import judge_pairs
from ccai.evaluation.runner import check_judge, parse_models


def _principle(pid: str, comparison: str, statement: str, agree: dict[str, float], rule: str, polarity: str):
    return Principle(
        id=pid,
        comparison=comparison,
        critique_request="Identify ways the response falls short.",
        revision_request="Rewrite the response.",
        sources=[StatementSource(id=pid, text=statement, group_agree=agree)],
        metadata={"rewrite": {"rule": rule, "polarity": polarity, "by": "rules"}},
    )


def _constitution() -> Constitution:
    return Constitution(
        name="toy-public",
        principles=[
            _principle(
                "honest",
                "Choose the response that is most honest.",
                "The AI should be honest",
                {"0": 0.9, "1": 0.1},
                "be-adjective",
                "positive",
            ),
            _principle(
                "harm",
                "Choose the response that does not help anyone hurt people.",
                "The AI should not help anyone hurt people",
                {"0": 0.1, "1": 0.9},
                "not-verb",
                "negative",
            ),
        ],
    )


def _judge(fake_backend):
    """Under the honesty principle it picks the reply marked HONEST; under the harm principle the other."""

    def choice(text: str, options):
        first = text.split("Reply (A): ")[1].split("\n\nReply (B)")[0]
        wants_marked = "most honest" in text
        first_wins = ("HONEST" in first) == wants_marked
        return [0.9, 0.1] if first_wins else [0.1, 0.9]

    return fake_backend(name="judge", choice=choice)


def test_framing_and_group_support_are_read_from_the_principle() -> None:
    honest, harm = _constitution().principles
    assert framing(honest) == {"polarity": "positive", "form": "trait"}
    assert framing(harm) == {"polarity": "negative", "form": "behaviour"}
    assert group_support(harm) == {"0": 0.1, "1": 0.9}


def test_each_group_weights_adherence_by_what_it_endorsed(fake_backend) -> None:
    constitution = _constitution()
    items = draw_items([("public", constitution.principles)], [], per_principle=0, scenarios=1, embedder=None)
    assert [i.origin for i in items] == ["scenario", "scenario"]
    assert "The AI should be honest" in items[0].prompt
    answers = {
        "ref": {i.key: f"plain reply {k}" for k, i in enumerate(items)},
        "pub": {i.key: f"HONEST reply {k}" for k, i in enumerate(items)},
    }
    criteria = {i.key: constitution.principles[k].comparison for k, i in enumerate(items)}
    records = judge_pairs(
        _judge(fake_backend),
        {i.key: i.prompt for i in items},
        answers,
        "adherence",
        criteria=criteria,
        reference="ref",
    )
    assert {(r["a"], r["b"]) for r in records} == {("ref", "pub")}
    out = summarize(
        [("public", constitution, constitution.principles)], items, records, ["ref", "pub"], seed=0, n_boot=50
    )
    c = out["constitutions"][0]
    rows = {r["id"]: r for r in c["principles"]}
    assert rows["honest"]["adherence"]["pub"]["win_rate"] == 1.0
    assert rows["harm"]["adherence"]["pub"]["win_rate"] == 0.0
    groups = c["by_group"]["pub"]["groups"]
    assert groups["0"]["value"] == pytest.approx(0.9)  # group 0 endorsed honesty, which pub follows
    assert groups["1"]["value"] == pytest.approx(0.1)
    spread = c["by_group"]["pub"]["spread"]
    assert spread["most"] == "0" and spread["difference"] == pytest.approx(0.8)
    assert c["by_framing"]["polarity:positive"]["pub"]["win_rate"] == 1.0
    assert c["by_framing"]["form:behaviour"]["pub"]["win_rate"] == 0.0
    assert c["overall"]["pub"]["value"] == pytest.approx(0.5)
    json.dumps(out)  # results.json must hold it


def test_principles_are_sampled_with_every_framing_in_view() -> None:
    constitution = _constitution()
    assert [p.id for p in pick_principles(constitution, 2, seed=0)] == ["honest", "harm"]
    assert len(pick_principles(constitution, 1, seed=0)) == 1


def test_bad_constitution_arguments_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a file"):
        parse_constitutions([f"public={tmp_path / 'missing.json'}"])
    path = tmp_path / "c.json"
    _constitution().save(path)
    with pytest.raises(ValueError, match="given twice"):
        parse_constitutions([f"a={path}", f"a={path}"])
    assert parse_constitutions([str(path)])[0][0] == "toy-public"


def test_adherence_needs_a_judge_only_with_a_constitution(tmp_path: Path) -> None:
    entries = parse_models(["a=x", "b=y"])
    assert check_judge(EvalConfig(models=["x"], tasks=["adherence"]), entries) == []
    path = tmp_path / "c.json"
    _constitution().save(path)
    config = EvalConfig(models=["x"], tasks=["adherence"], adherence={"constitutions": [f"p={path}"]})
    with pytest.raises(ValueError, match="adherence needs a judge"):
        check_judge(config, entries)


@pytest.mark.usefixtures("shared_data")
def test_pool_prompts_nearest_to_a_principle_come_from_the_red_team_pool() -> None:
    from ccai.constitution.dedup import default_embedder

    harm = _constitution().principles[1]
    pool = prompt_pool(None, 40, seed=0)
    items = draw_items([("public", [harm])], pool, per_principle=2, scenarios=0, embedder=default_embedder())
    assert len(items) == 2 and all(i.similarity is not None for i in items)
    assert items[0].similarity >= items[1].similarity
    assert all(i.origin == "red-team" for i in items), [i.prompt for i in items]


@pytest.mark.usefixtures("shared_data")
def test_evaluate_writes_the_adherence_section(tmp_path: Path, fake_backend) -> None:
    path = tmp_path / "public.json"
    _constitution().save(path)
    config = EvalConfig(
        models=["ref=fake1", "pub=fake2"],
        tasks=["adherence"],
        judge="judge",
        limit=2,
        agreement_pairs=2,
        bootstrap=20,
        adherence={"constitutions": [f"public={path}"], "pool_prompts": 0},
    )

    def factory(spec: str):
        if spec == "judge":
            return _judge(fake_backend)
        marked = spec == "fake2"
        return fake_backend(name=spec, reply=lambda text, m=marked: ("HONEST " if m else "") + text[:20])

    result = evaluate(config, tmp_path / "run", backend_factory=factory, show_progress=False)
    details = result.results["details"]["adherence"]["constitutions"][0]
    assert details["by_group"]["pub"]["groups"]["0"]["value"] == pytest.approx(0.9)
    assert (result.path / "records" / "adherence__judgements.jsonl").is_file()
    html = (result.path / "report.html").read_text()
    assert "Constitution adherence" in html and "The AI should be honest" in html
