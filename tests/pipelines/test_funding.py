"""The funding family through the real Definitions: UTC-day data, then the shared model machinery.

The data assets alone are tested in test_pipeline_funding_data.py."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb

from assets.family import SOURCE_SUFFIXES
from pipelines.definitions import build_definitions

RANGE = {  # the family's 2024-03-01..08 plus the 2 look-back days of rates
    "dagster/asset_partition_range_start": "2024-02-28",
    "dagster/asset_partition_range_end": "2024-03-08",
}


def test_funding_family_trains_and_evaluates_through_the_shared_machinery(tf_env) -> None:
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    assert defs.resolve_job_def("funding_data_job").execute_in_process(instance=instance, tags=RANGE).success
    observe = defs.resolve_implicit_global_asset_job_def()
    sources = [dg.AssetKey(f"funding_{suffix}") for suffix in SOURCE_SUFFIXES]
    assert observe.execute_in_process(instance=instance, asset_selection=sources).success
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
