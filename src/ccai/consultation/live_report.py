"""The live report of a conversation, computed by ``ccai.analysis`` from the current votes.

Opinion map (participants on the PCA plane, coloured by group), groups with their representative
statements, the group-aware consensus (GAC) ranking, the most polarising statements, the areas of
uncertainty and participation over time. A background worker computes it (``jobs.py``) and keeps it in
the database as JSON (:func:`to_json`), named by the state it was computed from (:func:`version`); pages
read that, so no request runs the analysis.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ccai.consultation import rules
from ccai.consultation.exchange import statements_frame, votes_frame
from ccai.consultation.store import Conversation, Statement, Vote

MAP_SIZE = 320
# six of Okabe & Ito's colours, chosen to stay apart for protan, deutan and tritan colour vision (ΔE76 >= 20
# between every pair under a simulation: tests/consultation/test_integrity.py); the old palette fell to 6
PALETTE = ["#0072b2", "#d55e00", "#56b4e9", "#cc79a7", "#000000", "#f0e442"]


@dataclass
class LiveReport:
    conversation_id: int
    participants: int
    votes: int
    statements: int
    groups: list[dict] = field(default_factory=list)
    points: list[tuple[float, float, str]] = field(default_factory=list)
    gac: list[dict] = field(default_factory=list)
    polarising: list[dict] = field(default_factory=list)
    uncertain: list[dict] = field(default_factory=list)
    timeline: list[tuple[str, int, float]] = field(default_factory=list)  # (label, votes, bar height 0..1)
    note: str = ""
    result: object | None = None
    positions: dict[int, tuple[float, float, str, str]] = field(
        default_factory=dict
    )  # participant -> x, y, colour, group
    status: str = ""  # "computing": none yet; "updating": newer votes are being analysed (jobs.py)
    computed_ms: int = 0
    preview: dict = field(default_factory=dict)  # the live constitution preview (preview.py)


KEPT = [f for f in LiveReport.__dataclass_fields__ if f not in ("result", "status")]


def to_json(report: LiveReport) -> str:
    """What the worker stores (``store.StoredReport``): everything the pages show, not the analysis object."""
    return json.dumps({name: getattr(report, name) for name in KEPT}, ensure_ascii=False)


def from_json(text: str, status: str = "") -> LiveReport:
    values = json.loads(text)
    values["positions"] = {int(k): tuple(v) for k, v in values.get("positions", {}).items()}
    for name in ("points", "timeline"):
        values[name] = [tuple(v) for v in values.get(name, [])]
    return LiveReport(**{k: v for k, v in values.items() if k in KEPT}, status=status)


def restrict(report: LiveReport, shown: dict[int, str]) -> LiveReport:
    """A kept report cut to the statements the public may see now (number -> current wording): a report
    computed before a rejection, a rewrite or a switch to strict moderation must not show what a
    moderator has since hidden, nor the old wording."""

    def keep(rows: list[dict]) -> list[dict]:
        return [r | {"text": shown[r["id"]]} for r in rows if r["id"] in shown]

    for group in report.groups:
        group["repness"] = keep(group["repness"])
    if report.preview.get("principles"):  # a principle made from a statement hidden since goes too
        report.preview["principles"] = [
            p for p in report.preview["principles"] if all(int(s["id"]) in shown for s in p["sources"])
        ]
    report.gac, report.polarising, report.uncertain = (
        keep(report.gac),
        keep(report.polarising),
        keep(report.uncertain),
    )
    return report


def shown_statements(db: Session, conversation: Conversation) -> dict[int, str]:
    """Number -> text of the statements a member of the public may see now."""
    rows = db.execute(
        sa.select(Statement.number, Statement.text, Statement.moderation).where(
            Statement.conversation_id == conversation.id
        )
    )
    strict = bool(conversation.strict_moderation)
    return {n: text for n, text, m in rows if rules.visible(m, strict)}


def version(db: Session, conversation: Conversation) -> str:
    """Names the state a report depends on (last vote, statements and their moderation, strictness), and
    which conversation: SQLite gives a deleted conversation's id (and vote ids) to the next ones, so the
    id alone could name a deleted conversation's kept or cached report."""
    return ":".join(str(v) for v in _version(db, conversation))


def _version(db: Session, conversation: Conversation) -> tuple:
    conversation_id, strict = conversation.id, bool(conversation.strict_moderation)
    last_vote = db.scalar(sa.select(sa.func.max(Vote.id)).where(Vote.conversation_id == conversation_id))
    stamp = db.execute(
        sa.select(
            sa.func.count(),
            sa.func.max(Statement.moderated_ms),
            sa.func.max(Statement.rewritten_ms),
            sa.func.sum(Statement.moderation),
        ).where(Statement.conversation_id == conversation_id)
    ).one()
    return (conversation_id, conversation.created_ms, strict, last_vote, *stamp)


def build(db: Session, conversation: Conversation, cache: dict | None = None, seed: int = 0) -> LiveReport:
    """The report for ``conversation`` (reused from ``cache`` while nothing changed)."""
    key = _version(db, conversation)
    if cache is not None and key in cache:
        return cache[key]
    votes, statements, people = public_frames(db, conversation)
    report = LiveReport(conversation.id, people, len(votes), len(statements))
    report.timeline = _timeline(votes)
    try:
        from ccai.analysis import analyze

        result = analyze(votes, statements, groups="polis", seed=seed)
    except (ValueError, IndexError) as exc:  # too few votes for a PCA / clustering yet
        report.note = f"Opinion groups appear once enough people have voted ({exc})."
    else:
        _fill(report, result, statements)
    if cache is not None:
        if len(cache) > 32:
            cache.clear()
        cache[key] = report
    return report


def public_frames(db: Session, conversation: Conversation) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Votes and statements a member of the public may see: under strict moderation only accepted
    statements (a statement no moderator has reviewed must not reach any public page), otherwise all but
    rejected ones; votes only on those statements; and how many people voted at all."""
    votes = votes_frame(db, conversation.id)
    people = int(votes["participant"].nunique())
    statements = statements_frame(db, conversation.id)
    shown = [rules.visible(m, bool(conversation.strict_moderation)) for m in statements["moderated"]]
    statements = statements[shown]
    return votes[votes["statement"].isin(statements.index)].reset_index(drop=True), statements, people


def _row(statements: pd.DataFrame, sid, **values) -> dict:
    return {
        "id": int(sid),
        "text": str(statements.at[sid, "text"]) if sid in statements.index else "",
        **values,
    }


def _fill(report: LiveReport, result, statements: pd.DataFrame) -> None:
    report.result = result
    table = result.statements[result.statements["eligible"]]
    names = [str(n) for n in result.group_names]
    sizes = result.group_sizes()
    for k, name in enumerate(names):
        rows = result.repness[result.repness["group"].astype(str) == name]
        report.groups.append(
            {
                "name": name,
                "size": sizes.get(name, 0),
                "colour": PALETTE[k % len(PALETTE)],
                "repness": [
                    _row(statements, r.statement_id, direction=r.direction, share=float(r.p_success))
                    for r in rows.itertuples()
                ],
            }
        )
    top = table.sort_values("gac", ascending=False).head(15)
    report.gac = [
        _row(statements, sid, gac=float(r.gac), agree=int(r.n_agree), seen=int(r.n_seen))
        for sid, r in top.iterrows()
    ]
    # a statement seen by two people is not "polarising": ask for a tenth of the median exposure (at least 3)
    enough = table["n_seen"] >= max(3, 0.1 * float(table["n_seen"].median() or 0))
    divisive = table[enough].dropna(subset=["pi"]).sort_values("pi", ascending=False).head(10)
    report.polarising = [
        _row(statements, sid, pi=float(r.pi), agree=int(r.n_agree), disagree=int(r.n_disagree))
        for sid, r in divisive.iterrows()
    ]
    report.uncertain = [_row(statements, sid, score=float(score)) for sid, score in result.uncertainty]
    people = result.participants.dropna(subset=["x", "y"])
    if len(people):
        xy = people[["x", "y"]].to_numpy(float)
        low, span = xy.min(axis=0), np.ptp(xy, axis=0)
        span[span == 0] = 1
        scaled = 10 + (xy - low) / span * (MAP_SIZE - 20)
        colours = {name: PALETTE[k % len(PALETTE)] for k, name in enumerate(names)}
        report.points = [
            (round(x, 1), round(y, 1), colours.get(str(g), "#999"))
            for (x, y), g in zip(scaled, people["group"], strict=True)
        ]
        report.positions = {
            int(pid): (round(x, 1), round(y, 1), colours.get(str(g), "#999"), str(g))
            for pid, (x, y), g in zip(people.index, scaled, people["group"], strict=True)
        }


def _timeline(votes: pd.DataFrame) -> list[tuple[str, int, float]]:
    """Votes per hour (per day past two days, per week past 60 days), empty periods included."""
    stamps = pd.to_datetime(votes["timestamp"].dropna(), unit="ms", utc=True)
    if stamps.empty:
        return []
    span = stamps.max() - stamps.min()
    freq, fmt = ("h", "%Y-%m-%d %H:00") if span <= pd.Timedelta(days=2) else ("D", "%Y-%m-%d")
    if span > pd.Timedelta(days=60):  # weeks starting on Mondays
        freq, periods = "W-MON", stamps.dt.tz_localize(None).dt.to_period("W-SUN").dt.start_time
    else:
        periods = stamps.dt.floor(freq)
    full = pd.date_range(periods.min(), periods.max(), freq=freq)
    counts = periods.value_counts().reindex(full, fill_value=0)
    peak = max(int(counts.max()), 1)
    return [(t.strftime(fmt), int(n), float(n / peak)) for t, n in counts.items()]
