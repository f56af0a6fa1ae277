"""Funding market data through the real Dagster graph: UTC-day partitions, idempotent rewrites, checks, schedule.

Runs `funding_data_job` from the Definitions the UI loads, with the embedded source (or a local fake exchange
for ccxt), against a temporary tradeflow home.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from math import comb
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

import market.ccxt_source as ccxt_source
import warehouse.funding as wf
from assets.partitions import FUNDING_DAYS
from assets.resources import FundingMarketResource, funding_market_from_yaml
from assets.settings import REPO_ROOT, ensure_dagster_home
from market.funding import SyntheticFundingSource, funding_config_from_dict, funding_symbols
from pipelines.definitions import build_definitions
from pipelines.schedules import funding_data_nightly_schedule
from tests.fake_exchange import HOUR_MS, FakeExchange, FakeSymbol

ASSETS = ("raw_funding_rates", "raw_mark_prices", "funding_opportunities")
CHECKS = {"funding_quarantine", "funding_duplicates", "funding_gaps", "funding_bounds"}
DAYS = ("2024-03-01", "2024-03-02")
RANGE = {"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[1]}
DAY = DAYS[1]


def _stored(home: Path, day: str) -> dict[str, float]:
    """Rows per table for one UTC day, duplicate keys, and sums that change whenever the data does."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:

        def one(sql: str) -> float:
            return con.execute(sql, [day]).fetchone()[0]

        return {
            "rates": one("select count(*) from raw.funding_rates where day = ?"),
            "marks": one("select count(*) from raw.mark_prices where day = ?"),
            "opportunities": one("select count(*) from core.funding_opportunities where day = ?"),
            "quarantine": one(
                "select count(*) from raw.quarantine where session_date = ? "
                "and table_name in ('funding_rates', 'mark_prices')"
            ),
            "duplicates": one(
                "select count(*) from (select exchange, symbol, funding_time from raw.funding_rates where day = ? "
                "group by all having count(*) > 1)"
            )
            + one(
                "select count(*) from (select exchange, symbol, ts from raw.mark_prices where day = ? "
                "group by all having count(*) > 1)"
            )
            + one(
                "select count(*) from (select ts, symbol, long_exchange, short_exchange "
                "from core.funding_opportunities where day = ? group by all having count(*) > 1)"
            ),
            "rate_sum": one("select coalesce(sum(rate), 0) from raw.funding_rates where day = ?"),
            "mark_sum": one("select coalesce(sum(mark), 0) from raw.mark_prices where day = ?"),
        }
    finally:
        con.close()


def _materializations(instance: dg.DagsterInstance, key: str) -> list[str]:
    records = instance.fetch_materializations(dg.AssetKey(key), limit=100).records
    return sorted(r.partition_key for r in records)


def _latest_metadata(instance: dg.DagsterInstance, key: str, partition: str | None = None) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[partition] if partition else None), limit=1
    ).records
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def _run(defs: dg.Definitions, instance: dg.DagsterInstance, **kwargs) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("funding_data_job").execute_in_process(
        instance=instance, raise_on_error=False, **kwargs
    )


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_two_utc_days_in_one_run_then_rewriting_one_replaces_it(tf_env) -> None:
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    result = _run(defs, instance, tags=RANGE)
    assert result.success
    checks = _checks(result)
    assert set(checks) == CHECKS
    assert all(e.passed for e in checks.values()), [(e.check_name, e.metadata) for e in checks.values()]
    for key in ASSETS:
        assert _materializations(instance, key) == list(DAYS)

    source = funding_market_from_yaml(tf_env.configs / "market.yaml").build()
    cfg = source.cfg
    pairs = len(funding_symbols(cfg)) * comb(len(cfg.exchanges), 2)
    snapshots = 24 * 60 // cfg.mark_every_minutes
    tapes = {day: source.fetch_day(date.fromisoformat(day)) for day in DAYS}
    first = {day: _stored(tf_env.home, day) for day in DAYS}
    for day in DAYS:
        assert first[day]["rates"] == tapes[day].funding_rates.height > 0
        assert first[day]["marks"] == tapes[day].mark_prices.height > 0
        assert first[day]["opportunities"] == snapshots * pairs  # every pair at every snapshot, once
        assert first[day]["quarantine"] == 0 and first[day]["duplicates"] == 0
    rates_meta = _latest_metadata(instance, "raw_funding_rates")
    assert rates_meta["source"] == "embedded" and rates_meta["run_days"] == 2
    assert rates_meta["run_rows"] == sum(t.funding_rates.height for t in tapes.values())
    for day in DAYS:  # each partition's own rows, not the run's total
        assert _latest_metadata(instance, "raw_funding_rates", day)["rows"] == tapes[day].funding_rates.height
        assert _latest_metadata(instance, "raw_mark_prices", day)["rows"] == tapes[day].mark_prices.height
    opp_meta = _latest_metadata(instance, "funding_opportunities")
    assert (opp_meta["run_days"], opp_meta["run_rows"], opp_meta["run_pairs"]) == (2, 2 * snapshots * pairs, pairs)
    assert opp_meta["run_symbols"] == len(funding_symbols(cfg))
    assert opp_meta["run_max_apr"] >= opp_meta["run_median_apr"] >= 0

    rewrite = _run(defs, instance, partition_key=DAY)
    assert rewrite.success and all(e.passed for e in rewrite.get_asset_check_evaluations())
    assert {day: _stored(tf_env.home, day) for day in DAYS} == first
    assert _materializations(instance, "raw_mark_prices") == [DAYS[0], DAY, DAY]


def test_funding_days_are_every_complete_utc_day_and_opportunities_read_the_day_before(tf_env) -> None:
    keys = FUNDING_DAYS.get_partition_keys(current_time=datetime(2024, 1, 6, 23, 59, tzinfo=UTC))
    assert keys == [f"2024-01-0{d}" for d in range(1, 6)]  # weekends included; Jan 6 is not complete yet
    graph = build_definitions().resolve_asset_graph()
    mapping = graph.get_partition_mapping(dg.AssetKey("funding_opportunities"), dg.AssetKey("raw_funding_rates"))

    def upstream(key: str) -> tuple[list[str], list[str]]:
        subset = FUNDING_DAYS.subset_with_partition_keys([key])
        mapped = mapping.get_upstream_mapped_partitions_result_for_partitions(subset, FUNDING_DAYS, FUNDING_DAYS)
        return sorted(mapped.partitions_subset.get_partition_keys()), mapped.required_but_nonexistent_partition_keys

    assert upstream("2024-03-01") == (["2024-02-29", "2024-03-01"], [])  # each leg's rate from the day before
    assert upstream("2024-01-01") == (["2024-01-01"], [])  # no 2023-12-31 partition, and none is required
    # The first partition has no day before it; it still materializes.
    assert _run(build_definitions(), dg.DagsterInstance.ephemeral(), partition_key="2024-01-01").success
    assert _stored(tf_env.home, "2024-01-01")["opportunities"] > 0


class _PlantedSource(SyntheticFundingSource):
    """The embedded market with a NaN rate (a copy of row 0) and a duplicate of row 1 appended to every day."""

    def fetch_day(self, day: date):
        tape = super().fetch_day(day)
        rates = tape.funding_rates
        nan = rates.head(1).with_columns(pl.lit(float("nan")).alias("rate"))
        return type(tape)(funding_rates=pl.concat([rates, nan, rates.slice(1, 1)]), mark_prices=tape.mark_prices)


class _Planted(FundingMarketResource):
    def build(self) -> _PlantedSource:
        return _PlantedSource(funding_config_from_dict(dict(self.embedded)))


def test_bad_rows_are_quarantined_with_a_reason_and_the_check_reports_them(tf_env) -> None:
    instance = dg.DagsterInstance.ephemeral()
    embedded = funding_market_from_yaml(tf_env.configs / "market.yaml").embedded
    result = _run(build_definitions(funding_market=_Planted(embedded=embedded)), instance, partition_key=DAY)
    assert result.success  # the quarantine check warns, it does not block
    checks = _checks(result)
    quarantine = checks.pop("funding_quarantine")
    assert not quarantine.passed and quarantine.severity == dg.AssetCheckSeverity.WARN
    assert quarantine.metadata["quarantined"].value == 2
    assert quarantine.metadata["reasons"].value == {"duplicate": 1, "nan_rate": 1}
    assert all(e.passed for e in checks.values())  # the bad rows never reached raw.funding_rates

    tape = _PlantedSource(funding_config_from_dict(embedded)).fetch_day(date.fromisoformat(DAY))
    clean_rows = tape.funding_rates.height - 2
    stored = _stored(tf_env.home, DAY)
    assert (stored["rates"], stored["quarantine"], stored["duplicates"]) == (clean_rows, 2, 0)
    con = duckdb.connect(str(tf_env.home / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "select table_name, reason, source, payload from raw.quarantine where session_date = ? order by reason",
            [DAY],
        ).fetchall()
    finally:
        con.close()
    assert [r[:2] for r in rows] == [("funding_rates", "duplicate"), ("funding_rates", "nan_rate")]
    assert {r[2] for r in rows} == {"synthetic_funding(seed=7)"}
    planted = tape.funding_rates.row(0, named=True)
    payload = json.loads(rows[1][3])
    assert (payload["exchange"], payload["symbol"]) == (planted["exchange"], planted["symbol"])

    clean = _run(build_definitions(), instance, partition_key=DAY)  # a clean rewrite clears the day's quarantine
    assert clean.success and _checks(clean)["funding_quarantine"].passed
    assert _stored(tf_env.home, DAY)["quarantine"] == 0


class _Unreachable(FundingMarketResource):
    def build(self):
        class Source:
            name = "unreachable"

            def fetch_day(self, day: date):
                raise ConnectionError("exchange unreachable")

        return Source()


def _null_mark(validate):
    """A validation regression: one mark loses its price, which the raw.mark_prices INSERT refuses (NOT NULL)."""

    def broken(frame: pl.DataFrame, day: date):
        clean, bad = validate(frame, day)
        return clean.with_columns(
            pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise(pl.col("mark")).alias("mark")
        ), bad

    return broken


@pytest.mark.parametrize("failure", ["fetch", "insert"])
def test_a_failing_fetch_or_insert_leaves_the_stored_day_untouched(tf_env, monkeypatch, failure: str) -> None:
    instance = dg.DagsterInstance.ephemeral()
    assert _run(build_definitions(), instance, partition_key=DAY).success
    before = _stored(tf_env.home, DAY)
    if failure == "fetch":
        resource = _Unreachable()
    else:  # other data (another seed), and the write fails after rates were already replaced in the transaction
        monkeypatch.setattr(wf, "validate_mark_prices", _null_mark(wf.validate_mark_prices))
        resource = FundingMarketResource(embedded={"seed": 8})
    result = _run(build_definitions(funding_market=resource), instance, partition_key=DAY)
    assert not result.success
    assert _stored(tf_env.home, DAY) == before
    for key in ASSETS:
        assert _materializations(instance, key) == [DAY]  # the failed run recorded nothing


def test_a_duplicate_that_slips_past_validation_fails_the_blocking_check_and_stops_opportunities(
    tf_env, monkeypatch
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    assert _run(build_definitions(), instance, partition_key=DAY).success
    validate = wf.validate_funding_rates

    def leaky(frame: pl.DataFrame, day: date):
        clean, bad = validate(frame, day)
        return pl.concat([clean, clean.head(1)]), bad

    monkeypatch.setattr(wf, "validate_funding_rates", leaky)
    result = _run(build_definitions(), instance, partition_key=DAY)
    assert not result.success
    checks = _checks(result)
    assert not checks["funding_duplicates"].passed
    assert checks["funding_duplicates"].severity == dg.AssetCheckSeverity.ERROR
    assert checks["funding_duplicates"].metadata["duplicate_funding_times"].value == 1
    assert checks["funding_bounds"].passed
    assert _materializations(instance, "funding_opportunities") == [DAY]  # never ran the second time


@pytest.mark.parametrize(
    ("tick", "expected"),
    [
        ("2024-03-01T00:30:00+00:00", "2024-02-29"),  # leap day
        ("2025-01-01T00:30:00+00:00", "2024-12-31"),  # year end
        ("2024-03-02T00:30:00+00:00", "2024-03-01"),  # a Saturday: crypto trades every day
        ("2024-02-29T19:30:00-05:00", "2024-02-29"),  # the same instant as 00:30 UTC on March 1st
    ],
)
def test_the_nightly_schedule_asks_for_the_utc_day_that_just_ended(tick: str, expected: str) -> None:
    schedule = funding_data_nightly_schedule()
    assert schedule.cron_schedule == "30 0 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.job_name == "funding_data_job"
    when = datetime.fromisoformat(tick)
    request = schedule(dg.build_schedule_context(scheduled_execution_time=when))
    assert isinstance(request, dg.RunRequest) and request.partition_key == expected
    assert FUNDING_DAYS.get_partition_keys(current_time=when)[-1] == expected  # the newest complete partition


def test_the_resource_refuses_a_bad_source_or_setting_before_anything_is_written(tf_env) -> None:
    resource = funding_market_from_yaml(tf_env.configs / "market.yaml")
    assert resource.source == "embedded" and resource.build().cfg.seed == 7
    with pytest.raises(ValueError, match="unknown funding source 'kraken'; available: embedded, ccxt"):
        FundingMarketResource(source="kraken").build()
    with pytest.raises(ValueError, match="unknown keys.*api_key"):
        FundingMarketResource(embedded={"api_key": "x"}).build()
    with pytest.raises(ValueError, match="exchanges must not be empty"):
        FundingMarketResource(source="ccxt", exchanges=[]).build()
    kraken = build_definitions(funding_market=FundingMarketResource(source="kraken"))
    result = _run(kraken, dg.DagsterInstance.ephemeral(), partition_key=DAY)
    assert not result.success
    assert not (tf_env.home / "warehouse.duckdb").exists()  # refused before the warehouse was even opened

    market = tf_env.configs / "market.yaml"
    tf_env.edit_yaml(market, lambda m: m["funding"]["ccxt"].update(api_key="x"))
    with pytest.raises(ValueError, match=r"funding\.ccxt: unknown keys \['api_key'\]"):
        funding_market_from_yaml(market)
    tf_env.edit_yaml(market, lambda m: m["funding"].update(ccxt={"exchanges": "binance"}))
    with pytest.raises(ValueError, match="must be a non-empty list"):
        funding_market_from_yaml(market)


DAY0 = (date.fromisoformat(DAY) - date(1970, 1, 1)).days * 24 * HOUR_MS
KEY, SECRET = "k3y-must-NOT-leak-0001", "s3cret-must-NOT-leak-0002"


def _fake_symbols() -> dict[str, FakeSymbol]:
    """BTC settles every 8 h, ETH every hour, from a day before the partition to a day after it."""
    btc = [(DAY0 + h * HOUR_MS, 1e-4 + h * 1e-6) for h in range(-24, 48, 8)]
    eth = [(DAY0 + h * HOUR_MS, 5e-5 * ((h % 7) - 3)) for h in range(-24, 48)]
    return {
        "BTCUSDT": FakeSymbol("BTCUSDT", "BTC", btc, mark_start=60_000.0, mark_origin_ms=DAY0, bid=59_990, ask=60_010),
        "ETHUSDT": FakeSymbol("ETHUSDT", "ETH", eth, mark_start=3_000.0, mark_origin_ms=DAY0, bid=2_999, ask=3_001),
    }


def test_ccxt_through_the_graph_uses_the_env_key_and_never_shows_it(tf_env, monkeypatch) -> None:
    pytest.importorskip("ccxt")
    monkeypatch.setenv("TRADEFLOW_BINANCE_API_KEY", KEY)
    monkeypatch.setenv("TRADEFLOW_BINANCE_SECRET", SECRET)
    real_client, clients = ccxt_source._default_client, []
    resource = FundingMarketResource(source="ccxt", exchanges=["binance"], symbols=["BTCUSDT", "ETHUSDT"])
    instance = dg.DagsterInstance.ephemeral()
    with FakeExchange(_fake_symbols()) as fake:

        def pointed(exchange_id: str):
            client = real_client(exchange_id)  # the production client, keys read from the environment
            client.enableRateLimit = False
            clients.append(client)
            return fake.point(client)

        monkeypatch.setattr(ccxt_source, "_default_client", pointed)
        result = _run(build_definitions(funding_market=resource), instance, partition_key=DAY)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    assert [c.apiKey for c in clients] == [KEY]  # the key was really in play
    stored = _stored(tf_env.home, DAY)
    assert stored["rates"] == 3 + 24 and stored["marks"] == 2 * 96 and stored["quarantine"] == 0
    assert _latest_metadata(instance, "raw_funding_rates")["source_name"] == "ccxt_funding(binance)"

    shown = [repr(resource), str(resource.model_dump()), repr(resource.build())]
    shown.append(str(instance.get_run_by_id(result.run_id).run_config))
    shown += [str(entry) for entry in instance.all_logs(result.run_id)]
    shown += [str(_latest_metadata(instance, key)) for key in ASSETS]
    shown += [str(e.metadata) for e in result.get_asset_check_evaluations()]
    assert len(shown) > 10
    leaks = [text[:200] for text in shown if KEY in text or SECRET in text]
    assert not leaks


def test_the_documented_cli_backfill_of_a_day_range_is_one_run(tf_env) -> None:
    dagster = str(Path(sys.executable).with_name("dagster"))
    env = {**os.environ, "DAGSTER_HOME": str(ensure_dagster_home(tf_env.home)), "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run([dagster, "instance", "migrate"], env=env, cwd=REPO_ROOT, check=True, capture_output=True)
    select = ",".join(ASSETS)
    cmd = [dagster, "asset", "materialize", "-m", "pipelines.definitions", "--select", select, "--partition-range"]
    proc = subprocess.run([*cmd, f"{DAYS[0]}...{DAYS[1]}"], env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    assert len(instance.get_runs()) == 1
    for key in ASSETS:
        assert _materializations(instance, key) == list(DAYS)
    assert all(_stored(tf_env.home, day)["opportunities"] > 0 for day in DAYS)
    assert _stored(tf_env.home, "2024-03-03")["rates"] == 0
