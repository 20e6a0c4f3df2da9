"""What the public's judgments say: win rates per opinion group, Bradley–Terry ratings, AI-judge agreement.

The opinion groups are those of the statement votes (``live_report``, i.e. ``ccai.analysis``), so the
report can say "group A preferred the public model, group B did not". A judgment counts for the model it
picks; "both fine" and "both bad" count half for each (a tie), and their shares are shown beside. Intervals:
Wilson for win rates and agreement, and resampled prompts for the ratings (``ccai.evaluation.pairwise``, the
same fit the AI-judge evaluation uses, so human and AI ratings are on one scale). The AI judge's agreement
is measured on the decisive human judgments (A or B) of items the judge has seen: it agrees when its hard
decision picks the same model, half when its decision is a tie.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ccai.consultation import judging, live_report
from ccai.consultation.judging_store import JudgedModel, JudgeVerdict, JudgingPrompt, Judgment
from ccai.consultation.store import Conversation

ALL = "all"
NO_GROUP = "none"


@dataclass
class JudgingReport:
    models: list[str]
    judgments: int
    people: int
    pairs: list[dict] = field(default_factory=list)  # per model pair: one row per group
    ratings: dict[str, dict] = field(default_factory=dict)  # Bradley–Terry Elo (first model = 0)
    left_share: dict | None = None  # how often a decisive judgment picked answer A
    ai_agreement: list[dict] = field(default_factory=list)  # per group
    judge: str = ""
    group_names: list[str] = field(default_factory=list)


def _interval(successes: float, n: int) -> tuple[float | None, float | None]:
    from ccai.evaluation.stats import wilson

    if not n:
        return None, None
    low, high = wilson(successes, n)
    return (None, None) if math.isnan(low) else (low, high)


def participant_groups(report: live_report.LiveReport) -> dict[int, str]:
    """Participant number -> opinion group name, from the live report's analysis of the statement votes
    (the analysis object when the report was just computed here, else the kept report's positions)."""
    if report.result is not None:
        return {int(pid): str(group) for pid, group in report.result.labels.items()}
    return {int(pid): str(place[3]) for pid, place in report.positions.items()}


def build(
    db: Session, conversation: Conversation, live: live_report.LiveReport, seed: int = 0, n_boot: int = 200
) -> JudgingReport:
    """The judging section of the report, from the counted judgments (latest per participant and item);
    ``live`` is the live report whose opinion groups split the judgments (the pages pass the kept one
    the background worker computed, so no analysis runs inside a request)."""
    from ccai.evaluation.pairwise import decision, elo_table

    labels = [m.label for m in judging.models(db, conversation.id)]
    rows = judging.judgment_rows(db, conversation.id)
    groups = participant_groups(live)
    names = sorted({g for g in groups.values()})
    report = JudgingReport(labels, len(rows), len({r["participant"] for r in rows}), group_names=names)
    if not rows:
        return report
    order = {label: k for k, label in enumerate(labels)}
    for a, b in itertools.combinations(labels, 2):
        mine = [r for r in rows if {r["model_a"], r["model_b"]} == {a, b}]
        for group in [ALL, *names, NO_GROUP]:
            chosen = [r for r in mine if group == ALL or groups.get(r["participant"], NO_GROUP) == group]
            if not chosen and group != ALL:
                continue
            wins = sum(r["preferred"] == a for r in chosen)
            losses = sum(r["preferred"] == b for r in chosen)
            fine = sum(r["choice"] == "both_fine" for r in chosen)
            bad = sum(r["choice"] == "both_bad" for r in chosen)
            n = len(chosen)
            low, high = _interval(wins + 0.5 * (fine + bad), n)
            report.pairs.append(
                {
                    "a": a,
                    "b": b,
                    "group": group,
                    "n": n,
                    "a_wins": wins,
                    "b_wins": losses,
                    "both_fine": fine,
                    "both_bad": bad,
                    "win_rate": (wins + 0.5 * (fine + bad)) / n if n else None,
                    "low": low,
                    "high": high,
                }
            )
    records = []
    for r in rows:
        first, second = sorted((r["model_a"], r["model_b"]), key=order.__getitem__)
        value = 0.5 if not r["preferred"] else (1.0 if r["preferred"] == first else 0.0)
        records.append(
            {"id": str(r["prompt_id"]), "a": first, "b": second, "p_a_wins": value, "position_bias": 0.0}
        )
    table = elo_table(labels, records, "public", seed=seed, n_boot=n_boot)
    report.ratings = table.ratings
    decisive = [r for r in rows if r["choice"] in ("a", "b")]
    picked_a = sum(r["choice"] == "a" for r in decisive)
    low, high = _interval(picked_a, len(decisive))
    report.left_share = {
        "n": len(decisive),
        "share": picked_a / len(decisive) if decisive else None,
        "low": low,
        "high": high,
    }
    verdicts = _verdicts(db, conversation.id)
    if verdicts:
        report.judge = next(iter(verdicts.values()))[1]
        for group in [ALL, *names]:
            scores = []
            for r in decisive:
                if group != ALL and groups.get(r["participant"]) != group:
                    continue
                found = verdicts.get(
                    (r["prompt_id"], r["preferred"], r["model_b"] if r["choice"] == "a" else r["model_a"])
                )
                if found is not None:
                    scores.append(decision(found[0]))
            low, high = _interval(sum(scores), len(scores))
            report.ai_agreement.append(
                {
                    "group": group,
                    "n": len(scores),
                    "agreement": sum(scores) / len(scores) if scores else None,
                    "low": low,
                    "high": high,
                }
            )
    return report


def _verdicts(db: Session, conversation_id: int) -> dict[tuple[int, str, str], tuple[float, str]]:
    """(prompt id, model X, model Y) -> (P(X beats Y), judge), both directions."""
    labels = {m.id: m.label for m in judging.models(db, conversation_id)}
    rows = db.scalars(
        sa.select(JudgeVerdict)
        .join(JudgingPrompt, JudgingPrompt.id == JudgeVerdict.prompt_id)
        .where(JudgingPrompt.conversation_id == conversation_id)
    )
    out = {}
    for v in rows:
        first, second = labels[v.first_id], labels[v.second_id]
        out[(v.prompt_id, first, second)] = (v.p_first_wins, v.judge)
        out[(v.prompt_id, second, first)] = (1 - v.p_first_wins, v.judge)
    return out


def fingerprint(db: Session, conversation: Conversation, live: live_report.LiveReport) -> tuple:
    """What the judgments report of a conversation is computed from, in a few cheap aggregate queries.

    Judgments are an append-only log (count and highest id move with every new one, and with every deletion
    of a participant); verdicts can be overwritten by a later AI-judge run, so their probabilities are
    summed in; the prompts, the models, the attached constitution and adherence result, the statement votes
    and moderation (``live_report.version``: the principles' support) and the kept live report (its opinion
    groups) complete the inputs.
    """
    conversation_id = conversation.id
    judged = db.execute(
        sa.select(sa.func.count(), sa.func.max(Judgment.id)).where(
            Judgment.conversation_id == conversation_id
        )
    ).one()
    prompt_ids = sa.select(JudgingPrompt.id).where(JudgingPrompt.conversation_id == conversation_id)
    verdicts = db.execute(
        sa.select(
            sa.func.count(), sa.func.max(JudgeVerdict.id), sa.func.sum(JudgeVerdict.p_first_wins)
        ).where(JudgeVerdict.prompt_id.in_(prompt_ids))
    ).one()
    prompts = db.execute(
        sa.select(sa.func.count(), sa.func.max(JudgingPrompt.id)).where(
            JudgingPrompt.conversation_id == conversation_id
        )
    ).one()
    models = tuple(
        db.execute(
            sa.select(JudgedModel.id, JudgedModel.label)
            .where(JudgedModel.conversation_id == conversation_id)
            .order_by(JudgedModel.id)
        ).all()
    )
    settings = judging.settings(db, conversation_id)
    attached = hashlib.sha256(f"{settings.constitution}\0{settings.adherence}".encode()).hexdigest()
    return (
        conversation_id,
        tuple(judged),
        tuple(verdicts),
        tuple(prompts),
        models,
        attached,
        live_report.version(db, conversation),
        live.status,
        live.computed_ms,
        len(live.groups),
    )


class ReportCache:
    """The last built judgments reports of this process, by :func:`fingerprint` (least recently used out).

    Why: the report fits Bradley–Terry ratings with 200 resamples and embeds every principle and prompt
    with MiniLM; a page view that finds nothing new since the last one should cost the fingerprint's
    queries, not that. Each server process keeps its own (a miss in another process builds it again).
    """

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self.entries: OrderedDict[tuple, Any] = OrderedDict()
        self.lock = threading.Lock()
        self.builds = 0  # how many times a report was built (tests read it)

    def get(self, key: tuple, build: Callable[[], Any]) -> Any:
        with self.lock:
            if key in self.entries:
                self.entries.move_to_end(key)
                return self.entries[key]
        value = build()  # outside the lock: two first requests may both build; both results are equal
        with self.lock:
            self.builds += 1
            self.entries[key] = value
            self.entries.move_to_end(key)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
        return value
