"""Alembic migrations of the state table (script_location of imagesync.adapters.sql.migrate)."""
