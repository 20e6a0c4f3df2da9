"""Tables of the judging round: the models an organiser compares, the prompts, the answers, the judgments.

Kept apart from ``store.py`` (same declarative ``Base``, same migrations) so the statement tables and their
hot paths stay as they are. Judgments are an append-only log like votes: a re-judgment of the same item
(prompt and model pair) is a new row and the latest row counts. The two answers are stored with the side
each model was shown on, so a preference for the left-hand answer can be measured.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ccai.consultation.store import Base, BigId, now_ms


class JudgingSettings(Base):
    """One row per conversation that has a judging round (absent: no round, no chat)."""

    __tablename__ = "judging_settings"
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)  # participants see the round
    chat_public: Mapped[bool] = mapped_column(Boolean, default=False)  # participants may use the chat page
    max_tokens: Mapped[int] = mapped_column(Integer, default=128)
    judge_spec: Mapped[str] = mapped_column(String(500), default="")  # openai:URL#NAME of the AI judge
    constitution: Mapped[str] = mapped_column(Text, default="")  # JSON of an attached constitution
    adherence: Mapped[str] = mapped_column(Text, default="")  # JSON: `ccai eval`'s adherence summary
    generating: Mapped[str] = mapped_column(Text, default="")  # what the background step last said


class JudgedModel(Base):
    """A model the organiser compares: a label people never see, an OpenAI-compatible server and name."""

    __tablename__ = "judged_models"
    __table_args__ = (UniqueConstraint("conversation_id", "label"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(60))
    base_url: Mapped[str] = mapped_column(String(500))
    model: Mapped[str] = mapped_column(String(200))
    created_ms: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class JudgingPrompt(Base):
    __tablename__ = "judging_prompts"
    __table_args__ = (UniqueConstraint("conversation_id", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    created_ms: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class ModelAnswer(Base):
    """One model's answer to one prompt, generated ahead; moderated like a statement (1 / 0 / -1)."""

    __tablename__ = "model_answers"
    __table_args__ = (UniqueConstraint("prompt_id", "model_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("judging_prompts.id", ondelete="CASCADE"))
    model_id: Mapped[int] = mapped_column(ForeignKey("judged_models.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    finish_reason: Mapped[str] = mapped_column(String(20), default="")
    moderation: Mapped[int] = mapped_column(SmallInteger, default=0)
    created_ms: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class Judgment(Base):
    __tablename__ = "judgments"
    __table_args__ = (
        Index("ix_judgments_participant", "participant_id", "prompt_id"),
        Index("ix_judgments_conversation", "conversation_id", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"))
    prompt_id: Mapped[int] = mapped_column(ForeignKey("judging_prompts.id", ondelete="CASCADE"))
    left_id: Mapped[int] = mapped_column(ForeignKey("judged_models.id", ondelete="CASCADE"))  # shown as A
    right_id: Mapped[int] = mapped_column(ForeignKey("judged_models.id", ondelete="CASCADE"))  # shown as B
    choice: Mapped[str] = mapped_column(String(10))  # a | b | both_fine | both_bad
    created_ms: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class JudgeVerdict(Base):
    """The AI judge's order-averaged probability that ``first`` beats ``second`` on a prompt."""

    __tablename__ = "judge_verdicts"
    __table_args__ = (UniqueConstraint("prompt_id", "first_id", "second_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("judging_prompts.id", ondelete="CASCADE"))
    first_id: Mapped[int] = mapped_column(ForeignKey("judged_models.id", ondelete="CASCADE"))
    second_id: Mapped[int] = mapped_column(ForeignKey("judged_models.id", ondelete="CASCADE"))
    p_first_wins: Mapped[float] = mapped_column(Float)
    judge: Mapped[str] = mapped_column(String(500))
    created_ms: Mapped[int] = mapped_column(BigInteger, default=now_ms)
