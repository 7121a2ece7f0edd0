"""The initial state table: replications, replicas, outbox, audit, idempotency.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Written out by hand (not from the live metadata) so that this revision stays what it was when later ones change
the schema. Timestamps use imagesync.adapters.sql.types.timestamp_type(): naive UTC with microseconds.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from imagesync.adapters.sql.types import timestamp_type

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    ts = timestamp_type
    op.create_table(
        "replications",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("source_region", sa.String(40), nullable=False),
        sa.Column("image_ids", sa.Text(), nullable=False),
        sa.Column("destination_regions", sa.Text(), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("created_at", ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_replications"),
    )
    op.create_index("ix_replications_created_at_id", "replications", ["created_at", "id"])
    op.create_table(
        "replicas",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("replication_id", sa.String(32), nullable=False),
        sa.Column("source_region", sa.String(40), nullable=False),
        sa.Column("source_image_id", sa.String(32), nullable=False),
        sa.Column("destination_region", sa.String(40), nullable=False),
        sa.Column("image_name", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("destination_image_id", sa.String(32), nullable=True),
        sa.Column("sync_percent", sa.Integer(), nullable=True),
        sa.Column("error_code", sa.String(200), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", ts(), nullable=False),
        sa.Column("updated_at", ts(), nullable=False),
        sa.Column("started_at", ts(), nullable=True),
        sa.Column("ended_at", ts(), nullable=True),
        sa.Column("next_check_at", ts(), nullable=False),
        sa.Column("deadline_at", ts(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", ts(), nullable=True),
        sa.Column("inflight_key", sa.String(152), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_replicas"),
        sa.ForeignKeyConstraint(
            ["replication_id"], ["replications.id"], name="fk_replicas_replication_id_replications"
        ),
        sa.UniqueConstraint("inflight_key", name="uq_replicas_inflight_key"),
    )
    op.create_index("ix_replicas_replication_id", "replicas", ["replication_id"])
    op.create_index("ix_replicas_state_next_check_at", "replicas", ["state", "next_check_at"])
    op.create_index("ix_replicas_source_image_id", "replicas", ["source_image_id"])
    op.create_index("ix_replicas_destination_region", "replicas", ["destination_region"])
    op.create_table(
        "outbox",
        sa.Column("message_id", sa.String(32), nullable=False),
        sa.Column("replica_id", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", ts(), nullable=False),
        sa.Column("sent_at", ts(), nullable=True),
        sa.PrimaryKeyConstraint("message_id", name="pk_outbox"),
        sa.ForeignKeyConstraint(["replica_id"], ["replicas.id"], name="fk_outbox_replica_id_replicas"),
        sa.UniqueConstraint("replica_id", name="uq_outbox_replica_id"),
    )
    op.create_index("ix_outbox_sent_at_created_at", "outbox", ["sent_at", "created_at"])
    op.create_table(
        "audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("replication_id", sa.String(32), nullable=False),
        sa.Column("at", ts(), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("origin", sa.String(200), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit"),
    )
    op.create_index("ix_audit_replication_id", "audit", ["replication_id"])
    op.create_table(
        "idempotency",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("payload_hash", sa.String(128), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("expires_at", ts(), nullable=False),
        sa.Column("in_progress_until", ts(), nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_idempotency"),
    )
    op.create_index("ix_idempotency_expires_at", "idempotency", ["expires_at"])


def downgrade() -> None:
    for table in ("idempotency", "audit", "outbox", "replicas", "replications"):
        op.drop_table(table)
