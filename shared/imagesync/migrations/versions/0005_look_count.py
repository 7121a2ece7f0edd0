"""The sweep's looks at a copy: replicas.looks and replicas.first_look_at; an index for recent copies' durations.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

Written out by hand (see 0001). `looks` is NOT NULL with a server default of 0, so existing rows get 0 (a copy in
flight during the upgrade starts its look budget from its next look); `first_look_at` is nullable (no look yet).
The index (state, ended_at) serves the first-look query: the newest SUCCEEDED ends, read at most once per process
every few minutes, without sorting every finished replica.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from imagesync.adapters.sql.types import timestamp_type

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("replicas") as batch:
        batch.add_column(sa.Column("looks", sa.Integer(), nullable=False, server_default=sa.text("0")))
        batch.add_column(sa.Column("first_look_at", timestamp_type(), nullable=True))
    op.create_index("ix_replicas_state_ended_at", "replicas", ["state", "ended_at"])


def downgrade() -> None:
    op.drop_index("ix_replicas_state_ended_at", table_name="replicas")
    with op.batch_alter_table("replicas") as batch:
        batch.drop_column("first_look_at")
        batch.drop_column("looks")
