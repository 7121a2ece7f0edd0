"""SqlStateStore: every store of this package over one engine (the StateStore port: what the composition root,
the API's reads and the CLI hand around).

Each concern has its own module and class, usable alone on the same engine and schema:

============================  ====================  =====================================================
module                        class                 port (imagesync.ports)
============================  ====================  =====================================================
replicas.py, replica_queries  SqlReplicaStore       ReplicaStore: replications, replicas, compare-and-set
leases.py                     SqlLeaseStore         LeaseStore: the sweepers' lease, the due copies
outbox.py                     SqlOutboxStore        OutboxStore: completion messages to publish
idempotency.py                SqlIdempotencyStore   IdempotencyStore: claims and stored results per key
hook_runs.py                  SqlHookRunStore       HookRunStore: each hook's outcome per replica end
audit.py                      SqlAuditLog           AuditLog: who asked for what, each replica's end
due.py                        SqlDueChecks          DueChecks: the earliest due check (the sweep's timer)
============================  ====================  =====================================================

They share base.SqlStore (engine, clock, schema check) and engine.py's transaction helpers (run_tx, run_read).
"""

from __future__ import annotations

from .audit import SqlAuditLog
from .due import SqlDueChecks
from .hook_runs import SqlHookRunStore
from .idempotency import SqlIdempotencyStore
from .leases import SqlLeaseStore
from .outbox import SqlOutboxStore
from .replicas import SqlReplicaStore


class SqlStateStore(
    SqlReplicaStore, SqlLeaseStore, SqlOutboxStore, SqlIdempotencyStore, SqlHookRunStore, SqlAuditLog, SqlDueChecks
):
    """All the stores over one engine (constructor: base.SqlStore)."""
