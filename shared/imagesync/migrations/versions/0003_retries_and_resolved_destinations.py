"""Retries and resolved destinations: replicas.retry_of, replications.requested_destinations.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

Written out by hand (see 0001). Both columns are nullable: existing rows stay valid (a replica without retry_of is
a first attempt; a replication without requested_destinations named its regions), so no data step is needed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("replications") as batch:
        batch.add_column(sa.Column("requested_destinations", sa.Text(), nullable=True))
    with op.batch_alter_table("replicas") as batch:
        batch.add_column(sa.Column("retry_of", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("replicas") as batch:
        batch.drop_column("retry_of")
    with op.batch_alter_table("replications") as batch:
        batch.drop_column("requested_destinations")
