"""Alembic migrations of the backend's database (run at start by dsmr_backend.storage.migrate)."""
