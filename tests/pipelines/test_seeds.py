"""Several seeds: `seeds: [0, 1]` trains one checkpoint per seed and slice through the real asset graph, the
evaluation plays every one of them, and beating the baselines is judged on the IQM interval over all runs."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipelines.definitions import build_definitions
from rl.core.family import load_family
from rl.core.registry import registered
from tests.families import toy
from tests.pipelines.test_registry import RANGE, _write_toy_config


def test_seeds_train_one_policy_per_seed_and_slice_and_the_check_judges_the_interval(tf_env) -> None:
    _write_toy_config(tf_env.configs)
    tf_env.edit_yaml(tf_env.configs / "toy.yaml", lambda f: f.update(seeds=[0, 1]))
    with registered(toy.FAMILY):
        assert load_family(tf_env.configs / "toy.yaml").training_seeds() == (0, 1)
        defs = build_definitions()
        instance = dg.DagsterInstance.ephemeral()
        assert defs.resolve_job_def("market_data_job").execute_in_process(instance=instance, tags=RANGE).success
        result = defs.resolve_job_def("toy_training_job").execute_in_process(instance=instance)
        assert result.success
        artifact = result.output_for_node("toy_policy")
        summary = result.output_for_node("toy_evaluation")

    slices = sorted(artifact.slices)
    keys = [f"{s}/seed_{k}" for s in slices for k in (0, 1)]
    assert sorted(artifact.checkpoints) == keys
    seeds = {
        key: json.loads((Path(path) / "meta.json").read_text())["run_meta"]["seed"]
        for key, path in artifact.checkpoints.items()
    }
    assert seeds == {key: int(key[-1]) for key in keys}
    assert sorted(artifact.updates) == keys and all(artifact.updates.values())

    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    health = checks["value_loss_stable"].metadata["runs"].value
    assert sorted(health) == keys  # every seed's training is judged
    comparison = checks["beats_baselines"].metadata["comparison"].value
    assert comparison["runs_per_slice"] == dict.fromkeys(slices, 2)
    assert set(comparison["versus"]) == {"flat", "random_valid"}
    assert summary["agent/iqm_low"] <= summary["agent/iqm_day_pnl"] <= summary["agent/iqm_high"]
    report = Path(summary["report_path"]).read_text()
    assert "## Seeds and intervals" in report and "agent runs per slice: " in report

    con = duckdb.connect(str(tf_env.home / "warehouse.duckdb"), read_only=True)
    try:
        trained = con.execute("select slice from ml.training_runs order by 1").fetchall()
        played = con.execute(
            "select slice, checkpoint_id, count(*) from ml.evaluation_episodes where policy = 'agent' "
            "group by 1, 2 order by 1"
        ).fetchall()
        baselines = con.execute("select count(*) from ml.evaluation_episodes where policy = 'flat'").fetchone()[0]
    finally:
        con.close()
    assert [r[0] for r in trained] == keys
    assert [r[:2] for r in played] == [(k, k) for k in keys]
    assert len({r[2] for r in played}) == 1  # every seed plays the same number of episodes
    assert baselines == played[0][2] * len(slices)  # each baseline once per slice, not once per seed


def test_seeds_are_validated(tf_env) -> None:
    _write_toy_config(tf_env.configs)
    with registered(toy.FAMILY):
        for bad in ([0, 0], [-1], ["a"]):
            tf_env.edit_yaml(tf_env.configs / "toy.yaml", lambda f, bad=bad: f.update(seeds=bad))
            with pytest.raises(ValueError, match="seeds must be a list of distinct non-negative integers"):
                load_family(tf_env.configs / "toy.yaml")
