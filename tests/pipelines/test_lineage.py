"""End to end with the real Definitions: train, evaluate, then prove reward lineage drives exactly the models."""

from __future__ import annotations

import dagster as dg
import duckdb

from assets.family import SOURCE_SUFFIXES
from pipelines.definitions import build_definitions
from pipelines.sensors import config_observation_sensor, model_keys, stale_models_sensor

DATA_ASSETS = ["raw_ticks", "bars_1m", "features_1m", "intraday_dataset"]
MODEL_NAMES = {"intraday_reward_audit", "intraday_policy", "intraday_evaluation"}
RANGE = {
    "dagster/asset_partition_range_start": "2024-01-02",
    "dagster/asset_partition_range_end": "2024-01-10",
}


def _observe(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    job = defs.resolve_implicit_global_asset_job_def()
    sources = [dg.AssetKey(f"intraday_{suffix}") for suffix in SOURCE_SUFFIXES]
    assert job.execute_in_process(instance=instance, asset_selection=sources).success


def _materializations(instance: dg.DagsterInstance, name: str) -> int:
    return len(instance.fetch_materializations(dg.AssetKey(name), limit=1000).records)


def _requested(result) -> set[str]:
    names = [
        *(f"intraday_{suffix}" for suffix in SOURCE_SUFFIXES),
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


# ------------------------------------------------------------------------- config lineage, section by section
def _observe_changes(defs: dg.Definitions, instance: dg.DagsterInstance) -> set[str]:
    """Run config_observation_sensor once and record its observations as the daemon would; the keys it observed."""
    context = dg.build_sensor_context(
        instance=instance, definitions=defs, resources={"configs": defs.resources["configs"]}
    )
    result = config_observation_sensor(context)
    if isinstance(result, dg.SkipReason):
        return set()
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    return {e.asset_key.to_user_string() for e in result.asset_events}


def _trained(tf_env) -> tuple[dg.Definitions, dg.DagsterInstance, object]:
    defs, instance = _build(tf_env)
    first = _observe_changes(defs, instance)  # the job above observed the intraday sources already
    assert first == {f"{kind}_{suffix}" for kind in ("funding", "propfirm", "zerodte") for suffix in SOURCE_SUFFIXES}
    assert _observe_changes(defs, instance) == set()
    assert defs.resolve_job_def("intraday_training_job").execute_in_process(instance=instance).success
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert _requested(tick) == set()
    return defs, instance, tick


def _append_comment(path) -> None:
    path.write_text(path.read_text() + "\n# a note that changes no value\n")


def test_each_config_section_rebuilds_exactly_its_stages(tf_env) -> None:
    defs, instance, tick = _trained(tf_env)
    family_yaml = tf_env.configs / "intraday.yaml"
    job = defs.resolve_implicit_global_asset_job_def()
    model = MODEL_NAMES  # requested together, in dependency order

    edits = [
        ("comment only", lambda: _append_comment(family_yaml), set(), set()),
        ("reward comment", lambda: _append_comment(tf_env.configs / "rewards" / "intraday.yaml"), set(), set()),
        ("env", lambda: tf_env.edit_yaml(family_yaml, lambda f: f["env"].update(loss_cut=-90.0)), None, model),
        ("ppo", lambda: tf_env.edit_yaml(family_yaml, lambda f: f["ppo"].update(ent_coef=0.02)), None, model),
        (
            "walk_forward",
            lambda: tf_env.edit_yaml(family_yaml, lambda f: f["walk_forward"].update(train_days=4)),
            None,
            model,
        ),
        (
            "data range",
            lambda: tf_env.edit_yaml(family_yaml, lambda f: f["data"].update(end="2024-01-09")),
            {"intraday_data_config"},
            {"intraday_dataset", *MODEL_NAMES},
        ),
    ]
    for label, edit, observed, requested in edits:
        edit()
        seen = _observe_changes(defs, instance)
        if observed is not None:
            assert seen == observed, label
        if label in ("env", "ppo", "walk_forward"):
            assert seen == {"intraday_training_config"}, label
        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
        assert _requested(tick) == requested, label
        if requested:  # materialize what automation asked for; then nothing else is pending
            names = [*DATA_ASSETS, *MODEL_NAMES]
            before = {n: _materializations(instance, n) for n in names}
            selection = [dg.AssetKey(n) for n in sorted(requested)]
            assert job.execute_in_process(instance=instance, asset_selection=selection).success, label
            after = {n: _materializations(instance, n) for n in names}
            assert {n for n in names if after[n] > before[n]} == requested, label
            tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
            assert _requested(tick) == set(), label


def test_an_edit_after_the_audit_is_refused_by_training(tf_env) -> None:
    """Each stage checks the config version its upstream was built with; it never silently uses the newer file."""
    defs, instance, _ = _trained(tf_env)
    tf_env.edit_yaml(tf_env.configs / "intraday.yaml", lambda f: f["env"].update(loss_cut=-90.0))
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey("intraday_policy")], raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "changed after the reward audit was built" in failure.event_specific_data.error.to_string()
    result = job.execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey("intraday_evaluation")], raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "changed after the policy was built" in failure.event_specific_data.error.to_string()
