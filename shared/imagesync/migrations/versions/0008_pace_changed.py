"""Whether a copy's percent kept one pace across the sweep's looks: replicas.pace_changed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29

Written out by hand (see 0001). Nullable, no default: rows written before the upgrade say nothing of their pace
(NULL), which is what a copy with fewer than two looks showing a percent records too (domain.progress.pace_verdict).
Read with looks_over by the recent judged copies' query, on the first-look query's index (state, ended_at).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("replicas") as batch:
        batch.add_column(sa.Column("pace_changed", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("replicas") as batch:
        batch.drop_column("pace_changed")
