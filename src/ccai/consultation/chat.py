"""The chat page: one question, every compared model's answer side by side, and the principles it touches.

Why: before (or beside) a judging round, organisers and participants can see for themselves how the base,
standard and public models differ on a question of their own, and which principles of the community's
constitution speak to it, with the statements each principle came from. The principles are ranked by
MiniLM cosine similarity between the question and each principle's text (its comparison form and its
source statements), the same bundled embedder that finds near-duplicate statements.

Questions are not stored. Answers are greedy (temperature 0), so the same question gives the same answers.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ccai.consultation.judging_store import JudgedModel
from ccai.consultation.rules import RuleError

MAX_QUESTION_CHARS = 1000
MAX_CONSTITUTION_BYTES = 1_000_000
TOP_PRINCIPLES = 3


def load_constitution(data: bytes | str, source: str = "the uploaded file") -> Any:
    """A :class:`ccai.constitution.Constitution` from JSON text; a refusal names the problem."""
    from ccai.constitution.model import Constitution, ConstitutionError

    if isinstance(data, bytes):
        if len(data) > MAX_CONSTITUTION_BYTES:
            raise RuleError("invalid_field", f"{source}: larger than {MAX_CONSTITUTION_BYTES} bytes")
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise RuleError("invalid_field", f"{source}: not UTF-8 text (byte {exc.start})") from exc
    try:
        parsed = json.loads(data)
    except json.JSONDecodeError as exc:
        raise RuleError(
            "invalid_field", f"{source}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    try:
        return Constitution.from_dict(parsed, source=source, text=data)
    except ConstitutionError as exc:
        raise RuleError("invalid_field", str(exc)[:2000]) from exc


def attached(db: Any, conversation_id: int) -> Any:
    """The constitution the organiser attached to the conversation, or None."""
    from ccai.consultation.judging import settings

    stored = settings(db, conversation_id).constitution
    return load_constitution(stored, "the attached constitution") if stored else None


def principle_text(principle: Any) -> str:
    """What a principle says, for ranking: its comparison form and the statements it came from."""
    sources = [str(getattr(s, "text", "")) for s in principle.sources]
    return " ".join([str(principle.comparison), *sources])


def source_line(source: Any) -> str:
    """One source of a principle as a line a reader can follow back (statement, article, base principle)."""
    if source.kind == "statement":
        where = f", {source.consultation}" if source.consultation else ""
        return f"“{source.text}” (statement {source.id}{where})"
    if source.kind == "article":
        return f"“{source.text}” ({source.document}, {source.article})"
    return f"“{source.text}” ({source.constitution}, {source.principle_id})"


def source_lines(principle: Any) -> list[str]:
    return [source_line(s) for s in principle.sources]


def relevant_principles(constitution: Any, question: str, finder: Any, k: int = TOP_PRINCIPLES) -> list:
    """The ``k`` principles closest in meaning to ``question``: (principle, cosine), most similar first."""
    principles = list(constitution.principles) if constitution is not None else []
    if not principles or not question.strip():
        return []
    vectors = finder.embed([question] + [principle_text(p) for p in principles])
    scores = vectors[1:] @ vectors[0]
    order = np.argsort(-scores, kind="stable")[:k]
    return [(principles[i], float(scores[i])) for i in order]


@dataclass
class Reply:
    label: str
    text: str = ""
    error: str = ""
    finish_reason: str = ""


@dataclass
class ChatResult:
    question: str
    replies: list[Reply] = field(default_factory=list)
    principles: list = field(default_factory=list)  # (principle, cosine)


def check_question(question: str) -> str:
    question = question.strip()
    if not question:
        raise RuleError("empty", "Write a question first.")
    if len(question) > MAX_QUESTION_CHARS:
        raise RuleError(
            "too_long", f"A question has at most {MAX_QUESTION_CHARS} characters.", n=MAX_QUESTION_CHARS
        )
    return question


def ask(models: list[JudgedModel], question: str, max_tokens: int, client_for: Any) -> list[Reply]:
    """Every model's greedy answer, asked at the same time; a model whose server fails says so in place."""

    def one(model: JudgedModel) -> Reply:
        client = client_for(model)
        try:
            (reply,) = client.generate_with_info(
                [[{"role": "user", "content": question}]], max_new_tokens=max_tokens, temperature=0.0, seed=0
            )
            return Reply(model.label, reply.text, finish_reason=reply.finish_reason or "")
        except (ConnectionError, ValueError, KeyError) as exc:
            return Reply(model.label, error=str(exc)[:300])
        finally:
            getattr(client, "close", lambda: None)()

    if not models:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(models))) as pool:
        return list(pool.map(one, models))
