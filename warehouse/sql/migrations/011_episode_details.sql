-- A family whose episodes are richer than a day's P&L (a funded account's life: days survived, the closest it came
-- to its drawdown line, rule events, each day's P&L) keeps those per-episode facts beside the common columns.
ALTER TABLE ml.evaluation_episodes ADD COLUMN details_json VARCHAR;
