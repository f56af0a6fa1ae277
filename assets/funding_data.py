"""Funding market data: raw funding rates and mark prices -> cross-exchange opportunities, one partition per UTC day."""

import dagster as dg

from assets.common import WAREHOUSE_POOL, check_result, partition_metadata
from assets.partitions import FUNDING_DAYS, partition_dates
from assets.resources import FundingMarketResource, WarehouseResource
from warehouse.funding import build_opportunities, funding_checks, ingest_funding_day, opportunities_summary

GROUP = "funding_data"
RATES, MARKS = "raw_funding_rates", "raw_mark_prices"
# A day's opportunities use each leg's latest rate, published up to a day before a snapshot: rates of D-1 and D.
# The first partition maps to itself alone (Dagster requires no partition before the start).
PREVIOUS_AND_SAME_DAY = dg.TimeWindowPartitionMapping(start_offset=-1)


def _partitioned_spec(key: str, description: str) -> dg.AssetSpec:
    return dg.AssetSpec(key, description=description, group_name=GROUP, kinds={"duckdb"}, partitions_def=FUNDING_DAYS)


@dg.multi_asset(
    specs=[
        _partitioned_spec(RATES, "Funding rates per exchange, symbol and funding time, with each row's interval."),
        _partitioned_spec(MARKS, "Mark price, bid, ask and 24h volume per exchange and symbol, every 15 minutes."),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "funding_quarantine",
            asset=RATES,
            description="Counts quarantined funding and mark rows by reason; warns when any were quarantined.",
        ),
        dg.AssetCheckSpec(
            "funding_duplicates",
            asset=RATES,
            blocking=True,
            description="Blocks opportunities when one (exchange, symbol) has two rates at the same funding time.",
        ),
        dg.AssetCheckSpec(
            "funding_gaps",
            asset=RATES,
            description="Warns when consecutive rates of an (exchange, symbol) are further apart than their own "
            "funding interval, or the source recorded a symbol without rows or without a ticker.",
        ),
        dg.AssetCheckSpec(
            "funding_bounds",
            asset=RATES,
            blocking=True,
            description="Blocks opportunities on a non-finite rate, |rate| above 3% per interval, or an interval "
            "other than 1, 2, 4 or 8 hours.",
        ),
    ],
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
)
def raw_funding(context: dg.AssetExecutionContext, warehouse: WarehouseResource, funding_market: FundingMarketResource):
    """Both raw tables of a UTC day in one transaction; bad rows are quarantined with a reason."""
    days = partition_dates(context.partition_keys)
    source = funding_market.build()
    with warehouse.connect() as con:
        stats = [ingest_funding_day(con, source, d) for d in days]
        checked = funding_checks(con, days)
    reasons: dict[str, int] = {}
    for s in stats:
        for reason, n in s.reasons.items():
            reasons[reason] = reasons.get(reason, 0) + n
    quarantined = sum(s.quarantined for s in stats)
    for key, rows in ((RATES, "funding_rates"), (MARKS, "mark_prices")):
        per_day = {
            d.isoformat(): {"rows": getattr(s, rows), "quarantined": s.quarantined, "gaps": s.gaps}
            for d, s in zip(days, stats, strict=True)
        }
        partition_metadata(context, per_day, asset_key=key)
    yield dg.MaterializeResult(
        asset_key=RATES,
        metadata={
            "source": funding_market.source,
            "source_name": source.name,
            "run_days": len(days),
            "run_rows": sum(s.funding_rates for s in stats),
        },
    )
    yield dg.MaterializeResult(
        asset_key=MARKS, metadata={"run_days": len(days), "run_rows": sum(s.mark_prices for s in stats)}
    )
    yield check_result(
        "funding_quarantine",
        {"passed": quarantined == 0, "quarantined": quarantined, "reasons": reasons},
        dg.AssetCheckSeverity.WARN,
        RATES,
    )
    examples = checked.get("examples", {})
    for name, keys, severity in (
        ("funding_duplicates", ("duplicate_funding_times",), dg.AssetCheckSeverity.ERROR),
        ("funding_gaps", ("interval_gaps", "recorded_gaps"), dg.AssetCheckSeverity.WARN),
        ("funding_bounds", ("out_of_bounds",), dg.AssetCheckSeverity.ERROR),
    ):
        verdict = {"passed": all(checked[k] == 0 for k in keys), **{k: checked[k] for k in keys}}
        verdict["examples"] = {k: examples.get(k, []) for k in keys} if len(keys) > 1 else examples.get(keys[0], [])
        yield check_result(name, verdict, severity, RATES)


@dg.asset(
    partitions_def=FUNDING_DAYS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
    group_name=GROUP,
    kinds={"duckdb"},
    deps=[dg.AssetDep(RATES, partition_mapping=PREVIOUS_AND_SAME_DAY), MARKS],
)
def funding_opportunities(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Long/short pairs of one symbol on two exchanges per snapshot, with APR from each leg's latest published rate."""
    days = partition_dates(context.partition_keys)
    with warehouse.connect() as con:
        for d in days:
            build_opportunities(con, d)
        summary = opportunities_summary(con, days)
    return dg.MaterializeResult(metadata={"run_days": len(days), **{f"run_{k}": v for k, v in summary.items()}})
