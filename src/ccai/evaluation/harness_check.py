"""Cross-check our MMLU, GSM8K and BBQ numbers against EleutherAI's lm-evaluation-harness on the same items.

The harness runs offline here: its tasks are plain YAML, and ``dataset_path: json`` with local ``data_files``
needs no hub. For the items our seeded sample picked we write:

- one task per MMLU subject (the harness's MMLU template: subject header, the dev split's first five
  examples, " A".." D" scored by log-likelihood);
- one GSM8K task that *includes the harness's own* ``gsm8k-cot.yaml`` (its 8 exemplars, "Q:/A:" layout,
  ``until: ["Q:", ...]``, "strict-match" and "flexible-extract" filters) and only points it at our items;
- one BBQ task that *includes the harness's own* ``bbq_multiple_choice.yaml`` (its prompt, its 12 choices
  with the HELM "unknown" variants, its biased-answer rules and bias aggregations) on our items.

Both sides run on the same model folder; we compare accuracies, generated text and per-item answers. For
BBQ our side scores the harness's prompt and choices with our own log-likelihood code and computes the
accuracy and bias scores from those predictions with our formulas (``bbq.bias_scores``), so a difference
would show either a scoring or a metric discrepancy.

Run it with larger samples: ``python -m ccai.evaluation.harness_check MODEL_DIR --mmlu 100 --gsm8k 20``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ccai.evaluation.bbq import BBQ, bias_scores
from ccai.evaluation.gsm8k import GSM8K, cut_at_stop
from ccai.evaluation.mmlu import CHOICES, MMLU, subject_title


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _harness_tasks() -> Path:
    """The folder of the installed lm-eval's task YAMLs."""
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).parent


def bbq_harness_task(workdir: Path, items: list[Any]) -> str:
    """A harness task that includes lm-eval's ``bbq_multiple_choice.yaml`` and reads our sampled rows."""
    data = workdir / "bbq_test.jsonl"
    _write_jsonl(data, [{**s.data["row"], "id": s.id} for s in items])
    utils = _harness_tasks() / "bbq" / "utils.py"
    (workdir / "utils.py").write_text(utils.read_text(encoding="utf-8"), encoding="utf-8")
    config = {
        "include": str(_harness_tasks() / "bbq" / "bbq_multiple_choice.yaml"),
        "task": "ccai_bbq",
        "tag": [],
        "dataset_path": "json",
        "dataset_name": None,
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
    }
    (workdir / "ccai_bbq.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return "ccai_bbq"


def harness_tasks(
    workdir: Path, mmlu_items: list[Any], gsm8k_items: list[Any], mmlu: MMLU, max_new_tokens: int
) -> tuple[list[str], list[str]]:
    """Write the task YAMLs and their data into ``workdir``; return (MMLU task names, GSM8K task names)."""
    workdir.mkdir(parents=True, exist_ok=True)
    mmlu_names = []
    by_subject: dict[str, list[Any]] = {}
    for sample in mmlu_items:
        by_subject.setdefault(sample.data["subject"], []).append(sample)
    for subject, items in sorted(by_subject.items()):
        test = workdir / f"mmlu_{subject}_test.jsonl"
        dev = workdir / f"mmlu_{subject}_dev.jsonl"
        _write_jsonl(
            test,
            [
                {
                    "id": s.id,
                    "question": s.data["question"],
                    "choices": [s.data[c] for c in CHOICES],
                    "answer": CHOICES.index(s.data["answer"]),
                }
                for s in items
            ],
        )
        _write_jsonl(
            dev,
            [
                {
                    "id": f"dev/{k}",
                    "question": r["question"],
                    "choices": [r[c] for c in CHOICES],
                    "answer": CHOICES.index(r["answer"]),
                }
                for k, r in enumerate(mmlu.dev[subject][:5])
            ],
        )
        name = f"ccai_mmlu_{subject}"
        config = {
            "task": name,
            "dataset_path": "json",
            "dataset_kwargs": {"data_files": {"test": str(test), "dev": str(dev)}},
            "test_split": "test",
            "fewshot_split": "dev",
            "fewshot_config": {"sampler": "first_n"},
            "num_fewshot": mmlu.shots,
            "output_type": "multiple_choice",
            "description": f"The following are multiple choice questions (with answers) about "
            f"{subject_title(subject)}.\n\n",
            "doc_to_text": "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\n"
            "D. {{choices[3]}}\nAnswer:",
            "doc_to_choice": list(CHOICES),
            "doc_to_target": "answer",
            "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
            "metadata": {"version": 1.0},
        }
        (workdir / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        mmlu_names.append(name)
    gsm8k_names = []
    if gsm8k_items:
        data = workdir / "gsm8k_test.jsonl"
        _write_jsonl(
            data,
            [
                {"id": s.id, "question": s.data["question"], "answer": f"#### {s.data['reference']}"}
                for s in gsm8k_items
            ],
        )
        config = {
            "include": str(_harness_tasks() / "gsm8k" / "gsm8k-cot.yaml"),
            "task": "ccai_gsm8k_cot",
            "dataset_path": "json",
            "dataset_name": None,
            "dataset_kwargs": {"data_files": {"test": str(data)}},
            "test_split": "test",
            "generation_kwargs": {
                "until": ["Q:", "</s>", "<|im_end|>"],
                "do_sample": False,
                "max_gen_toks": max_new_tokens,
            },
        }
        (workdir / "ccai_gsm8k_cot.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        gsm8k_names.append("ccai_gsm8k_cot")
    return mmlu_names, gsm8k_names


def compare_with_harness(
    model_dir: Path | str,
    workdir: Path | str,
    *,
    mmlu_limit: int = 12,
    gsm8k_limit: int = 4,
    bbq_limit: int = 0,
    seed: int = 0,
    max_new_tokens: int = 96,
    batch_size: int = 4,
) -> dict[str, Any]:
    """Our and the harness's accuracies (percent) and per-item agreement on the same seeded items."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from ccai.models.backends import TransformersBackend

    workdir = Path(workdir)
    mmlu, gsm8k = (
        MMLU(shots=5, batch_size=batch_size),
        GSM8K(shots=8, max_new_tokens=max_new_tokens, batch_size=batch_size),
    )
    mmlu_items = mmlu.sample(mmlu_limit, seed) if mmlu_limit else []
    gsm8k_items = gsm8k.sample(gsm8k_limit, seed) if gsm8k_limit else []
    bbq_items = BBQ().sample(bbq_limit, seed) if bbq_limit else []
    backend = TransformersBackend(model_dir, batch_size=batch_size)
    ours_mmlu = mmlu.run(backend, mmlu_items, seed=seed, progress=lambda n: None) if mmlu_items else []
    ours_gsm8k = gsm8k.run(backend, gsm8k_items, seed=seed, progress=lambda n: None) if gsm8k_items else []

    mmlu_names, gsm8k_names = harness_tasks(workdir, mmlu_items, gsm8k_items, mmlu, max_new_tokens)
    bbq_name = bbq_harness_task(workdir, bbq_items) if bbq_items else None
    manager = TaskManager(include_path=str(workdir))
    lm = HFLM(pretrained=backend.model, tokenizer=backend.tokenizer, device="cpu", batch_size=batch_size)
    report: dict[str, Any] = {"model": str(model_dir), "seed": seed}

    def run(names: list[str], **extra: Any) -> dict[str, Any]:
        return simple_evaluate(
            model=lm,
            tasks=names,
            task_manager=manager,
            log_samples=True,
            bootstrap_iters=0,
            verbosity="ERROR",
            **extra,
        )

    if mmlu_names:
        out = run(mmlu_names)
        theirs = {}
        for name in mmlu_names:
            for s in out["samples"][name]:
                theirs[s["doc"]["id"]] = CHOICES[max(range(4), key=lambda k: s["filtered_resps"][k][0])]
        agree = sum(theirs[r["id"]] == r["prediction"] for r in ours_mmlu)
        report["mmlu"] = {
            "n": len(ours_mmlu),
            "ours": 100 * sum(r["correct"] for r in ours_mmlu) / len(ours_mmlu),
            "harness": 100 * sum(theirs[r["id"]] == r["answer"] for r in ours_mmlu) / len(ours_mmlu),
            "same_prediction": agree,
        }
    if gsm8k_names:
        out = run(gsm8k_names)
        result = out["results"]["ccai_gsm8k_cot"]
        texts = {s["doc"]["id"]: s["resps"][0][0] for s in out["samples"]["ccai_gsm8k_cot"]}
        report["gsm8k"] = {
            "n": len(ours_gsm8k),
            "ours_strict": 100 * sum(r["strict_correct"] for r in ours_gsm8k) / len(ours_gsm8k),
            "harness_strict": 100 * result["exact_match,strict-match"],
            "ours": 100 * sum(r["correct"] for r in ours_gsm8k) / len(ours_gsm8k),
            "harness_flexible": 100 * result["exact_match,flexible-extract"],
            "same_text": sum(cut_at_stop(texts[r["id"]]) == r["completion"] for r in ours_gsm8k),
        }
    if bbq_name:
        out = run([bbq_name])
        result = out["results"][bbq_name]
        harness = {s["doc"]["id"]: s for s in out["samples"][bbq_name]}
        ours = _our_bbq_on_harness_text(backend, bbq_items)
        same = sum(
            int(np.argmax([x[0] for x in harness[r["id"]]["filtered_resps"]])) == r["choice"] for r in ours
        )
        mine = bias_scores(ours)
        report["bbq"] = {
            "n": len(ours),
            "same_prediction": same,
            "ours_accuracy": 100 * sum(r["correct"] for r in ours) / len(ours),
            "harness_accuracy": 100 * result["acc,none"],
            "ours_bias_ambig": mine["bias_ambig"],
            "harness_bias_ambig": 100 * result["amb_bias_score,none"],
            "ours_bias_disambig": mine["bias_disambig"],
            "harness_bias_disambig": 100 * result["disamb_bias_score,none"],
        }
    return report


def _our_bbq_on_harness_text(backend: Any, items: list[Any]) -> list[dict[str, Any]]:
    """Our log-likelihood scoring of the harness's BBQ prompt and 12 choices, as records for ``bias_scores``.

    The harness's choices are the two people and ten wordings of "unknown"; any "unknown" wording counts as
    the unknown answer. Targets come from our ``target_index`` (the harness derives its own).
    """
    import importlib.util

    spec = importlib.util.spec_from_file_location("_lm_eval_bbq_utils", _harness_tasks() / "bbq" / "utils.py")
    assert spec and spec.loader
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    records = []
    for sample in items:
        row = sample.data["row"]
        choices = utils.doc_to_choice(row)
        context = f"{row['context']}\n\nQ: {row['question']}\nA:"
        scores = backend.logprobs([context] * len(choices), [" " + c for c in choices])
        choice = int(np.argmax(scores))
        text = choices[choice]
        answers = [row["ans0"], row["ans1"], row["ans2"]]
        prediction = sample.data["unknown"] if text in utils.UNKNOWN_RESPONSES else answers.index(text)
        records.append(
            {
                "id": sample.id,
                "choice": choice,
                "prediction": prediction,
                "correct": prediction == row["label"],
                "target": sample.data["target"],
                "unknown": sample.data["unknown"],
                "polarity": row["question_polarity"],
                "condition": row["context_condition"],
            }
        )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="model folder, or 'smollm2'")
    parser.add_argument("--mmlu", type=int, default=57)
    parser.add_argument("--gsm8k", type=int, default=10)
    parser.add_argument("--bbq", type=int, default=27)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--workdir", default="runs/harness-check")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 on a busy machine)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from ccai.models.prepare import resolve_model

    report = compare_with_harness(
        resolve_model(args.model),
        args.workdir,
        mmlu_limit=args.mmlu,
        gsm8k_limit=args.gsm8k,
        bbq_limit=args.bbq,
        seed=args.seed,
        max_new_tokens=args.max_new_tokens,
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
