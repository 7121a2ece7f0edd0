"""Adapters: Tencent Cloud (official SDK), the SQL state store, queues, webhooks."""
