"""Training fanned out: each (slice, seed) run is a step of its own, and the artifact is the one a single step makes.

With TRADEFLOW_FAN_OUT=1 the policy asset is a graph: a plan step names the runs, one step trains each (dynamic
outputs, so any executor spreads them over processes or Celery workers), and a last step assembles the artifact.
Trained twice from the same dataset and seeds, once in one step and once fanned out, every checkpoint holds the
same weights and both trainings record every run. (On Celery workers: tests/pipelines/test_scale_out.py.)
"""

from __future__ import annotations

import dagster as dg
import duckdb
import torch
from sb3_contrib import MaskablePPO

from pipelines.definitions import build_definitions
from tests.pipelines.test_lineage import RANGE, _observe


def _weights(checkpoint: str) -> dict[str, torch.Tensor]:
    model = MaskablePPO.load(f"{checkpoint}/model.zip", device="cpu")
    return {k: v.detach().clone() for k, v in model.policy.state_dict().items()}


def test_fanned_out_training_trains_each_slice_and_seed_in_its_own_step_with_the_same_weights(
    tf_env, monkeypatch
) -> None:
    tf_env.edit_yaml(tf_env.configs / "intraday.yaml", lambda f: f.update(seeds=[3, 4]))
    single = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    assert single.resolve_job_def("market_data_job").execute_in_process(instance=instance, tags=RANGE).success
    _observe(single, instance)
    one_step = single.resolve_job_def("intraday_training_job").execute_in_process(instance=instance)
    assert one_step.success
    reference = one_step.output_for_node("intraday_policy")
    runs = set(reference.checkpoints)
    assert len(runs) == 4 and {k.split("/")[1] for k in runs} == {"seed_3", "seed_4"}  # 2 slices x 2 seeds

    monkeypatch.setenv("TRADEFLOW_FAN_OUT", "1")
    fanned = build_definitions()
    job = fanned.resolve_job_def("intraday_training_job")
    result = job.execute_in_process(instance=instance)
    assert result.success
    trained = [e.step_key for e in result.get_step_success_events() if "train_run" in e.step_key]
    assert sorted(trained) == sorted(f"intraday_policy.intraday_train_run[{k.replace('/', '_')}]" for k in runs)
    artifact = result.output_for_node("intraday_policy")
    assert set(artifact.checkpoints) == runs
    assert artifact.run_id != reference.run_id
    for key in runs:
        assert artifact.checkpoints[key] != reference.checkpoints[key]
        mine, theirs = _weights(artifact.checkpoints[key]), _weights(reference.checkpoints[key])
        assert mine.keys() == theirs.keys()
        assert all(torch.equal(mine[k], theirs[k]) for k in mine), key
    assert artifact.config == reference.config and artifact.slices == reference.slices
    assert set(artifact.updates) == runs and all(artifact.updates[k] for k in runs)
    con = duckdb.connect(str(tf_env.home / "warehouse.duckdb"), read_only=True)
    rows = con.execute("select run_id, count(*) from ml.training_runs group by 1").fetchall()
    con.close()
    assert dict(rows) == {reference.run_id: 4, artifact.run_id: 4}
