"""The tradeflow code location: assets, checks, jobs, schedules, sensors and resources, from the family registry."""

import dagster as dg

from assets.family import model_assets, model_checks, validate_configs
from assets.funding_data import funding_opportunities, raw_funding
from assets.market_data import bars_1m, features_1m, options_chain_1m, raw_ticks_asset
from assets.resources import default_resources
from pipelines.executors import executor_from_env, fan_out_from_env
from pipelines.jobs import all_jobs
from pipelines.recovery import dead_runs_sensor
from pipelines.schedules import funding_data_nightly_schedule, market_data_nightly_schedule
from pipelines.sensors import automation_sensor, config_observation_sensor, stale_models_sensor


def build_definitions(**resource_overrides: object) -> dg.Definitions:
    """Definitions over every registered family, with default resources; tests override the home folder.

    Every config file is validated here, so a bad setting stops the code location from loading, naming its file.
    """
    resources = {**default_resources(), **resource_overrides}
    resources["market"].declare()  # the declared instruments, for every asset, check and sensor of this process
    configs = validate_configs(resources["configs"])
    return dg.Definitions(
        assets=[
            raw_ticks_asset(staged=resources["warehouse"].staging_store() is not None),
            bars_1m,
            features_1m,
            options_chain_1m,
            raw_funding,
            funding_opportunities,
            *model_assets(configs, fan_out=fan_out_from_env()),
        ],
        asset_checks=model_checks(),
        jobs=all_jobs(),
        schedules=[market_data_nightly_schedule(), funding_data_nightly_schedule()],
        sensors=[automation_sensor, config_observation_sensor, stale_models_sensor, dead_runs_sensor],
        resources=resources,
        executor=executor_from_env(),
    )


defs = build_definitions()
