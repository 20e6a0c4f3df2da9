"""The judging round: participants compare two anonymised model answers to a prompt and pick the better one.

Why: the public wrote the constitution; this asks the same public whether the models trained (or prompted)
on it answer the way they want. The organiser names two or more models served over the OpenAI API (e.g. by
``ccai models serve``) and a list of prompts; the answers are generated ahead by a background step
(:func:`generate_answers`), never inside a participant's request, and stored. A participant then meets the
(prompt, pair of models) items in an order drawn from a generator seeded by the participant, each with the
two answers on sides drawn the same way, and answers A, B, "both fine" or "both bad".

The rules are those of statement votes: only an open conversation and an eligible participant, answers
hidden once a moderator rejects them (under strict moderation: shown only once accepted), and the votes
limiter counts judgments. Judgments are an append-only log; the latest per (participant, item) counts.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ccai.consultation import rules
from ccai.consultation.judging_store import (
    JudgedModel,
    JudgeVerdict,
    JudgingPrompt,
    JudgingSettings,
    Judgment,
    ModelAnswer,
)
from ccai.consultation.rules import Conflict, NotFound, RuleError
from ccai.consultation.store import Conversation, Participant, now_ms

CHOICES = ("a", "b", "both_fine", "both_bad")
MAX_MODELS = 6
MAX_PROMPTS = 200
MAX_PROMPT_CHARS = 2000
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,59}$")
SETTING_DEFAULTS: dict[str, object] = {
    "enabled": False,
    "chat_public": False,
    "max_tokens": 128,
    "judge_spec": "",
    "constitution": "",
    "adherence": "",
    "generating": "",
}

# ---------------------------------------------------------------- configuration


def settings(db: Session, conversation_id: int) -> JudgingSettings:
    """The conversation's judging settings (a new, unsaved default row when it has none yet)."""
    found = db.get(JudgingSettings, conversation_id)
    if found is None:
        found = JudgingSettings(conversation_id=conversation_id, **SETTING_DEFAULTS)
        db.add(found)
    return found


def configure(
    db: Session,
    conversation: Conversation,
    *,
    enabled: bool,
    chat_public: bool,
    max_tokens: int,
    judge_spec: str = "",
) -> JudgingSettings:
    """Switch the round and the participants' chat on or off; the answers' length; the AI judge."""
    if not 8 <= max_tokens <= 1024:
        raise RuleError("invalid_field", "max_tokens must be between 8 and 1024")
    judge_spec = judge_spec.strip()
    if judge_spec and not re.match(r"^openai:https?://[^\s#]+#\S+$", judge_spec):
        raise RuleError(
            "invalid_field",
            "judge must be openai:<base_url>#<model>, e.g. openai:http://127.0.0.1:8000/v1#base",
        )
    found = settings(db, conversation.id)
    if enabled and len(models(db, conversation.id)) < 2:
        raise RuleError("invalid_field", "the judging round needs at least two models")
    found.enabled, found.chat_public, found.max_tokens, found.judge_spec = (
        enabled,
        chat_public,
        max_tokens,
        judge_spec,
    )
    return found


def models(db: Session, conversation_id: int) -> list[JudgedModel]:
    query = sa.select(JudgedModel).where(JudgedModel.conversation_id == conversation_id)
    return list(db.scalars(query.order_by(JudgedModel.id)))


def add_model(db: Session, conversation: Conversation, label: str, base_url: str, model: str) -> JudgedModel:
    """A compared model: ``label`` (only organisers see it), its server's ``base_url`` and model name."""
    label, base_url, model = label.strip(), base_url.strip().rstrip("/"), model.strip()
    if not LABEL.match(label):
        raise RuleError("invalid_field", "label: 1 to 60 letters, digits, '.', '_' or '-', starting with one")
    if not re.match(r"^https?://[^\s/]+", base_url) or len(base_url) > 500:
        raise RuleError(
            "invalid_field",
            f"base_url must be an http(s) address such as http://127.0.0.1:8000/v1, got {base_url!r}",
        )
    if not model or len(model) > 200 or any(c.isspace() for c in model):
        raise RuleError("invalid_field", "model: the served model name (1 to 200 characters, no spaces)")
    existing = models(db, conversation.id)
    if any(m.label == label for m in existing):
        raise Conflict("duplicate_model", f"a model labelled {label!r} is already compared here")
    if len(existing) >= MAX_MODELS:
        raise RuleError("too_many_models", f"at most {MAX_MODELS} models per conversation")
    row = JudgedModel(conversation_id=conversation.id, label=label, base_url=base_url, model=model)
    db.add(row)
    db.flush()
    return row


def remove_model(db: Session, conversation: Conversation, label: str) -> None:
    """Remove a model with its answers and judgments (the round switches off below two models)."""
    row = db.scalar(
        sa.select(JudgedModel).where(
            JudgedModel.conversation_id == conversation.id, JudgedModel.label == label
        )
    )
    if row is None:
        raise NotFound("no_model", f"no model labelled {label!r} in this conversation")
    db.execute(sa.delete(Judgment).where(sa.or_(Judgment.left_id == row.id, Judgment.right_id == row.id)))
    db.execute(
        sa.delete(JudgeVerdict).where(
            sa.or_(JudgeVerdict.first_id == row.id, JudgeVerdict.second_id == row.id)
        )
    )
    db.execute(sa.delete(ModelAnswer).where(ModelAnswer.model_id == row.id))
    db.delete(row)
    db.flush()
    if len(models(db, conversation.id)) < 2:
        settings(db, conversation.id).enabled = False


def prompts(db: Session, conversation_id: int) -> list[JudgingPrompt]:
    query = sa.select(JudgingPrompt).where(JudgingPrompt.conversation_id == conversation_id)
    return list(db.scalars(query.order_by(JudgingPrompt.number)))


def add_prompts(db: Session, conversation: Conversation, text: str) -> list[JudgingPrompt]:
    """Prompts, one per line (blank lines skipped, exact repeats of a known prompt refused by line)."""
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise RuleError("invalid_field", "write at least one prompt, one per line")
    known = {p.text for p in prompts(db, conversation.id)}
    if len(known) + len(lines) > MAX_PROMPTS:
        raise RuleError("too_many_prompts", f"at most {MAX_PROMPTS} prompts per conversation")
    for n, line in lines:
        if len(line) > MAX_PROMPT_CHARS:
            raise RuleError("invalid_field", f"line {n}: a prompt has at most {MAX_PROMPT_CHARS} characters")
        if line in known:
            raise RuleError("duplicate_prompt", f"line {n}: this prompt is already in the list")
        known.add(line)
    number = db.scalar(
        sa.select(sa.func.max(JudgingPrompt.number)).where(JudgingPrompt.conversation_id == conversation.id)
    )
    number = -1 if number is None else number
    added = []
    for k, (_, line) in enumerate(lines, 1):
        row = JudgingPrompt(
            conversation_id=conversation.id, number=number + k, text=line, created_ms=now_ms()
        )
        db.add(row)
        added.append(row)
    db.flush()
    return added


def answers(db: Session, conversation_id: int) -> dict[tuple[int, int], ModelAnswer]:
    """(prompt id, model id) -> the stored answer."""
    rows = db.scalars(
        sa.select(ModelAnswer)
        .join(JudgingPrompt, JudgingPrompt.id == ModelAnswer.prompt_id)
        .where(JudgingPrompt.conversation_id == conversation_id)
    )
    return {(a.prompt_id, a.model_id): a for a in rows}


def missing(db: Session, conversation_id: int) -> list[tuple[JudgingPrompt, JudgedModel]]:
    have = answers(db, conversation_id)
    return [
        (p, m)
        for m in models(db, conversation_id)
        for p in prompts(db, conversation_id)
        if (p.id, m.id) not in have
    ]


def moderate_answer(
    db: Session, conversation: Conversation, answer_id: int, action: str, reason: str = ""
) -> ModelAnswer:
    """Accept, reject (with a reason) or reset one generated answer: a rejected answer takes its items
    out of the round; under strict moderation only accepted answers are shown."""
    row = db.get(ModelAnswer, answer_id)
    prompt = db.get(JudgingPrompt, row.prompt_id) if row else None
    if row is None or prompt is None or prompt.conversation_id != conversation.id:
        raise NotFound("no_answer", f"no answer {answer_id} in this conversation")
    row.moderation = int(rules.moderate(row.moderation, action, reason))
    return row


# ---------------------------------------------------------------- generating ahead


def chat_messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def default_client(model: JudgedModel):
    from ccai.models.backends import OpenAIBackend

    return OpenAIBackend(model.base_url, model.model, concurrency=4, timeout=600)


def generate_answers(
    sessions: Callable[[], Session],
    conversation_id: int,
    client_for: Callable | None = None,
    seed: int = 0,
    concurrency: int = 16,
) -> str:
    """Ask every model for its missing answers and store them; returns (and keeps) what happened.

    Runs outside any participant's request (an organiser's action starts it in the background). All
    requests go out together, up to ``concurrency`` at once (a batching server such as ``ccai models
    serve`` decodes them as one batch, across names that share weights). Each answer is stored as it
    arrives, so a failing server costs only its own answers, and the message names it. Sampling is
    seeded: ``seed + prompt number``. ``client_for(model)`` makes the client (default: ``OpenAIBackend``).
    """
    client_for = client_for or default_client
    with sessions() as db:
        limit = settings(db, conversation_id).max_tokens
        todo = [(p.id, p.number, p.text, m) for p, m in missing(db, conversation_id)]
    clients = {m.id: client_for(m) for m in {item[3].id: item[3] for item in todo}.values()}
    done, problems = 0, {}
    lock = threading.Lock()

    def ask(item: tuple[int, int, str, JudgedModel]) -> None:
        nonlocal done
        prompt_id, number, text, model = item
        try:  # one seed per prompt: the same prompt gets the same answer
            (reply,) = clients[model.id].generate_with_info(
                [chat_messages(text)], max_new_tokens=limit, temperature=0.7, seed=seed + number
            )
        except (ConnectionError, ValueError, KeyError) as exc:
            with lock:
                problems.setdefault(model.label, str(exc)[:300])
            return
        with lock, sessions() as db:
            if (prompt_id, model.id) not in answers(db, conversation_id):
                db.add(
                    ModelAnswer(
                        prompt_id=prompt_id,
                        model_id=model.id,
                        text=reply.text,
                        finish_reason=reply.finish_reason or "",
                        moderation=int(rules.Moderation.PENDING),
                        created_ms=now_ms(),
                    )
                )
                db.commit()
                done += 1

    try:
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            list(pool.map(ask, todo))
    finally:
        for client in clients.values():
            getattr(client, "close", lambda: None)()
    failed = "; ".join(f"{label}: {why}" for label, why in problems.items())
    message = f"{done} answers generated" + (f"; failed: {failed}" if failed else "")
    with sessions() as db:
        settings(db, conversation_id).generating = message[:4000]
        db.commit()
    return message


def run_ai_judge(
    sessions: Callable[[], Session], conversation_id: int, make_judge: Callable | None = None
) -> str:
    """The AI judge's verdict on every item (both orders, ``ccai.evaluation.pairwise``), stored."""
    from ccai.evaluation.pairwise import judge_pairs

    with sessions() as db:
        spec = settings(db, conversation_id).judge_spec
        labels = {m.id: m.label for m in models(db, conversation_id)}
        stored = answers(db, conversation_id)
        complete = [p for p in prompts(db, conversation_id) if all((p.id, m) in stored for m in labels)]
        texts = {str(p.id): p.text for p in complete}
        by_label = {labels[m]: {str(p.id): stored[(p.id, m)].text for p in complete} for m in labels}
    if not spec:
        raise RuleError("no_judge", "name an AI judge (openai:<base_url>#<model>) first")
    if not texts:
        raise RuleError("no_answers", "generate the answers first")
    if make_judge is None:
        from ccai.models.backends import make_backend

        make_judge = make_backend
    judge = make_judge(spec)
    try:
        records = judge_pairs(judge, texts, by_label, "helpfulness")
    finally:
        getattr(judge, "close", lambda: None)()
    ids = {label: mid for mid, label in labels.items()}
    with sessions() as db:
        db.execute(sa.delete(JudgeVerdict).where(JudgeVerdict.prompt_id.in_([int(k) for k in texts])))
        for r in records:
            db.add(
                JudgeVerdict(
                    prompt_id=int(r["id"]),
                    first_id=ids[r["a"]],
                    second_id=ids[r["b"]],
                    p_first_wins=float(r["p_a_wins"]),
                    judge=spec,
                    created_ms=now_ms(),
                )
            )
        db.commit()
    return f"{len(records)} AI judge verdicts"


# ---------------------------------------------------------------- what a participant sees


@dataclass
class Item:
    prompt: JudgingPrompt
    left: ModelAnswer  # shown as answer A
    right: ModelAnswer  # shown as answer B
    pair: str  # "<model id>-<model id>", lower id first: names the item, not the sides

    @property
    def key(self) -> tuple[int, str]:
        return (self.prompt.id, self.pair)


@dataclass
class Round:
    item: Item | None
    remaining: int
    judged: int
    total: int


def _pairs(model_rows: list[JudgedModel]) -> list[tuple[JudgedModel, JudgedModel]]:
    return list(itertools.combinations(sorted(model_rows, key=lambda m: m.id), 2))


def _who(token_hash: str) -> int:
    """The seed part that names a person: their token's digest, known before they have joined (a first
    visit shows the same order and sides as the page after their first judgment)."""
    return int(token_hash[:15], 16)


def _sides(seed: int, conversation_id: int, who: int, prompt_id: int, pair: str) -> bool:
    """Whether the pair's higher-id model is shown as A: seeded by person and item, so a reload shows the
    same sides, and over many people each model is on the left half of the time."""
    low, high = (int(x) for x in pair.split("-"))
    rng = np.random.default_rng([seed, conversation_id, who, prompt_id, low, high])
    return bool(rng.integers(2))


def items(db: Session, conversation: Conversation) -> list[tuple[JudgingPrompt, JudgedModel, JudgedModel]]:
    """Every (prompt, model pair) whose two answers a participant may see."""
    strict = bool(conversation.strict_moderation)
    stored = answers(db, conversation.id)
    pairs = _pairs(models(db, conversation.id))
    out = []
    for prompt in prompts(db, conversation.id):
        for a, b in pairs:
            one, two = stored.get((prompt.id, a.id)), stored.get((prompt.id, b.id))
            if (
                one
                and two
                and rules.visible(one.moderation, strict)
                and rules.visible(two.moderation, strict)
            ):
                out.append((prompt, a, b))
    return out


def judged_keys(db: Session, participant_id: int) -> set[tuple[int, str]]:
    rows = db.execute(
        sa.select(Judgment.prompt_id, Judgment.left_id, Judgment.right_id).where(
            Judgment.participant_id == participant_id
        )
    )
    return {(p, f"{min(a, b)}-{max(a, b)}") for p, a, b in rows}


def next_item(
    db: Session, conversation: Conversation, participant: Participant | None, token_hash: str, seed: int = 0
) -> Round:
    """The next item of the person holding ``token_hash`` (digest), in an order seeded by that person
    (a reload shows the same one)."""
    pool = items(db, conversation)
    done = judged_keys(db, participant.id) if participant else set()
    pid = _who(token_hash)
    order = np.random.default_rng([seed, conversation.id, pid]).permutation(len(pool))
    todo = [pool[k] for k in order if (pool[k][0].id, f"{pool[k][1].id}-{pool[k][2].id}") not in done]
    judged = sum(1 for p, a, b in pool if (p.id, f"{a.id}-{b.id}") in done)
    if not todo:
        return Round(None, 0, judged, len(pool))
    prompt, a, b = todo[0]
    return Round(_item(db, conversation, pid, prompt, a, b, seed), len(todo), judged, len(pool))


def _item(db, conversation, pid, prompt, a, b, seed) -> Item:
    pair = f"{a.id}-{b.id}"
    stored = answers(db, conversation.id)
    first, second = stored[(prompt.id, a.id)], stored[(prompt.id, b.id)]
    if _sides(seed, conversation.id, pid, prompt.id, pair):
        first, second = second, first
    return Item(prompt, first, second, pair)


def judge(
    db: Session,
    conversation: Conversation,
    participant: Participant,
    prompt_number: int,
    pair: str,
    choice: str,
    seed: int = 0,
) -> Judgment:
    """Append one judgment (the sides are recomputed here, never taken from the form)."""
    if not participant.token_hash:
        raise RuleError("invalid_field", "imported participants cannot judge")
    from ccai.consultation.service import require_eligible

    if choice not in CHOICES:
        raise RuleError("invalid_field", f"choice must be one of {', '.join(CHOICES)}")
    rules.check_open(conversation.is_open)
    require_eligible(participant)
    if not settings(db, conversation.id).enabled:
        raise NotFound("no_judging", "This conversation has no judging round open.")
    for prompt, a, b in items(db, conversation):
        if prompt.number == prompt_number and f"{a.id}-{b.id}" == pair:
            item = _item(db, conversation, _who(participant.token_hash or ""), prompt, a, b, seed)
            break
    else:
        raise NotFound("no_item", f"No answers to prompt {prompt_number} open for judging here.")
    row = Judgment(
        conversation_id=conversation.id,
        participant_id=participant.id,
        prompt_id=item.prompt.id,
        left_id=item.left.model_id,
        right_id=item.right.model_id,
        choice=choice,
        created_ms=now_ms(),
    )
    db.add(row)
    return row


# ---------------------------------------------------------------- export


EXPORT_COLUMNS = [
    "timestamp",
    "participant",
    "prompt",
    "prompt_text",
    "model_a",
    "model_b",
    "choice",
    "preferred",
]


def judgment_rows(db: Session, conversation_id: int, log: bool = False) -> list[dict]:
    """Judgments with model labels (latest per participant and item, or the whole log), oldest first."""
    left, right = sa.orm.aliased(JudgedModel), sa.orm.aliased(JudgedModel)
    query = (
        sa.select(
            Judgment.created_ms,
            Participant.number,
            JudgingPrompt.number,
            JudgingPrompt.text,
            left.label,
            right.label,
            Judgment.choice,
            Judgment.prompt_id,
            Judgment.left_id,
            Judgment.right_id,
        )
        .join(Participant, Participant.id == Judgment.participant_id)
        .join(JudgingPrompt, JudgingPrompt.id == Judgment.prompt_id)
        .join(left, left.id == Judgment.left_id)
        .join(right, right.id == Judgment.right_id)
        .where(Judgment.conversation_id == conversation_id)
        .order_by(Judgment.id)
    )
    rows: dict[object, dict] = {}
    for n, (ms, person, number, text, a, b, choice, prompt_id, left_id, right_id) in enumerate(
        db.execute(query)
    ):
        key = n if log else (person, prompt_id, min(left_id, right_id), max(left_id, right_id))
        rows.pop(key, None)  # the latest row goes last
        rows[key] = {
            "timestamp": ms,
            "participant": person,
            "prompt": number,
            "prompt_text": text,
            "model_a": a,
            "model_b": b,
            "choice": choice,
            "preferred": {"a": a, "b": b}.get(choice, ""),
            "prompt_id": prompt_id,
        }
    return list(rows.values())


def export_csv(db: Session, conversation_id: int) -> str:
    """judgments.csv: one row per counted judgment; ``model_a`` is the model shown as answer A. Text cells
    a spreadsheet would run as a formula start with an apostrophe (as in the Polis export)."""
    from ccai.consultation.exchange import spreadsheet_safe

    out = io.StringIO()
    writer = csv.DictWriter(out, EXPORT_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in judgment_rows(db, conversation_id):
        writer.writerow({k: spreadsheet_safe(v) if isinstance(v, str) else v for k, v in row.items()})
    return out.getvalue()


def links(db: Session, conversation_id: int) -> tuple[bool, bool]:
    """(judging round open, chat page open) to participants: the conversation page links to them then."""
    row = db.execute(
        sa.select(JudgingSettings.enabled, JudgingSettings.chat_public).where(
            JudgingSettings.conversation_id == conversation_id
        )
    ).first()
    return (bool(row[0]), bool(row[1])) if row else (False, False)
