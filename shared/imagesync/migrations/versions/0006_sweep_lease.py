"""One lease for the whole sweep: the leases table; replicas.lease_owner/lease_expires_at dropped.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

Written out by hand (see 0001). Sweepers used to lease each due replica (a write per copy per sweep before its
progress write); now one sweeper at a time holds the "sweep" row of `leases` (docs/state.md, "Leases"), written on
first use, so there is no data step. The per-replica lease columns go: the code at this revision never reads them.
A sweeper of the previous code still running during the upgrade fails on its next claim (the columns are gone);
nothing is written twice meanwhile, as every replica write is a compare-and-set on its version.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from imagesync.adapters.sql.types import timestamp_type

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("expires_at", timestamp_type(), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )
    with op.batch_alter_table("replicas") as batch:
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_owner")


def downgrade() -> None:
    with op.batch_alter_table("replicas") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", timestamp_type(), nullable=True))
    op.drop_table("leases")
