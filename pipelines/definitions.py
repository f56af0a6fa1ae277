"""The tradeflow code location: assets, checks, jobs, schedules, sensors and resources."""

import dagster as dg

from assets.funding import funding_assets
from assets.funding_data import funding_opportunities, raw_funding
from assets.intraday import intraday_assets
from assets.market_data import bars_1m, features_1m, raw_ticks
from pipelines.jobs import funding_data_job, funding_training_job, intraday_training_job, market_data_job
from pipelines.resources import default_resources
from pipelines.schedules import funding_data_nightly_schedule, market_data_nightly_schedule
from pipelines.sensors import automation_sensor, stale_models_sensor


def build_definitions(**resource_overrides: object) -> dg.Definitions:
    """Definitions with default resources; tests override the home folder and the market density."""
    return dg.Definitions(
        assets=[raw_ticks, bars_1m, features_1m, *intraday_assets, raw_funding, funding_opportunities, *funding_assets],
        jobs=[market_data_job, intraday_training_job, funding_data_job, funding_training_job],
        schedules=[market_data_nightly_schedule, funding_data_nightly_schedule],
        sensors=[automation_sensor, stale_models_sensor],
        resources={**default_resources(), **resource_overrides},
    )


defs = build_definitions()
