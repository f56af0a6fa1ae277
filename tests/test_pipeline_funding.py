"""The funding family through the real Definitions: UTC-day data partitions, then the shared model machinery."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from market.funding import SyntheticFundingSource
from pipelines.definitions import build_definitions
from pipelines.resources import FundingMarketResource, funding_market_from_yaml
from pipelines.schedules import funding_request

RANGE = {  # the family's 2024-03-01..08 plus the 2 look-back days of rates
    "dagster/asset_partition_range_start": "2024-02-28",
    "dagster/asset_partition_range_end": "2024-03-08",
}
CHECKS = {"funding_quarantine", "funding_duplicates", "funding_gaps", "funding_bounds"}


def _counts(home: Path, day: str) -> dict[str, int]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        tables = ("raw.funding_rates", "raw.mark_prices", "core.funding_opportunities")
        return {t: con.execute(f"select count(*) from {t} where day = ?", [day]).fetchone()[0] for t in tables}
    finally:
        con.close()


def test_a_utc_day_written_three_times_keeps_one_copy_and_passes_its_checks(tf_env) -> None:
    defs = build_definitions()
    job = defs.resolve_job_def("funding_data_job")
    instance = dg.DagsterInstance.ephemeral()
    seen = []
    for _ in range(3):
        result = job.execute_in_process(instance=instance, partition_key="2024-03-02")
        assert result.success
        evaluations = result.get_asset_check_evaluations()
        assert {e.check_name for e in evaluations} == CHECKS
        assert all(e.passed for e in evaluations), [(e.check_name, e.metadata) for e in evaluations]
        seen.append(_counts(tf_env.home, "2024-03-02"))
    assert seen[0] == seen[1] == seen[2]
    assert all(n > 0 for n in seen[0].values()), seen[0]


class _BadSource(SyntheticFundingSource):
    """The embedded market with a NaN rate and a duplicated row planted in every day."""

    def fetch_day(self, day: date):
        tape = super().fetch_day(day)
        rates = tape.funding_rates
        bad = rates.head(1).with_columns(pl.lit(float("nan")).alias("rate"))
        rates = pl.concat([rates, bad, rates.slice(1, 1)])
        return type(tape)(funding_rates=rates, mark_prices=tape.mark_prices)


class _BadFunding(FundingMarketResource):
    def build(self):
        return _BadSource()


class _Failing(FundingMarketResource):
    def build(self):
        class Source:
            name = "failing"

            def fetch_day(self, day: date):
                raise ConnectionError("exchange unreachable")

        return Source()


def test_bad_rows_are_quarantined_with_reasons_and_a_failed_fetch_keeps_the_day(tf_env) -> None:
    instance = dg.DagsterInstance.ephemeral()
    bad = build_definitions(funding_market=_BadFunding()).resolve_job_def("funding_data_job")
    result = bad.execute_in_process(instance=instance, partition_key="2024-03-02")
    assert result.success
    quarantine = next(e for e in result.get_asset_check_evaluations() if e.check_name == "funding_quarantine")
    assert not quarantine.passed
    assert quarantine.metadata["reasons"].value == {"duplicate": 1, "nan_rate": 1}
    stored = _counts(tf_env.home, "2024-03-02")

    failing = build_definitions(funding_market=_Failing()).resolve_job_def("funding_data_job")
    result = failing.execute_in_process(instance=instance, partition_key="2024-03-02", raise_on_error=False)
    assert not result.success
    assert _counts(tf_env.home, "2024-03-02") == stored


def test_funding_resource_sources_and_the_nightly_partition(tf_env) -> None:
    resource = funding_market_from_yaml(tf_env.configs / "market.yaml")
    assert resource.source == "embedded" and isinstance(resource.build(), SyntheticFundingSource)
    with pytest.raises(ValueError, match="unknown funding source 'kraken'"):
        FundingMarketResource(source="kraken").build()
    tf_env.edit_yaml(tf_env.configs / "market.yaml", lambda m: m["funding"].update(api_key="x"))
    with pytest.raises(ValueError, match="unknown keys"):
        funding_market_from_yaml(tf_env.configs / "market.yaml")
    request = funding_request(date(2024, 3, 1))
    assert request.partition_key == "2024-02-29"  # the UTC day that just ended, weekends and leap days included


def test_funding_family_trains_and_evaluates_through_the_shared_machinery(tf_env) -> None:
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    assert defs.resolve_job_def("funding_data_job").execute_in_process(instance=instance, tags=RANGE).success
    observe = defs.resolve_implicit_global_asset_job_def()
    assert observe.execute_in_process(instance=instance, asset_selection=[dg.AssetKey("funding_reward_config")]).success
    result = defs.resolve_job_def("funding_training_job").execute_in_process(instance=instance)
    assert result.success
    checks = {e.check_name for e in result.get_asset_check_evaluations()}
    assert {"reward_scale_sane", "reward_pnl_alignment", "action_collapse", "symbol_concentration"} <= checks
    summary = result.output_for_node("funding_evaluation")
    report = Path(summary["report_path"])
    assert report.is_file() and "never_trade" in report.read_text() and "greedy" in report.read_text()
    con = duckdb.connect(str(tf_env.home / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("select family, count(*) from ml.training_runs group by 1").fetchall() == [("funding", 2)]
        policies = {r[0] for r in con.execute("select distinct policy from ml.evaluation_episodes").fetchall()}
        assert policies == {"agent", "never_trade", "greedy", "random_valid"}
    finally:
        con.close()
    meta = instance.get_latest_materialization_event(dg.AssetKey("funding_policy")).asset_materialization.metadata
    assert len(meta["reward_sha256"].value) == 64 and meta["data_version"].value == summary_data_version(instance)


def summary_data_version(instance: dg.DagsterInstance) -> str:
    event = instance.get_latest_materialization_event(dg.AssetKey("funding_dataset"))
    return event.asset_materialization.metadata["data_version"].value
