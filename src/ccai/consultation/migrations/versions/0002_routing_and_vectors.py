"""Routing without recounting and kept embeddings: a statements version per conversation, an XID index,
and the near-duplicate vectors of each statement (so no worker re-embeds a conversation after a restart).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 08:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("statements_version", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_participants_conversation_xid", "participants", ["conversation_id", "xid"])
    op.create_table(
        "statement_vectors",
        sa.Column("statement_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("text_key", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["statement_id"], ["statements.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("statement_id"),
    )


def downgrade() -> None:
    op.drop_table("statement_vectors")
    op.drop_index("ix_participants_conversation_xid", table_name="participants")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("statements_version")
