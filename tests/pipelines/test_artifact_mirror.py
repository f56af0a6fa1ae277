"""Artifacts every worker reaches: with TRADEFLOW_ARTIFACTS set to a bucket, datasets, checkpoints, reports and the
step outputs passed between assets go there, and a step on a machine that lacks them fetches them first.

"Another machine" is this one with the home's datasets and checkpoints deleted: the evaluation, launched alone,
must read its inputs from the bucket's step outputs, fetch the dataset and the checkpoints, verify them, and score
them exactly as the training's own evaluation did. Against a real S3 endpoint on 127.0.0.1 (moto's server).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import fsspec
import pytest

from tests.object_store import SECRET, s3_bucket
from tests.pipelines.test_lineage import _build


@pytest.mark.parametrize("fan_out", ["0", "1"])
def test_a_worker_without_the_homes_artifacts_fetches_them_from_the_bucket_and_scores_the_same(
    tf_env, monkeypatch: pytest.MonkeyPatch, fan_out: str
) -> None:
    """In one step, and fanned out (each run's step publishes its checkpoint; the plan and outcomes pass through the
    bucket's step outputs)."""
    with s3_bucket(monkeypatch) as bucket:
        mirror = f"{bucket}/tradeflow"
        monkeypatch.setenv("TRADEFLOW_ARTIFACTS", mirror)
        monkeypatch.setenv("TRADEFLOW_FAN_OUT", fan_out)
        defs, instance = _build(tf_env)
        trained = defs.resolve_job_def("intraday_training_job").execute_in_process(instance=instance)
        assert trained.success
        manifest = trained.output_for_node("intraday_dataset")
        artifact = trained.output_for_node("intraday_policy")
        first = trained.output_for_node("intraday_evaluation")

        fs, root = fsspec.url_to_fs(mirror, skip_instance_cache=True)
        home = tf_env.home
        held = set(fs.find(root))
        rel = lambda p: f"{root}/{Path(p).relative_to(home).as_posix()}"  # noqa: E731
        assert rel(manifest.path) in held
        for checkpoint in artifact.checkpoints.values():
            assert f"{rel(checkpoint)}/FINISHED" in held and f"{rel(checkpoint)}/model.zip" in held
        assert any(k.endswith("/report.md") and "/reports/intraday/" in k for k in held)
        assert f"{root}/storage/intraday_policy" in held and not (home / "storage").exists()  # step outputs too
        if fan_out == "1":
            runs = [k for k in held if "/intraday_policy.intraday_train_run[" in k]
            assert len(runs) == len(artifact.checkpoints), runs  # each run's outcome, passed through the bucket

        shutil.rmtree(home / "datasets")  # another machine: same home path, none of these files
        shutil.rmtree(home / "checkpoints")
        job = defs.resolve_implicit_global_asset_job_def()
        again = job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey("intraday_evaluation")])
        assert again.success
        second = again.output_for_node("intraday_evaluation")
        assert all((home / "checkpoints").glob("intraday/*/*/FINISHED"))
        assert len(list((home / "checkpoints").glob("intraday/*/*/FINISHED"))) == len(artifact.checkpoints)
        scores = {k: v for k, v in first.items() if "/" in k}  # every policy's held-out figures
        assert len(scores) >= 10 and {k.split("/")[0] for k in scores} >= {"agent", "flat"}
        assert {k: second[k] for k in scores} == scores and second["checks"] == first["checks"]
        assert second["policy_run_id"] == first["policy_run_id"] and second["run_id"] != first["run_id"]
        logged = "\n".join(str(e) for e in [*trained.all_events, *again.all_events])
        assert SECRET not in logged
