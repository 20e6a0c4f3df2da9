"""The joint report: for each principle of the attached constitution, where it came from and how it fared.

Per principle: the statements it was written from (its ``statement`` sources), matched to this
conversation's statements by their normalised text (else by number), with their support in each opinion
group (agree / seen, from the same analysis as the live report); and the public's judgments of the models on
the judging prompts closest in meaning to the principle (MiniLM cosine at or above ``RELATED``), so a reader
sees whether the model the public preferred on, say, privacy questions is the one trained on the privacy
principle people supported.

When the organiser attaches the adherence result of a ``ccai eval`` run (``ccai.evaluation.adherence``:
each principle's own test prompts, an AI judge comparing each model's answer with a reference model's under
that principle), each principle also shows the AI judge's adherence figure for every model, so the public's
support, the public's judgments and the AI judge's reading of the same principle sit in one place. The
result is matched to the attached constitution by content hash (else by name, said so on the page) and to
its principles by id.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from ccai.consultation import judging, judging_report, live_report, rules
from ccai.consultation.chat import principle_text, source_line
from ccai.consultation.rules import RuleError
from ccai.consultation.store import Conversation

RELATED = 0.3  # cosine between a principle and a prompt for the prompt to count as related
MAX_RELATED = 3
MAX_ADHERENCE_BYTES = 5_000_000


@dataclass
class PrincipleRow:
    id: str
    text: str
    statements: list[dict] = field(default_factory=list)  # text, number, agree share overall and per group
    other_sources: list[str] = field(default_factory=list)
    prompts: list[dict] = field(default_factory=list)  # text, cosine
    judgments: list[dict] = field(default_factory=list)  # per model pair on the related prompts
    adherence: list[dict] = field(default_factory=list)  # AI judge: model, win_rate, low, high, n


def build(
    db: Session,
    conversation: Conversation,
    constitution: Any,
    finder: Any | None,
    live: live_report.LiveReport,
    adherence: dict | None = None,
) -> tuple[list[str], list[PrincipleRow]]:
    """(group names, one row per principle) for ``constitution`` over this conversation's data, split by
    the opinion groups of ``live`` (the kept report on the pages: no analysis inside a request).
    ``adherence``: the matched constitution entry of an adherence summary (:func:`match_adherence`)."""
    if constitution is None:
        return [], []
    names = [str(g["name"]) for g in live.groups]
    votes, statements, _ = live_report.public_frames(db, conversation)
    table = _support_table(votes, judging_report.participant_groups(live), names)
    by_key = {rules.text_key(str(text)): int(number) for number, text in statements["text"].items()}
    prompts = judging.prompts(db, conversation.id)
    rows = judging.judgment_rows(db, conversation.id)
    labels = [m.label for m in judging.models(db, conversation.id)]
    principles = list(constitution.principles)
    similarity = None
    if finder is not None and prompts and principles:
        vectors = finder.embed([principle_text(p) for p in principles] + [p.text for p in prompts])
        similarity = vectors[: len(principles)] @ vectors[len(principles) :].T
    judged = {str(p.get("id")): p.get("adherence") or {} for p in (adherence or {}).get("principles", [])}
    out = []
    for k, principle in enumerate(principles):
        row = PrincipleRow(principle.id, str(principle.comparison))
        row.adherence = [
            {"model": model, **{key: cell.get(key) for key in ("win_rate", "low", "high", "n")}}
            for model, cell in judged.get(str(principle.id), {}).items()
        ]
        for source in principle.sources:
            if source.kind != "statement":
                row.other_sources.append(source_line(source))
                continue
            number = by_key.get(rules.text_key(source.text))
            if number is None and str(source.id).isdigit() and int(source.id) in statements.index:
                number = int(source.id)
            row.statements.append(_support(source.text, number, table, names))
        if similarity is not None:
            order = np.argsort(-similarity[k], kind="stable")[:MAX_RELATED]
            related = [(prompts[i], float(similarity[k, i])) for i in order if similarity[k, i] >= RELATED]
            row.prompts = [{"text": p.text, "number": p.number, "cosine": c} for p, c in related]
            ids = {p.id for p, _ in related}
            for a, b in itertools.combinations(labels, 2):
                mine = [r for r in rows if r["prompt_id"] in ids and {r["model_a"], r["model_b"]} == {a, b}]
                if mine:
                    wins = sum(r["preferred"] == a for r in mine) + 0.5 * sum(
                        not r["preferred"] for r in mine
                    )
                    row.judgments.append({"a": a, "b": b, "n": len(mine), "win_rate": wins / len(mine)})
        out.append(row)
    return names, out


def _support_table(votes: pd.DataFrame, groups: dict[int, str], names: list[str]) -> pd.DataFrame:
    """Per statement: the share of its voters who agreed, overall (``all``) and in each opinion group."""
    agreed = votes.assign(agree=(votes["vote"] == 1).astype(float))
    table = agreed.groupby("statement")["agree"].mean().to_frame("all")
    agreed["group"] = agreed["participant"].map(groups)
    for name in names:
        table[name] = agreed[agreed["group"] == name].groupby("statement")["agree"].mean()
    return table


def _support(text: str, number: int | None, table: pd.DataFrame, names: list[str]) -> dict:
    """A source statement's agree share overall and in each group (None where it was not voted on here)."""
    entry = {"text": text, "number": number, "agree": None, "groups": {}}
    if number is None or number not in table.index:
        return entry
    r = table.loc[number]
    entry["agree"] = float(r["all"])
    entry["groups"] = {name: None if pd.isna(r[name]) else float(r[name]) for name in names}
    return entry


def load_adherence(data: bytes, source: str = "the uploaded file") -> dict:
    """The adherence summary of a ``ccai eval`` run, from its ``results.json`` (``details.adherence``) or
    from that summary alone, cut down to what the report shows; a refusal says what was expected."""
    if len(data) > MAX_ADHERENCE_BYTES:
        raise RuleError("invalid_field", f"{source}: larger than {MAX_ADHERENCE_BYTES} bytes")
    try:
        parsed = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise RuleError("invalid_field", f"{source}: not UTF-8 text (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise RuleError(
            "invalid_field", f"{source}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    summary = parsed.get("details", {}).get("adherence") if isinstance(parsed, dict) else None
    if summary is None and isinstance(parsed, dict) and "constitutions" in parsed:
        summary = parsed
    if not isinstance(summary, dict) or not isinstance(summary.get("constitutions"), list):
        skipped = parsed.get("skipped", {}).get("adherence") if isinstance(parsed, dict) else None
        why = f" (the run skipped it: {skipped})" if isinstance(skipped, str) else ""
        raise RuleError(
            "invalid_field",
            f"{source}: holds no adherence result{why}; attach the results.json of a `ccai eval` run with "
            "the adherence task and --constitution, or its details.adherence",
        )
    out = {"reference": str(summary.get("reference", "")), "constitutions": []}
    for k, entry in enumerate(summary["constitutions"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("principles"), list):
            raise RuleError("invalid_field", f"{source}: constitutions[{k}] has no list of principles")
        principles = []
        for j, row in enumerate(entry["principles"]):
            cells = row.get("adherence") if isinstance(row, dict) else None
            if not isinstance(cells, dict) or "id" not in row:
                raise RuleError(
                    "invalid_field", f"{source}: constitutions[{k}].principles[{j}] needs an id and adherence"
                )
            kept = {}
            for model, cell in cells.items():
                if not isinstance(cell, dict) or not isinstance(cell.get("win_rate"), int | float):
                    raise RuleError(
                        "invalid_field",
                        f"{source}: constitutions[{k}].principles[{j}].adherence.{model} has no win_rate",
                    )
                kept[str(model)] = {key: cell.get(key) for key in ("win_rate", "low", "high", "n")}
            principles.append({"id": str(row["id"]), "adherence": kept})
        out["constitutions"].append(
            {
                "name": str(entry.get("name", "")),
                "title": str(entry.get("title", "")),
                "content_hash": str(entry.get("content_hash", "")),
                "principles": principles,
            }
        )
    if not out["constitutions"]:
        raise RuleError("invalid_field", f"{source}: the adherence result covers no constitution")
    return out


def match_adherence(summary: dict | None, constitution: Any) -> tuple[dict | None, str]:
    """(the summary's entry for ``constitution``, how it matched: ``hash``, ``name`` or ``none``).

    By content hash first: the same principles, word for word. By name only when no hash matches (the
    organiser may have attached an edited copy); the page says so, since figures may then belong to
    principles that changed since the evaluation.
    """
    if not summary or constitution is None:
        return None, "none"
    entries = summary.get("constitutions", [])
    for entry in entries:
        if entry.get("content_hash") and entry["content_hash"] == constitution.content_hash:
            return entry, "hash"
    for entry in entries:
        if constitution.name in (entry.get("title"), entry.get("name")):
            return entry, "name"
    return None, "none"


def stored_adherence(text: str) -> dict | None:
    """The adherence summary kept in the judging settings (already checked on upload), or None."""
    return json.loads(text) if text else None
