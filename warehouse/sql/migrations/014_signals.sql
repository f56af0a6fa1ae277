-- Shadow trading and promotion (rl/core/shadow.py, rl/core/promotion.py). No order is ever placed from these.
-- ml.signals: every decision the promoted policy would have taken on one data partition (an NYSE session, or a
-- UTC day for funding), with what it saw (action probabilities, mask) and what it would have earned (the
-- hypothetical fill at the next bar and the P&L). A partition played again by the same policy is replaced
-- (warehouse.signals.replace_signals), never appended; another policy's rows for the same day are kept.
CREATE TABLE ml.signals (
    family VARCHAR NOT NULL,
    partition_date DATE NOT NULL,      -- the Dagster partition the decisions belong to
    policy_run_id VARCHAR NOT NULL,    -- the promoted training run
    checkpoint VARCHAR NOT NULL,       -- its run key (slice, seed) whose checkpoint decided
    episode INTEGER NOT NULL,          -- the account (env index) in the shadow play
    symbol VARCHAR NOT NULL,           -- what the account trades (a symbol, or a trading config for funding)
    step INTEGER NOT NULL,             -- decision index within the account's episode
    bar_ts TIMESTAMP NOT NULL,         -- UTC start of the bar (hour for funding) at whose close it decided
    action INTEGER NOT NULL,
    action_name VARCHAR NOT NULL,
    probabilities DOUBLE[] NOT NULL,   -- the policy's masked action distribution (0 where masked)
    mask BOOLEAN[] NOT NULL,           -- the valid actions
    position_before DOUBLE NOT NULL,   -- units (shares, contracts; open positions for funding)
    position_after DOUBLE NOT NULL,
    fill_price DOUBLE,                 -- hypothetical fill of a trade at the next bar; NULL when none
    step_pnl DOUBLE NOT NULL,          -- net P&L of the step ($, costs included)
    net_pnl DOUBLE NOT NULL,           -- the account's net P&L after the step ($)
    created_at TIMESTAMP NOT NULL
);

-- Insert-only: each promotion gate decision, with its evidence; the latest row names the promoted policy.
CREATE TABLE ml.promotions (
    run_id VARCHAR PRIMARY KEY,        -- the decision's id
    family VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    candidate_run_id VARCHAR NOT NULL, -- the newly trained policy's run
    evaluation_run_id VARCHAR,         -- its held-out evaluation
    incumbent_run_id VARCHAR,          -- the policy promoted before (NULL: none; judged against not trading)
    promoted BOOLEAN NOT NULL,         -- the candidate replaced the incumbent
    promoted_run_id VARCHAR,           -- the promoted policy after this decision (NULL: none yet)
    policy_json VARCHAR,               -- the promoted policy: checkpoints, config, held-out figures
    evidence_json VARCHAR NOT NULL     -- the comparison: IQM difference, its interval, P(improvement)
);
