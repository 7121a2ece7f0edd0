"""How a copy fared against its look budget: replicas.looks_over.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29

Written out by hand (see 0001). Nullable, no default: rows ended before the upgrade were not judged (NULL), which
is what a copy whose looks never went ahead of the budget's slots records too (domain.progress.judged_looks). The
first-look query's index (state, ended_at) serves the read of the recent judged copies as well.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("replicas") as batch:
        batch.add_column(sa.Column("looks_over", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("replicas") as batch:
        batch.drop_column("looks_over")
