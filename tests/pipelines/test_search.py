"""The search through the real asset graph: `<family>_hpo` writes a preset, and with `hpo.use` the policy trains
with it and records it, and depends on the search so that a new result retrains."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from pipelines.definitions import build_definitions
from rl.core.registry import registered
from tests.families import toy
from tests.pipelines.test_registry import RANGE, _write_toy_config


@pytest.mark.parametrize("fan_out", ["0", "1"])
def test_the_policy_trains_with_the_latest_searchs_preset(tf_env, monkeypatch, fan_out: str) -> None:
    """Also fanned out (TRADEFLOW_FAN_OUT=1): a step per trial on the one study, and a step per training run."""
    monkeypatch.setenv("TRADEFLOW_FAN_OUT", fan_out)
    _write_toy_config(tf_env.configs)
    space = {"learning_rate": {"low": 1e-4, "high": 1e-3, "log": True}}
    hpo = {"trials": 2, "steps_per_trial": 256, "evals_per_trial": 1, "validation_days": 1, "space": space, "use": True}
    tf_env.edit_yaml(tf_env.configs / "toy.yaml", lambda f: f.update(hpo=hpo))
    with registered(toy.FAMILY):
        defs = build_definitions()
        graph = defs.resolve_asset_graph()
        assert dg.AssetKey("toy_hpo") in graph.get(dg.AssetKey("toy_policy")).parent_keys
        instance = dg.DagsterInstance.ephemeral()
        assert defs.resolve_job_def("market_data_job").execute_in_process(instance=instance, tags=RANGE).success
        search = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=[dg.AssetKey(k) for k in ("toy_dataset", "toy_reward_audit", "toy_hpo")]
        )
        assert search.success
        result = search.output_for_node("toy_hpo")
        assert (tf_env.home / "optuna.db").is_file() and Path(result.preset_path).is_file()
        trained = defs.resolve_job_def("toy_training_job").execute_in_process(instance=instance)
        assert trained.success
        artifact = trained.output_for_node("toy_policy")
    steps = [e.step_key for r in (search, trained) for e in r.get_step_success_events()]
    trial_steps = [k for k in steps if k.startswith("toy_hpo.toy_search_trial[")]
    run_steps = [k for k in steps if k.startswith("toy_policy.toy_train_run[")]
    assert (len(trial_steps), len(run_steps)) == ((2, len(artifact.checkpoints)) if fan_out == "1" else (0, 0))
    assert len(result.trials) == 2 and {t["state"] for t in result.trials} <= {"COMPLETE", "PRUNED"}
    for path in artifact.checkpoints.values():
        meta = json.loads((Path(path) / "meta.json").read_text())
        assert meta["run_meta"]["hpo_preset"] == result.best_params
        assert meta["config"]["ppo"]["learning_rate"] == result.best_params["learning_rate"]
    assert artifact.config["hpo_preset"] == result.best_params


def test_one_health_check_is_judged_again_alone_after_a_threshold_edit(tf_env) -> None:
    """The checks are apart from the asset: an edited threshold is judged from the stored updates, no retraining."""
    _write_toy_config(tf_env.configs)
    with registered(toy.FAMILY):
        defs = build_definitions()
        instance = dg.DagsterInstance.ephemeral()
        assert defs.resolve_job_def("market_data_job").execute_in_process(instance=instance, tags=RANGE).success
        assert defs.resolve_job_def("toy_training_job").execute_in_process(instance=instance).success
        tf_env.edit_yaml(tf_env.configs / "toy.yaml", lambda f: f.update(health={"max_value_loss": 1e-9}))
        key = dg.AssetCheckKey(dg.AssetKey("toy_policy"), "value_loss_stable")
        job = dg.define_asset_job("recheck", selection=dg.AssetSelection.checks(key))
        again = dg.Definitions(
            assets=defs.assets, asset_checks=defs.asset_checks, jobs=[job], resources=defs.resources
        ).resolve_job_def("recheck")
        result = again.execute_in_process(instance=instance)
    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == "value_loss_stable" and not evaluation.passed
    assert "exceeds 1e-09" in str(evaluation.metadata["detail"].value)
    assert not result.get_asset_materialization_events()  # nothing was retrained
