"""The joint report: for each principle of the attached constitution, where it came from and how it fared.

Per principle: the statements it was written from (its ``statement`` sources), matched to this
conversation's statements by their normalised text (else by number), with their support in each opinion
group (agree / seen, from the same analysis as the live report); and the public's judgments of the models on
the judging prompts closest in meaning to the principle (MiniLM cosine at or above ``RELATED``), so a reader
sees whether the model the public preferred on, say, privacy questions is the one trained on the privacy
principle people supported.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from ccai.consultation import judging, judging_report, live_report, rules
from ccai.consultation.chat import principle_text, source_line
from ccai.consultation.store import Conversation

RELATED = 0.3  # cosine between a principle and a prompt for the prompt to count as related
MAX_RELATED = 3


@dataclass
class PrincipleRow:
    id: str
    text: str
    statements: list[dict] = field(default_factory=list)  # text, number, agree share overall and per group
    other_sources: list[str] = field(default_factory=list)
    prompts: list[dict] = field(default_factory=list)  # text, cosine
    judgments: list[dict] = field(default_factory=list)  # per model pair on the related prompts


def build(
    db: Session,
    conversation: Conversation,
    constitution: Any,
    finder: Any | None,
    live: live_report.LiveReport,
) -> tuple[list[str], list[PrincipleRow]]:
    """(group names, one row per principle) for ``constitution`` over this conversation's data, split by
    the opinion groups of ``live`` (the kept report on the pages: no analysis inside a request)."""
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
    out = []
    for k, principle in enumerate(principles):
        row = PrincipleRow(principle.id, str(principle.comparison))
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
