"""The judging round: compared models, prompts, their answers, participants' judgments, AI judge verdicts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 11:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "judging_settings",
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("chat_public", sa.Boolean(), nullable=False),
        sa.Column("max_tokens", sa.Integer(), nullable=False),
        sa.Column("judge_spec", sa.String(length=500), nullable=False),
        sa.Column("constitution", sa.Text(), nullable=False),
        sa.Column("generating", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("conversation_id"),
    )
    op.create_table(
        "judged_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=60), nullable=False),
        sa.Column("base_url", sa.String(length=500), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("conversation_id", "label"),
    )
    op.create_table(
        "judging_prompts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("conversation_id", "number"),
    )
    op.create_table(
        "model_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prompt_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("finish_reason", sa.String(length=20), nullable=False),
        sa.Column("moderation", sa.SmallInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["judged_models.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["prompt_id"], ["judging_prompts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("prompt_id", "model_id"),
    )
    op.create_table(
        "judgments",
        sa.Column("id", BIG, nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", BIG, nullable=False),
        sa.Column("prompt_id", sa.Integer(), nullable=False),
        sa.Column("left_id", sa.Integer(), nullable=False),
        sa.Column("right_id", sa.Integer(), nullable=False),
        sa.Column("choice", sa.String(length=10), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["prompt_id"], ["judging_prompts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["left_id"], ["judged_models.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["right_id"], ["judged_models.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_judgments_participant", "judgments", ["participant_id", "prompt_id"])
    op.create_index("ix_judgments_conversation", "judgments", ["conversation_id", "id"])
    op.create_table(
        "judge_verdicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prompt_id", sa.Integer(), nullable=False),
        sa.Column("first_id", sa.Integer(), nullable=False),
        sa.Column("second_id", sa.Integer(), nullable=False),
        sa.Column("p_first_wins", sa.Float(), nullable=False),
        sa.Column("judge", sa.String(length=500), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["prompt_id"], ["judging_prompts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["first_id"], ["judged_models.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["second_id"], ["judged_models.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("prompt_id", "first_id", "second_id"),
    )


def downgrade() -> None:
    op.drop_table("judge_verdicts")
    op.drop_index("ix_judgments_conversation", table_name="judgments")
    op.drop_index("ix_judgments_participant", table_name="judgments")
    op.drop_table("judgments")
    op.drop_table("model_answers")
    op.drop_table("judging_prompts")
    op.drop_table("judged_models")
    op.drop_table("judging_settings")
