"""The state table's schema as SQLAlchemy Core metadata (the migrations create it; tests compare the two).

Why columns and not a JSON blob: the sweep filters on state and next_check_at, the API on image and region; each
is an indexed column. Only a replication's image_ids/destination_regions lists are JSON text (never
queried: the replicas carry each image and region as columns).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from .types import UTCDateTime

# Stable constraint names: Alembic migrations and all three backends agree on them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = 32  # "rep-" / "rpl-" / "msg-" + 12 chars, with room
REGION = 40
ACCOUNT = 20  # a uin
ROLE = 128  # a CAM role name
NAME = 200

replications = Table(
    "replications",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("source_region", String(REGION), nullable=False),
    Column("image_ids", Text, nullable=False),  # JSON list
    Column("destination_regions", Text, nullable=False),  # JSON list
    Column("name", String(NAME)),
    Column("dry_run", Boolean, nullable=False),
    Column("origin", String(16), nullable=False),
    Column("requested_by", String(NAME), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("rule", String(NAME)),  # the replication rule that asked for it (revision 0002)
    Column("hooks", Text),  # JSON list of hook specs run on each replica end (revision 0002)
    Column("accounts", Text),  # JSON list of destinations in other accounts (revision 0004)
    # JSON list: the destinations as asked when a keyword (all, all-mainland, ...) was resolved (revision 0003)
    Column("requested_destinations", Text),
    # newest-first keyset pagination walks (created_at, id)
    Index("ix_replications_created_at_id", "created_at", "id"),
)

replicas = Table(
    "replicas",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("replication_id", String(ID), ForeignKey("replications.id"), nullable=False),
    Column("source_region", String(REGION), nullable=False),
    Column("source_image_id", String(ID), nullable=False),
    Column("destination_region", String(REGION), nullable=False),
    Column("image_name", String(NAME), nullable=False),
    Column("state", String(16), nullable=False),
    Column("destination_image_id", String(ID)),
    Column("sync_percent", Integer),
    Column("error_code", String(NAME)),
    Column("error_message", Text),
    Column("attempts", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    Column("next_check_at", UTCDateTime, nullable=False),
    Column("deadline_at", UTCDateTime, nullable=False),
    # compare-and-set: every write is UPDATE ... WHERE id AND version AND state, and bumps version
    Column("version", Integer, nullable=False),
    # "<source_region>/<source_image_id>/<destination_region>" while active, NULL once terminal. UNIQUE: all three
    # engines allow many NULLs in a unique index, so at most ONE active replica per copy, enforced by the database
    # itself even when two create_replication calls race.
    Column("inflight_key", String(3 * REGION + ID), unique=True),
    # an encrypted copy (EncryptHook): same-region SyncImages with Encrypt and this KMS key (revision 0002)
    Column("kms_key_id", String(64)),
    # the replica whose copy an encrypted copy was made from (revision 0002)
    Column("parent_replica_id", String(ID)),
    # a copy in another account: its uin and the CAM role assumed there (revision 0004)
    Column("account", String(ACCOUNT)),
    Column("role", String(ROLE)),
    # the FAILED or TIMED_OUT replica this one is a new attempt of (revision 0003)
    Column("retry_of", String(ID)),
    # the sweep's looks at the copy (DescribeImages), and when the first was: its look budget (revision 0005)
    Column("looks", Integer, nullable=False, server_default=text("0")),
    Column("first_look_at", UTCDateTime),
    # how the copy fared against its look budget's slots, written at its end (revision 0007)
    Column("looks_over", Integer),
    # whether the copy's percent kept one pace across the sweep's looks (revision 0008)
    Column("pace_changed", Integer),
    Index("ix_replicas_replication_id", "replication_id"),
    Index("ix_replicas_state_next_check_at", "state", "next_check_at"),
    Index("ix_replicas_source_image_id", "source_image_id"),
    Index("ix_replicas_destination_region", "destination_region"),
    # the newest SUCCEEDED ends: what recent copies took places a new copy's first look (revision 0005)
    Index("ix_replicas_state_ended_at", "state", "ended_at"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("message_id", String(ID), primary_key=True),
    # UNIQUE: at most one completion message per replica, whatever retries or races happen
    Column("replica_id", String(ID), ForeignKey("replicas.id"), nullable=False, unique=True),
    Column("payload", Text, nullable=False),  # CompletionMessage JSON
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Index("ix_outbox_sent_at_created_at", "sent_at", "created_at"),
)

audit = Table(
    "audit",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    # no foreign key: a refused request (e.g. AlreadyInFlight) is audited against an id that may not be stored
    Column("replication_id", String(ID), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("event", String(64), nullable=False),
    Column("actor", String(NAME), nullable=False),
    Column("origin", String(NAME), nullable=False),
    Column("detail", Text, nullable=False),  # JSON object
    Index("ix_audit_replication_id", "replication_id"),
)

idempotency = Table(
    "idempotency",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("status", String(16), nullable=False),  # INPROGRESS | COMPLETED
    Column("payload_hash", String(128), nullable=False),
    Column("result", Text),  # JSON object once COMPLETED
    Column("expires_at", UTCDateTime, nullable=False),
    Column("in_progress_until", UTCDateTime),
    Index("ix_idempotency_expires_at", "expires_at"),
)

hook_runs = Table(
    "hook_runs",
    metadata,
    # one record per (replica, hook key): the hook's outcome, kept across redeliveries (revision 0002). No foreign
    # key: a completion message may name a replica this database never held (a replayed or foreign message).
    Column("replica_id", String(ID), primary_key=True),
    Column("hook_key", String(NAME), primary_key=True),
    Column("replication_id", String(ID), nullable=False),
    Column("hook_type", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # pending | done | failed | skipped
    Column("attempts", Integer, nullable=False),
    Column("error_code", String(NAME)),
    Column("error_message", Text),
    Column("result", Text),  # JSON object
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_hook_runs_replication_id", "replication_id"),
)

leases = Table(
    "leases",
    metadata,
    # one row per lease, e.g. "sweep": the sweepers' lease (revision 0006; written on first use). Who holds it until
    # when, on the real clock; NULL owner: free. A crashed holder's lease simply runs out at expires_at.
    Column("name", String(64), primary_key=True),
    Column("owner", String(64)),
    Column("expires_at", UTCDateTime),
)

#: child tables first: the order rows are deleted in
TABLES = (outbox, audit, hook_runs, replicas, replications, idempotency, leases)
