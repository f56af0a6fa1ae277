"""End to end with the real Definitions: train, evaluate, then prove reward lineage drives exactly the models."""

from __future__ import annotations

import dagster as dg
import duckdb

from pipelines.definitions import build_definitions
from pipelines.sensors import model_keys, stale_models_sensor

DATA_ASSETS = ["raw_ticks", "bars_1m", "features_1m", "intraday_dataset"]
MODEL_NAMES = {"intraday_reward_audit", "intraday_policy", "intraday_evaluation"}
RANGE = {
    "dagster/asset_partition_range_start": "2024-01-02",
    "dagster/asset_partition_range_end": "2024-01-10",
}


def _observe(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey("intraday_reward_config")]).success


def _materializations(instance: dg.DagsterInstance, name: str) -> int:
    return len(instance.fetch_materializations(dg.AssetKey(name), limit=1000).records)


def _requested(result) -> set[str]:
    names = [
        "intraday_reward_config",
        *DATA_ASSETS,
        *sorted(MODEL_NAMES),
    ]
    return {n for n in names if result.get_num_requested(dg.AssetKey(n))}


def _build(tf_env) -> tuple[dg.Definitions, dg.DagsterInstance]:
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    assert defs.resolve_job_def("market_data_job").execute_in_process(instance=instance, tags=RANGE).success
    _observe(defs, instance)
    return defs, instance


def test_reward_edit_retrains_exactly_the_models_and_nothing_else(tf_env) -> None:
    defs, instance = _build(tf_env)
    first = defs.resolve_job_def("intraday_training_job").execute_in_process(instance=instance)
    assert first.success
    summary = first.output_for_node("intraday_evaluation")
    assert summary["report_path"]
    con = duckdb.connect(str(tf_env.home / "warehouse.duckdb"), read_only=True)
    assert con.execute("select count(distinct run_id) from ml.evaluation_runs").fetchone()[0] == 1
    assert con.execute("select count(*) from ml.training_runs").fetchone()[0] == 2  # one row per slice
    con.close()

    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert _requested(tick) - {"intraday_reward_config"} == set()
    before = {n: _materializations(instance, n) for n in [*DATA_ASSETS, *MODEL_NAMES]}

    _observe(defs, instance)  # same file, same hash: nothing is stale
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert _requested(tick) - {"intraday_reward_config"} == set()

    reward = tf_env.configs / "rewards" / "intraday.yaml"
    tf_env.edit_yaml(reward, lambda r: r["components"]["drawdown"].update(weight=0.2))
    _observe(defs, instance)
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert _requested(tick) == MODEL_NAMES

    job = defs.resolve_implicit_global_asset_job_def()
    rerun = job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey(n) for n in MODEL_NAMES])
    assert rerun.success
    after = {n: _materializations(instance, n) for n in [*DATA_ASSETS, *MODEL_NAMES]}
    assert {n: after[n] - before[n] for n in after} == {
        **dict.fromkeys(DATA_ASSETS, 0),
        **dict.fromkeys(MODEL_NAMES, 1),
    }
    con = duckdb.connect(str(tf_env.home / "warehouse.duckdb"), read_only=True)
    assert con.execute("select count(distinct run_id) from ml.evaluation_runs").fetchone()[0] == 2
    assert con.execute("select count(distinct run_id) from ml.training_runs").fetchone()[0] == 2
    con.close()

    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert _requested(tick) - {"intraday_reward_config"} == set()

    # A refresh of features (and the dataset built from them) alone does not retrain.
    assert (
        defs.resolve_job_def("market_data_job")
        .execute_in_process(instance=instance, partition_key="2024-01-08")
        .success
    )
    assert job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey("intraday_dataset")]).success
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert _requested(tick) - {"intraday_reward_config"} == set()


def test_seed_000_reward_is_stopped_by_the_blocking_audit_before_training(tf_env) -> None:
    tf_env.edit_yaml(
        tf_env.configs / "intraday.yaml", lambda f: f.update(reward="rewards/intraday_seed000_original.yaml")
    )
    defs, instance = _build(tf_env)
    result = defs.resolve_job_def("intraday_training_job").execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    audit = [e for e in result.get_asset_check_evaluations() if e.check_name == "reward_scale_sane"]
    assert len(audit) == 1 and not audit[0].passed
    assert _materializations(instance, "intraday_policy") == 0
    assert _materializations(instance, "intraday_evaluation") == 0


def test_a_reward_edit_during_training_is_not_lost(tf_env) -> None:
    """The run in progress read the old reward; the safety net waits for it, then retrains exactly the models."""
    defs, instance = _build(tf_env)
    assert defs.resolve_job_def("intraday_training_job").execute_in_process(instance=instance).success
    context = dg.build_sensor_context(
        instance=instance, definitions=defs, resources={"configs": defs.resources["configs"]}
    )
    assert list(stale_models_sensor(context) or []) == []  # trained with the current file: nothing to do

    running = instance.create_run_for_job(
        job_def=defs.resolve_job_def("intraday_training_job"),
        status=dg.DagsterRunStatus.STARTED,
        asset_selection=frozenset(model_keys("intraday")),
    )
    tf_env.edit_yaml(
        tf_env.configs / "rewards" / "intraday.yaml", lambda r: r["components"]["drawdown"].update(weight=0.3)
    )
    _observe(defs, instance)
    assert list(stale_models_sensor(context) or []) == []  # never races the running job

    instance.report_run_failed(running)
    requests = list(stale_models_sensor(context) or [])
    assert len(requests) == 1
    assert set(requests[0].asset_selection) == set(model_keys("intraday"))
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(instance=instance, asset_selection=requests[0].asset_selection).success
    assert list(stale_models_sensor(context) or []) == []
