"""Web invites and per-conversation moderators.

``invites``: an owner makes a single-use, expiring link that lets someone create their own account (for a
global role, or as moderator of one conversation). ``conversation_roles``: which conversations a user of
the global role ``member`` may moderate (owners and moderators keep their rights over every conversation).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 14:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invites",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("note", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("used_ms", sa.BigInteger()),
        sa.Column("used_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column(
            "conversation_id",
            sa.Integer(),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=True,
        ),
    )
    op.create_table(
        "conversation_roles",
        sa.Column(
            "conversation_id",
            sa.Integer(),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("role", sa.String(20), nullable=False, server_default="moderator"),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_conversation_roles_user_id", "conversation_roles", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_conversation_roles_user_id", "conversation_roles")
    op.drop_table("conversation_roles")
    op.drop_table("invites")
