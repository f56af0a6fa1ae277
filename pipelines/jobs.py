"""Jobs: the partitioned market-data refresh, and the model side of each agent family."""

import dagster as dg

market_data_selection = dg.AssetSelection.assets("raw_ticks", "bars_1m", "features_1m")
funding_data_selection = dg.AssetSelection.assets("raw_funding_rates", "raw_mark_prices", "funding_opportunities")


def model_selection(family: str) -> dg.AssetSelection:
    """A family's dataset, reward audit, policy and evaluation."""
    return dg.AssetSelection.assets(
        *(f"{family}_{stage}" for stage in ("dataset", "reward_audit", "policy", "evaluation"))
    )


intraday_model_selection = model_selection("intraday")

market_data_job = dg.define_asset_job(
    "market_data_job",
    selection=market_data_selection,
    description="Ingest ticks, build 1-minute bars and features for the selected sessions.",
)
funding_data_job = dg.define_asset_job(
    "funding_data_job",
    selection=funding_data_selection,
    description="Ingest funding rates and mark prices, then build the cross-exchange opportunities, per UTC day.",
)
funding_training_job = dg.define_asset_job(
    "funding_training_job",
    selection=model_selection("funding"),
    description="Build the funding dataset, audit the reward, train the policy and evaluate it walk-forward.",
)
intraday_training_job = dg.define_asset_job(
    "intraday_training_job",
    selection=intraday_model_selection,
    description="Build the intraday dataset, audit the reward, train the policy and evaluate it walk-forward.",
)
