"""Market-data assets: raw ticks -> 1-minute bars -> features and same-day option chains, one partition per trading
day of the symbols' exchanges (each symbol on its own calendar's minutes)."""

from typing import TYPE_CHECKING

import dagster as dg

from assets.common import WAREHOUSE_POOL, check_result, partition_metadata
from assets.partitions import SESSIONS, partition_dates
from assets.resources import MarketDataResource, WarehouseResource
from warehouse import checks
from warehouse.bars import build_bars
from warehouse.features import FEATURES, WARMUP_MINUTES, build_features
from warehouse.options import build_chain, fetch_vendor_chain
from warehouse.staging import ingest_or_stage, load_staged

if TYPE_CHECKING:  # no module-level DuckDB here: dagster keeps asset modules' namespaces past exit (test_exit_noise)
    import duckdb

GROUP = "market_data"
# One partition per NYSE session; a range backfill is one run, and every step holds the DuckDB writer slot.
PARTITIONED = {
    "partitions_def": SESSIONS,
    "backfill_policy": dg.BackfillPolicy.single_run(),
    "pool": WAREHOUSE_POOL,
    "group_name": GROUP,
}


RAW_CHECKS = [
    dg.AssetCheckSpec(
        "quarantine_report",
        asset="raw_ticks",
        blocking=True,
        description="Counts quarantined rows by reason, table and symbol; blocks bars when a partition sets "
        "aside more than checks.max_quarantine_share of its rows.",
    ),
    dg.AssetCheckSpec(
        "session_coverage",
        asset="raw_ticks",
        description="Warns on any (symbol, session) without stored ticks, with a vendor gap over kept ticks, or "
        "partial: trades in too few minutes, or ticks ending early.",
    ),
]


def raw_ticks_asset(staged: bool = False) -> dg.AssetsDefinition:
    """The raw_ticks asset. `staged` (market.yaml `staging`) drops the DuckDB writer pool and runs one partition
    per backfill run, so a backfill's ingests run at once, each staging its partition for bars_1m to load."""
    settings = dict(PARTITIONED)
    if staged:
        settings.update(pool=None, backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=1))

    @dg.asset(
        **settings, name="raw_ticks", kinds={"duckdb", "parquet"} if staged else {"duckdb"}, check_specs=RAW_CHECKS
    )
    def raw_ticks(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, market: MarketDataResource
    ) -> dg.MaterializeResult:
        """Raw trades, quotes and vendor minute bars per session from the configured source (embedded, polygon, ibkr
        or file); bad rows are quarantined with a reason, and sessions a source had nothing for are reported as gaps."""
        dates = partition_dates(context.partition_keys)
        with market.open() as source:
            report = source.report if callable(getattr(source, "report", None)) else None
            stats, committed_as, (quarantined, coverage) = ingest_or_stage(
                source, market.symbols, dates, warehouse.staging_store(), warehouse.connect,
                lambda con: _raw_checks(con, dates, market), extended_hours=market.extended_hours,
            )  # fmt: skip
            report = report(dates) if report else None
        partition_metadata(
            context,
            {
                s.session_date.isoformat(): {
                    "source": market.source,
                    "ticks": s.ticks,
                    "quotes": s.quotes,
                    "vendor_bars": s.bars,
                    "quarantined": s.quarantined,
                    "quarantine_reasons": s.reasons,
                    "extended_hours_dropped": s.extended_dropped,
                    "gaps": s.gaps,
                    "closed": list(s.closed),
                    **({"staged_commit": commit_id} if commit_id else {}),
                }
                for s, commit_id in zip(stats, committed_as, strict=True)
            },
        )
        return dg.MaterializeResult(
            metadata={
                **({"run_import_report": dg.MetadataValue.md(report)} if report else {}),
                "run_sessions": len(dates),
                "run_ticks": sum(s.ticks for s in stats),
            },
            check_results=[
                check_result("quarantine_report", quarantined, dg.AssetCheckSeverity.ERROR),
                check_result("session_coverage", coverage, dg.AssetCheckSeverity.WARN),
            ],
        )

    return raw_ticks


def _raw_checks(con: "duckdb.DuckDBPyConnection", dates: list, market: MarketDataResource) -> tuple[dict, dict]:
    thresholds = market.thresholds()
    return checks.quarantine_counts(con, dates, thresholds), checks.session_coverage(
        con, dates, market.symbols, thresholds
    )


raw_ticks = raw_ticks_asset()


@dg.asset(
    **PARTITIONED,
    kinds={"duckdb"},
    deps=[raw_ticks],
    check_specs=[
        dg.AssetCheckSpec(
            "bar_integrity",
            asset="bars_1m",
            blocking=True,
            description="Blocks features on any inconsistent OHLC/VWAP, duplicate or negative-volume bar, a "
            "session not covering exactly its calendar's minutes, or one more forward-filled than allowed.",
        ),
        dg.AssetCheckSpec(
            "quote_coverage",
            asset="bars_1m",
            description="Warns on tradable sessions without any quote, whose spread comes from the instrument's "
            "spread model instead.",
        ),
        dg.AssetCheckSpec(
            "extreme_bar_returns",
            asset="bars_1m",
            description="Warns on one-minute moves beyond checks.max_bar_return_pct, listing them for review.",
        ),
        dg.AssetCheckSpec(
            "vendor_bar_agreement",
            asset="bars_1m",
            description="Warns when over 1% of the vendor's minute bars fall where we hold no trade, or their close "
            "differs from ours by more than 0.1%.",
        ),
    ],
)
def bars_1m(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, market: MarketDataResource
) -> dg.MaterializeResult:
    """Session-aware 1-minute OHLCV bars with VWAP, trade count, signed volume and mean spread, built in DuckDB SQL
    on each symbol's own calendar minutes; with staging on, it first loads the staged raw partitions."""
    dates = partition_dates(context.partition_keys)
    store = warehouse.staging_store()
    with warehouse.connect() as con:
        loaded = load_staged(con, store, dates) if store is not None else None
        stats = [build_bars(con, d) for d in dates]
        integrity = checks.bar_integrity(con, dates, market.thresholds())
        agreement = checks.vendor_bar_agreement(con, dates)
        quotes = checks.quote_coverage(con, dates)
        moves = checks.extreme_bar_returns(con, dates, market.thresholds())
    partition_metadata(
        context,
        {
            d.isoformat(): {
                "bars": s.bars,
                "filled": s.filled,
                "ticks": s.ticks,
                "spread_modelled": [m["symbol"] for m in quotes["modelled"] if m["session_date"] == d.isoformat()],
            }
            for d, s in zip(dates, stats, strict=True)
        },
    )
    return dg.MaterializeResult(
        metadata={
            "run_sessions": len(dates),
            "run_bars": sum(s.bars for s in stats),
            **({"staged_commits_loaded": len(loaded.loaded), "staged_load_s": loaded.load_s} if loaded else {}),
        },
        check_results=[
            check_result("bar_integrity", integrity, dg.AssetCheckSeverity.ERROR),
            check_result("vendor_bar_agreement", agreement, dg.AssetCheckSeverity.WARN),
            check_result("quote_coverage", quotes, dg.AssetCheckSeverity.WARN),
            check_result("extreme_bar_returns", moves, dg.AssetCheckSeverity.WARN),
        ],
    )


@dg.asset(
    **PARTITIONED,
    kinds={"duckdb", "polars"},
    deps=[bars_1m],
    check_specs=[
        dg.AssetCheckSpec(
            "features_finite",
            asset="features_1m",
            blocking=True,
            description="Blocks datasets when any feature after the warm-up minutes is NULL, NaN or infinite, or a "
            "bar lacks its feature row.",
        ),
        dg.AssetCheckSpec(
            "features_truncation_invariant",
            asset="features_1m",
            blocking=True,
            description="Blocks datasets when features recomputed from bars cut at minute t differ from the stored "
            "values at or before t (look-ahead), or the stored ones are stale.",
        ),
    ],
)
def features_1m(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Per-minute microstructure, momentum and time-of-day features; each uses only bars up to its minute."""
    dates = partition_dates(context.partition_keys)
    with warehouse.connect() as con:
        rows = [build_features(con, d) for d in dates]
        finite = checks.features_finite(con, dates, WARMUP_MINUTES)
        invariant = checks.truncation_invariance(con, dates)
    partition_metadata(context, {d.isoformat(): {"rows": n} for d, n in zip(dates, rows, strict=True)})
    return dg.MaterializeResult(
        metadata={"run_sessions": len(dates), "run_rows": sum(rows), "features": dg.MetadataValue.json(FEATURES)},
        check_results=[
            check_result("features_finite", finite, dg.AssetCheckSeverity.ERROR),
            check_result("features_truncation_invariant", invariant, dg.AssetCheckSeverity.ERROR),
        ],
    )


@dg.asset(
    **PARTITIONED,
    kinds={"duckdb"},
    deps=[bars_1m],
    check_specs=[
        dg.AssetCheckSpec(
            "chain_quote_rules",
            asset="options_chain_1m",
            description="Warns when chain rows broke put-call parity beyond the spreads, quoted crossed or negative, "
            "were not monotone in strike, or had an implied volatility out of bounds (they are quarantined), or when "
            "a vendor had no same-day chain for an underlying (a gap: its stored rows are kept).",
        )
    ],
)
def options_chain_1m(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, market: MarketDataResource
) -> dg.MaterializeResult:
    """Same-day option chains of SPY, QQQ and SPX every minute (bid, ask, mid, implied volatility and greeks),
    priced from the underlyings' bars, or real quotes from Polygon or IBKR (market.yaml options.source) with the
    volatility solved from each mid; rows breaking a quote rule are quarantined with the reason."""
    dates = partition_dates(context.partition_keys)
    cfg = market.chain_config()
    with market.open_chains() as chains, warehouse.connect() as con:
        stats = [
            build_chain(con, d, market.symbols, cfg) if chains is None
            else fetch_vendor_chain(con, chains, d, market.symbols, cfg.rate)
            for d in dates
        ]  # fmt: skip
    partition_metadata(
        context,
        {s.session_date.isoformat(): {"rows": s.rows, "contracts": s.contracts, "quarantined": s.quarantined,
                                      "reasons": s.reasons, "unquoted": s.unquoted, "skipped": list(s.skipped),
                                      "gaps": s.gaps} for s in stats},
    )  # fmt: skip
    bad = {s.session_date.isoformat(): s.reasons for s in stats if s.quarantined}
    gaps = {s.session_date.isoformat(): s.gaps for s in stats if s.gaps}
    verdict = {"passed": not bad and not gaps, "quarantined": sum(s.quarantined for s in stats), "by_session": bad,
               "gaps": gaps}  # fmt: skip
    return dg.MaterializeResult(
        metadata={
            "source": market.chain_settings().source,
            "run_sessions": len(dates),
            "run_rows": sum(s.rows for s in stats),
        },
        check_results=[check_result("chain_quote_rules", verdict, dg.AssetCheckSeverity.WARN)],
    )
