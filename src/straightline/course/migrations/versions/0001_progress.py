"""Progress store: learners, element_state, attempts.

Revision ID: 0001_progress
Revises:
Create Date: the course app issue
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_progress"
down_revision = None
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "learners",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "element_state",
        sa.Column("learner_id", sa.String(64), sa.ForeignKey("learners.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("element_id", sa.String(100), primary_key=True),
        sa.Column("element_type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("state", _JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "attempts",
        sa.Column("id", _BIGINT_PK, primary_key=True, autoincrement=True),
        sa.Column("learner_id", sa.String(64), sa.ForeignKey("learners.id", ondelete="CASCADE"), nullable=False),
        sa.Column("element_id", sa.String(100), nullable=False),
        sa.Column("element_type", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_attempts_learner_element", "attempts", ["learner_id", "element_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_attempts_learner_element", table_name="attempts")
    op.drop_table("attempts")
    op.drop_table("element_state")
    op.drop_table("learners")
