"""Hooks and encrypted copies: replications.rule/hooks, replicas.kms_key_id/parent_replica_id, hook_runs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03

Written out by hand (see 0001). Every added column is nullable, so existing rows stay valid and the upgrade needs
no data step; batch mode makes the column drops of the downgrade work on SQLite too.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from imagesync.adapters.sql.types import timestamp_type

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("replications") as batch:
        batch.add_column(sa.Column("rule", sa.String(200), nullable=True))
        batch.add_column(sa.Column("hooks", sa.Text(), nullable=True))
    with op.batch_alter_table("replicas") as batch:
        batch.add_column(sa.Column("kms_key_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("parent_replica_id", sa.String(32), nullable=True))
    op.create_table(
        "hook_runs",
        sa.Column("replica_id", sa.String(32), nullable=False),
        sa.Column("hook_key", sa.String(200), nullable=False),
        sa.Column("replication_id", sa.String(32), nullable=False),
        sa.Column("hook_type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(200), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("updated_at", timestamp_type(), nullable=False),
        sa.PrimaryKeyConstraint("replica_id", "hook_key", name="pk_hook_runs"),
    )
    op.create_index("ix_hook_runs_replication_id", "hook_runs", ["replication_id"])


def downgrade() -> None:
    op.drop_index("ix_hook_runs_replication_id", table_name="hook_runs")
    op.drop_table("hook_runs")
    with op.batch_alter_table("replicas") as batch:
        batch.drop_column("parent_replica_id")
        batch.drop_column("kms_key_id")
    with op.batch_alter_table("replications") as batch:
        batch.drop_column("hooks")
        batch.drop_column("rule")
