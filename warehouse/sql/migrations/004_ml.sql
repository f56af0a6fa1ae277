-- ML layer: insert-only records of datasets, training and evaluation runs, keyed by run_id.
-- warehouse.runs refuses a run_id that already exists; rows are never updated or deleted.
-- *_json columns hold JSON text.
CREATE TABLE ml.datasets (
    run_id VARCHAR PRIMARY KEY,
    family VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    data_version VARCHAR NOT NULL,     -- content hash of the arrays
    start_date DATE,
    end_date DATE,
    symbols_json VARCHAR,              -- JSON list
    n_days INTEGER,
    n_rows BIGINT,
    feature_names_json VARCHAR,        -- JSON list
    slices_json VARCHAR,               -- JSON walk-forward slices
    path VARCHAR,                      -- where the arrays were written (relative to the home)
    config_json VARCHAR
);

CREATE TABLE ml.training_runs (
    run_id VARCHAR NOT NULL,
    slice VARCHAR NOT NULL,            -- walk-forward slice name
    family VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    checkpoint_id VARCHAR NOT NULL,    -- checkpoint directory name / id
    data_version VARCHAR,
    reward_name VARCHAR,
    reward_sha256 VARCHAR,
    code_version VARCHAR,
    timesteps BIGINT,
    wall_s DOUBLE,
    steps_per_s DOUBLE,
    stats_json VARCHAR,
    config_json VARCHAR,
    PRIMARY KEY (run_id, slice)
);

CREATE TABLE ml.evaluation_runs (
    run_id VARCHAR PRIMARY KEY,
    family VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    training_run_id VARCHAR,
    data_version VARCHAR,
    reward_name VARCHAR,
    reward_sha256 VARCHAR,
    code_version VARCHAR,
    report_path VARCHAR,
    summary_json VARCHAR,
    config_json VARCHAR
);

CREATE TABLE ml.evaluation_episodes (
    run_id VARCHAR NOT NULL,
    slice VARCHAR NOT NULL,
    checkpoint_id VARCHAR,             -- NULL for baselines
    policy VARCHAR NOT NULL,           -- 'agent' or a baseline name
    policy_kind VARCHAR NOT NULL,      -- 'agent' or 'baseline'
    symbol VARCHAR NOT NULL,
    session_date DATE NOT NULL,
    reward DOUBLE,
    net_pnl DOUBLE,
    gross_pnl DOUBLE,
    commission DOUBLE,
    spread_cost DOUBLE,
    n_trades INTEGER,
    wins INTEGER,
    n_steps INTEGER,
    done_reason VARCHAR,
    action_counts_json VARCHAR,        -- {"HOLD": n, "BUY": n, "SELL": n, "CLOSE": n}
    PRIMARY KEY (run_id, slice, policy, symbol, session_date)
);

CREATE TABLE ml.evaluation_metrics (
    run_id VARCHAR NOT NULL,
    slice VARCHAR NOT NULL,            -- a slice name, or 'all'
    policy VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    value DOUBLE,
    PRIMARY KEY (run_id, slice, policy, metric)
);
