"""Destinations in other accounts: replications.accounts, replicas.account/role.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

Written out by hand (see 0001). Every added column is nullable: existing rows stay valid, no data step.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("replications") as batch:
        batch.add_column(sa.Column("accounts", sa.Text(), nullable=True))
    with op.batch_alter_table("replicas") as batch:
        batch.add_column(sa.Column("account", sa.String(20), nullable=True))
        batch.add_column(sa.Column("role", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("replicas") as batch:
        batch.drop_column("role")
        batch.drop_column("account")
    with op.batch_alter_table("replications") as batch:
        batch.drop_column("accounts")
