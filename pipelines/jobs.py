"""Jobs: the partitioned market-data refresh, and the model side of each agent family."""

import dagster as dg

market_data_selection = dg.AssetSelection.assets("raw_ticks", "bars_1m", "features_1m")
intraday_model_selection = dg.AssetSelection.assets(
    "intraday_dataset", "intraday_reward_audit", "intraday_policy", "intraday_evaluation"
)

market_data_job = dg.define_asset_job(
    "market_data_job",
    selection=market_data_selection,
    description="Ingest ticks, build 1-minute bars and features for the selected sessions.",
)
intraday_training_job = dg.define_asset_job(
    "intraday_training_job",
    selection=intraday_model_selection,
    description="Build the intraday dataset, audit the reward, train the policy and evaluate it walk-forward.",
)
