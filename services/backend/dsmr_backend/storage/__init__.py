"""Storage: engine, table-driven schema, migrations, idempotent batched inserts (one module each)."""
