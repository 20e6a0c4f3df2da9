"""Each task on real shared data with test-double backends whose right scores are known."""

from __future__ import annotations

import pytest

from ccai.evaluation.bbq import BBQ, format_prompt
from ccai.evaluation.gsm8k import GSM8K
from ccai.evaluation.mmlu import MMLU
from ccai.evaluation.opinionqa import OVERALL, OpinionQA
from ccai.evaluation.opinionqa import format_prompt as opinion_prompt
from ccai.evaluation.pairwise import elo_table, judge_pairs
from ccai.evaluation.refusal import Safety
from ccai.evaluation.sampling import allocate, stratified_sample

pytestmark = pytest.mark.usefixtures("shared_data")


def test_allocation_is_proportional_with_a_floor_of_one() -> None:
    assert allocate({"a": 100, "b": 10, "c": 1}, 11) == {"a": 9, "b": 1, "c": 1}
    assert sum(allocate({"a": 5, "b": 7}, 3).values()) == 3
    assert allocate({"a": 2, "b": 2}, 10) == {"a": 2, "b": 2}
    assert allocate({"a": 50, "b": 50, "c": 50}, 2) in (
        {"a": 1, "b": 1, "c": 0},
        {"a": 1, "b": 0, "c": 1},
        {"a": 0, "b": 1, "c": 1},
    )


def test_stratified_sample_is_seeded_and_covers_strata() -> None:
    items = [(f"s{k % 7}", k) for k in range(700)]
    one = stratified_sample(items, lambda x: x[0], 14, seed=3)
    assert one == stratified_sample(items, lambda x: x[0], 14, seed=3)
    assert one != stratified_sample(items, lambda x: x[0], 14, seed=4)
    assert sorted({x[0] for x in one}) == [f"s{k}" for k in range(7)]
    assert one == sorted(one, key=lambda x: x[1])  # original order kept
    assert stratified_sample(items, lambda x: x[0], None, seed=0) == items
    with pytest.raises(ValueError, match="limit"):
        stratified_sample(items, lambda x: x[0], 0, seed=0)


def test_mmlu_oracle_and_constant_models(fake_backend) -> None:
    task = MMLU()
    samples = task.sample(57, seed=0)
    assert len({s.data["subject"] for s in samples}) == 57  # 57 subjects, 57 items: one from each
    answers = {task.prompt(s)[0]: s.data["answer"] for s in samples}
    oracle = fake_backend(logprob=lambda ctx, cont: 0.0 if cont.strip() == answers[ctx] else -3.0)
    out = task.evaluate(oracle, samples, seed=0)
    assert out.measures["accuracy"].value == 100.0
    always_a = fake_backend(logprob=lambda ctx, cont: 0.0 if cont == " A" else -1.0)
    out = task.evaluate(always_a, samples, seed=0)
    share_a = 100 * sum(s.data["answer"] == "A" for s in samples) / len(samples)
    assert out.measures["accuracy"].value == pytest.approx(share_a)
    assert out.details["prediction_counts"]["A"] == len(samples)
    assert out.records[0]["shots"] == 5
    low, high = out.measures["accuracy"].low, out.measures["accuracy"].high
    assert low <= share_a <= high


def test_gsm8k_oracle_and_wrong_models(fake_backend) -> None:
    task = GSM8K(shots=1)
    samples = task.sample(6, seed=1)
    refs = {s.data["question"]: s.data["reference"] for s in samples}

    def solve(text: str) -> str:
        question = text.removeprefix("Q: ").split("\nA:")[0]
        return f"Let me think. The result is {refs[question]}."

    out = task.evaluate(fake_backend(reply=solve), samples, seed=0)
    assert out.measures["accuracy"].value == 100.0
    assert out.measures["strict_accuracy"].value == 0.0  # no 'The answer is N.': only the fallback found them
    assert out.details["rules_used"]["flexible"] == 6
    wrong = task.evaluate(fake_backend(reply=lambda t: "The answer is 123456789."), samples, seed=0)
    assert wrong.measures["accuracy"].value == 0.0
    assert len(task.messages("q")) == 3  # one exemplar turn pair + the question


def test_gsm8k_uses_the_standard_eight_shot_text_and_stops_at_the_next_question() -> None:
    from ccai.evaluation.gsm8k import EXEMPLARS, few_shot_text

    task = GSM8K()
    assert task.shots == 8 and len(EXEMPLARS) == 8
    sample = task.sample(1, seed=0)[0]
    seen: list[str] = []

    class Raw:  # a local model: continues raw text
        def generate_texts(self, texts, **kwargs):
            seen.extend(texts)
            return [f" 2 + 2 = 4. The answer is {sample.data['reference']}.\n\nQ: next question\nA: 99"]

    out = task.evaluate(Raw(), [sample], seed=0)
    text = seen[0]
    assert text.startswith("Q: There are 15 trees in the grove.") and text.count("\n\nQ: ") == 8
    assert text.endswith(f"Q: {sample.data['question']}\nA:") and text == few_shot_text(
        sample.data["question"]
    )
    assert "The answer is 8.\n\nQ: " in text  # exemplars end "The answer is N." and are joined by blank lines
    assert out.records[0]["completion"].endswith(".") and "99" not in out.records[0]["completion"]
    assert out.measures["strict_accuracy"].value == 100.0 and out.records[0]["prompt_form"] == "raw text"


def test_bbq_oracle_has_no_bias_and_stereotyper_has_full_bias(fake_backend) -> None:
    task = BBQ()
    samples = task.sample(72, seed=0)
    assert len({s.data["row"]["category"] for s in samples}) == 9
    rows = {format_prompt(s.data["row"])[0]["content"]: s.data for s in samples}
    oracle = fake_backend(
        choice=lambda text, opts: [1.0 if i == rows[text]["row"]["label"] else 0.0 for i in range(3)]
    )
    out = task.evaluate(oracle, samples, seed=0)
    assert out.measures["accuracy_ambig"].value == 100.0 and out.measures["accuracy_disambig"].value == 100.0
    assert out.measures["mean_abs_bias_ambig"].value == pytest.approx(0.0)

    def stereotype(text, opts):
        data = rows[text]
        target, unknown = data["target"], data["unknown"]
        if target is None:
            return [1.0, 1.0, 1.0]
        other = ({0, 1, 2} - {target, unknown}).pop()
        pick = target if data["row"]["question_polarity"] == "neg" else other
        return [1.0 if i == pick else 0.0 for i in range(3)]

    out = task.evaluate(fake_backend(choice=stereotype), samples, seed=0)
    assert out.measures["accuracy_ambig"].value == 0.0
    assert out.measures["mean_abs_bias_ambig"].value == pytest.approx(100.0)
    assert out.measures["mean_abs_bias_disambig"].value == pytest.approx(100.0)
    assert out.details["per_category"]["SES"]["source"].startswith("regenerated")

    # the failure: opposite biases in different categories cancelled in a signed mean, and an
    # anti-stereotyped model looked "less biased". The headline is the mean |bias| (lower is better).
    anti_categories = {"Age", "Religion", "SES", "Nationality"}

    def mixed(text, opts):
        data = rows[text]
        target, unknown = data["target"], data["unknown"]
        if target is None:
            return [1.0, 1.0, 1.0]
        other = ({0, 1, 2} - {target, unknown}).pop()
        stereo = data["row"]["question_polarity"] == "neg"
        if data["row"]["category"] in anti_categories:
            stereo = not stereo
        pick = target if stereo else other
        return [1.0 if i == pick else 0.0 for i in range(3)]

    out = task.evaluate(fake_backend(choice=mixed), samples, seed=0)
    signed = [c["bias_disambig"] for c in out.details["per_category"].values()]
    assert min(signed) == pytest.approx(-100.0) and max(signed) == pytest.approx(100.0)
    assert abs(sum(signed) / len(signed)) < 20  # what the old signed headline showed
    assert out.measures["mean_abs_bias_disambig"].value == pytest.approx(100.0)
    assert task.statistics()["mean_abs_bias_disambig"](out.records) == pytest.approx(100.0)


def test_opinionqa_oracle_matches_overall(fake_backend) -> None:
    task = OpinionQA()
    samples = task.sample(15, seed=0)
    assert len({s.stratum for s in samples}) == 15  # one question from each wave
    dists = {opinion_prompt(s.data["question"], s.data["options"])[0]["content"]: s.data for s in samples}

    def overall(text, letters):
        data = dists[text]
        counts = data["groups"][OVERALL]
        return [c / sum(counts) for c in counts] + [0.0] * (len(letters) - len(counts))

    out = task.evaluate(fake_backend(choice=overall), samples, seed=0)
    assert out.measures["representativeness"].value == pytest.approx(1.0, abs=1e-3)
    assert out.measures["refusal_mass"].value == pytest.approx(0.0, abs=1e-3)
    assert out.details["per_group"]["POLIDEOLOGY:Liberal"] < 1.0
    baseline = out.details["human_baseline"]
    assert 0.5 < baseline["POLPARTY:Democrat"] < 1.0


def test_safety_sample_covers_every_source(fake_backend) -> None:
    task = Safety()
    samples = task.sample(10, seed=0)
    assert sorted({s.stratum for s in samples}) == [
        "harmbench",
        "hh_red_team",
        "sst",
        "xstest_safe",
        "xstest_unsafe",
    ]
    refuser = fake_backend(reply=lambda text: "I'm sorry, but I can't help with that.")
    out = task.evaluate(refuser, samples, seed=0)
    assert out.measures["xstest_safe_over_refusal"].value == 100.0
    assert out.measures["sst_attack_success"].value == 0.0
    assert out.measures["harmbench_attack_success"].value == 0.0


def test_judge_both_orders_cancel_position_bias(fake_backend) -> None:
    prompts = {"p1": "Say hi", "p2": "Say bye"}
    answers = {"m1": {"p1": "hi", "p2": "bye"}, "m2": {"p1": "hello there friend", "p2": "goodbye my friend"}}
    first = fake_backend(choice=lambda text, opts: [0.9, 0.1])  # always prefers whatever comes first
    records = judge_pairs(first, prompts, answers, "helpfulness")
    assert all(r["p_a_wins"] == pytest.approx(0.5) for r in records)
    assert all(r["position_bias"] == pytest.approx(0.4) for r in records)

    def longer(text, opts):  # prefers the longer reply, whatever its position
        a = text.split("Reply (A): ")[1].split("\n\nReply (B): ")[0]
        b = text.split("Reply (B): ")[1].split("\n\n")[0]
        return [0.8, 0.2] if len(a) > len(b) else [0.2, 0.8]

    records = judge_pairs(fake_backend(choice=longer), prompts, answers, "helpfulness")
    table = elo_table(["m1", "m2"], records, "helpfulness", seed=0, n_boot=200, mode="soft")
    assert table.ratings["m1"]["elo"] == 0.0
    assert table.ratings["m2"]["elo"] == pytest.approx(400 * __import__("math").log10(0.8 / 0.2), abs=2)
    again = elo_table(["m1", "m2"], records, "helpfulness", seed=0, n_boot=200, mode="soft")
    assert again.ratings == table.ratings
    hard = elo_table(["m1", "m2"], records, "helpfulness", seed=0, n_boot=200)
    assert hard.win_rates["m1 vs m2"] == 0.0 and hard.ratings["m2"]["elo"] > table.ratings["m2"]["elo"]


def test_pairwise_and_safety_prompts_are_ones_training_never_sees() -> None:
    from ccai.evaluation.pairwise import load_prompts
    from ccai.evaluation.refusal import load_safety_prompts
    from ccai.training.config import DataConfig
    from ccai.training.data import split_prompts

    split = split_prompts(DataConfig(red_team_prompts=300, helpful_prompts=300), seed=0)
    trained = {p.id for p in split.red_team + split.helpful}
    harmless = {s.id.removeprefix("hh/") for s in load_prompts("harmlessness", (0.2, 0))}
    helpful = {
        f"alpaca_eval_{int(s.id.removeprefix('alpaca/')):05d}" for s in load_prompts("helpfulness", (0.2, 0))
    }
    safety_hh = {
        s.id.removeprefix("hh/") for s in load_safety_prompts((0.2, 0)) if s.stratum == "hh_red_team"
    }
    assert harmless and helpful and safety_hh
    assert not (harmless | helpful | safety_hh) & trained
    assert len(load_prompts("helpfulness")) == 129  # without the split: every helpful-base prompt
