"""Jobs: the partitioned data refreshes, the model side of each registered family, and the shadow signals."""

import dagster as dg

from assets.family import model_stage_keys
from rl.core.registry import get_family, kinds

market_data_selection = dg.AssetSelection.assets("raw_ticks", "bars_1m", "features_1m", "options_chain_1m")
funding_data_selection = dg.AssetSelection.assets("raw_funding_rates", "raw_mark_prices", "funding_opportunities")

market_data_job = dg.define_asset_job(
    "market_data_job",
    selection=market_data_selection,
    description="Ingest ticks, build 1-minute bars, features and same-day option chains for the selected sessions.",
)
funding_data_job = dg.define_asset_job(
    "funding_data_job",
    selection=funding_data_selection,
    description="Ingest funding rates and mark prices, then build the cross-exchange opportunities, per UTC day.",
)


def model_selection(kind: str) -> dg.AssetSelection:
    """A family's dataset, reward audit, gated curriculum stage (if any), policy and evaluation."""
    return dg.AssetSelection.assets(f"{kind}_dataset", *model_stage_keys(get_family(kind)))


def training_job(kind: str):
    """`<kind>_training_job`: the family's dataset, audit, training and evaluation."""
    return dg.define_asset_job(
        f"{kind}_training_job",
        selection=model_selection(kind),
        description=f"{get_family(kind).description} Build the dataset, audit the reward, train and evaluate.",
    )


def signals_jobs() -> list:
    """`<source>_signals_job` per data job (`market`, `funding`): the shadow signals of every family on its
    partitions, for a partition or a backfill."""
    jobs = []
    for data_job in ("market_data_job", "funding_data_job"):
        keys = [f"{kind}_signals" for kind in kinds() if get_family(kind).data_job == data_job]
        if keys:
            jobs.append(
                dg.define_asset_job(
                    data_job.replace("_data_job", "_signals_job"),
                    selection=dg.AssetSelection.assets(*keys),
                    description="Play the promoted policies over the selected partitions: shadow signals, no orders.",
                )
            )
    return jobs


def all_jobs() -> list:
    """The data jobs, one training job per registered family, and the shadow signals jobs."""
    return [market_data_job, funding_data_job, *(training_job(kind) for kind in kinds()), *signals_jobs()]
