"""Automation: eager retraining on reward changes, plus a safety net for a change that lands mid-training.

Eager automation can miss a change (dagster#24650). Worse, a run that read the old reward YAML and finished
after the new hash was observed is recorded as built from the new one, so nothing even looks stale. The
safety net therefore compares what the latest policy was really trained with (the reward sha256 in its
materialization metadata) against the file now, and never launches while a model run is in progress.
"""

from __future__ import annotations

import hashlib

import dagster as dg

from pipelines.resources import ConfigStore

FAMILIES = ("intraday", "funding")
MODEL_STAGES = ("reward_audit", "policy", "evaluation")

automation_sensor = dg.AutomationConditionSensorDefinition(
    "model_automation_sensor",
    target=dg.AssetSelection.all(include_sources=True),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)

IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def model_keys(family: str) -> list[dg.AssetKey]:
    return [dg.AssetKey(f"{family}_{stage}") for stage in MODEL_STAGES]


def models_in_progress(instance: dg.DagsterInstance, family: str) -> list[str]:
    """Ids of queued or running runs that target any of the family's model assets."""
    targets = set(model_keys(family))
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS))
    return [r.run_id for r in runs if r.asset_selection and targets & set(r.asset_selection)]


def trained_reward_sha(instance: dg.DagsterInstance, family: str) -> str | None:
    """The reward sha256 the family's latest policy was trained with, or None before the first training."""
    event = instance.get_latest_materialization_event(dg.AssetKey(f"{family}_policy"))
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get("reward_sha256")
    return str(value.value) if value is not None else None


@dg.sensor(minimum_interval_seconds=600, default_status=dg.DefaultSensorStatus.RUNNING)
def stale_models_sensor(context: dg.SensorEvaluationContext, configs: ConfigStore):
    """Retrain a family whose latest policy was trained with another reward than the file holds now."""
    skipped = []
    for family in FAMILIES:
        running = models_in_progress(context.instance, family)
        if running:
            skipped.append(f"{family}: model runs in progress ({', '.join(running)})")
            continue
        used = trained_reward_sha(context.instance, family)
        current = hashlib.sha256(configs.reward_path(family).read_bytes()).hexdigest()
        if used is None or used == current:
            skipped.append(f"{family}: policy is current")
            continue
        yield dg.RunRequest(
            run_key=f"{family}-reward-{current[:16]}",
            asset_selection=model_keys(family),
            tags={"tradeflow/reason": f"trained with reward {used[:12]}, file is {current[:12]}"},
        )
    if skipped:
        context.update_cursor(None)
        context.log.info("; ".join(skipped))
