-- Partitions staged by parallel workers (warehouse.staging) and loaded by the single writer: one row per commit,
-- written in the load's own transaction, so a commit is loaded exactly once.
CREATE TABLE raw.staged_loads (
    commit_id VARCHAR NOT NULL,    -- <staging clock ns>-<uuid hex>: the commit folder's name
    session_date DATE NOT NULL,
    source VARCHAR NOT NULL,
    symbols VARCHAR NOT NULL,      -- comma-separated, as staged
    row_counts VARCHAR NOT NULL,   -- JSON: table -> rows loaded
    staged_at TIMESTAMP NOT NULL,  -- UTC
    loaded_at TIMESTAMP NOT NULL   -- UTC
);
