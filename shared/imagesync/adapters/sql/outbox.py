"""SqlOutboxStore: the OutboxStore port. The rows are written by the replica store, in the transaction that ends
a replica (one message per end: outbox.replica_id is UNIQUE); here they are read, marked sent, and looked up again
when their hooks never settled (the backstop, app.give_up)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.engine import Connection

from ...domain.models import CompletionMessage
from .base import SqlStore
from .rows import SETTLED_HOOK_STATES
from .schema import hook_runs, outbox, replicas, replications


class SqlOutboxStore(SqlStore):
    def pending_outbox(self, limit: int = 100) -> list[CompletionMessage]:
        """Messages with sent_at NULL, oldest first (created_at = the replica's ended_at, then message id).

        Several publishers may read the same messages: publishing is at least once, the consumer deduplicates by
        message_id (completion_hook's idempotency).
        """

        def read(conn: Connection) -> list[CompletionMessage]:
            rows = conn.execute(
                select(outbox.c.payload)
                .where(outbox.c.sent_at.is_(None))
                .order_by(outbox.c.created_at, outbox.c.message_id)
                .limit(limit)
            ).scalars()
            return [CompletionMessage.model_validate_json(p) for p in rows]

        return self._read(read)

    def mark_outbox_sent(self, message_ids: Sequence[str]) -> None:
        """Stamp sent_at on these messages (those already sent keep their first stamp)."""
        ids = list(message_ids)
        if not ids:
            return
        now = self.clock.now()

        def write(conn: Connection, _attempt: int) -> None:
            conn.execute(
                update(outbox).where(outbox.c.message_id.in_(ids), outbox.c.sent_at.is_(None)).values(sent_at=now)
            )

        self._tx(write)

    def undelivered_ends(
        self, *, sent_before: datetime, sent_after: datetime, hooks_everywhere: bool, limit: int = 100
    ) -> list[CompletionMessage]:
        """Sent completion messages whose end's hooks are not all settled (see the port): a range on the outbox's
        (sent_at, created_at) index, each row checked by EXISTS on hook_runs' primary key."""
        settled = SETTLED_HOOK_STATES
        mine = hook_runs.c.replica_id == outbox.c.replica_id
        open_record = exists().where(mine, hook_runs.c.status.not_in(settled))
        no_record = ~exists().where(mine)
        has_hooks = replications.c.hooks.is_not(None) if not hooks_everywhere else None
        unsettled = or_(open_record, and_(no_record, has_hooks) if has_hooks is not None else no_record)
        q = (
            select(outbox.c.payload)
            .select_from(
                outbox.join(replicas, replicas.c.id == outbox.c.replica_id).join(
                    replications, replications.c.id == replicas.c.replication_id
                )
            )
            .where(outbox.c.sent_at > sent_after, outbox.c.sent_at <= sent_before, unsettled)
            .order_by(outbox.c.sent_at, outbox.c.message_id)
            .limit(max(1, limit))
        )

        def read(conn: Connection) -> list[CompletionMessage]:
            return [CompletionMessage.model_validate_json(p) for p in conn.execute(q).scalars()]

        return self._read(read)
