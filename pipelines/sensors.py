"""Automation: eager retraining on reward changes, plus a stale-model safety net that never races a running job."""

from __future__ import annotations

import dagster as dg

from pipelines.jobs import intraday_model_selection

MODEL_ASSETS = [dg.AssetKey(k) for k in ("intraday_reward_audit", "intraday_policy", "intraday_evaluation")]

automation_sensor = dg.AutomationConditionSensorDefinition(
    "model_automation_sensor",
    target=dg.AssetSelection.all(include_sources=True),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)


def models_in_progress(instance: dg.DagsterInstance) -> list[str]:
    """Ids of queued or running runs that target any model asset."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            statuses=[
                dg.DagsterRunStatus.QUEUED,
                dg.DagsterRunStatus.NOT_STARTED,
                dg.DagsterRunStatus.STARTING,
                dg.DagsterRunStatus.STARTED,
            ]
        )
    )
    targets = set(MODEL_ASSETS)
    return [r.run_id for r in runs if r.asset_selection and targets & set(r.asset_selection)]


@dg.sensor(
    asset_selection=intraday_model_selection,
    minimum_interval_seconds=600,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def stale_models_sensor(context: dg.SensorEvaluationContext):
    """Eager automation can drop a reward change that lands mid-training (dagster#24650): re-request stale models."""
    running = models_in_progress(context.instance)
    if running:
        return dg.SkipReason(f"model runs in progress: {', '.join(running)}")
    return dg.RunRequest(asset_selection=MODEL_ASSETS, stale_assets_only=True)
