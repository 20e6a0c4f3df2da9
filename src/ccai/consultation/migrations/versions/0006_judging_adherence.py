"""The AI judge's adherence result attached to a judging round: one text column, empty for every round.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 14:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("judging_settings") as batch:
        batch.add_column(sa.Column("adherence", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("judging_settings") as batch:
        batch.drop_column("adherence")
