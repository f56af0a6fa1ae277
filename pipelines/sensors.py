"""Automation: config observation without polling runs, eager retraining, and a safety net for a change that
lands mid-training.

`config_observation_sensor` hashes each family's config and reward files itself and records an observation of a
config source only when its hash changed, so the Runs page shows work, not polling. The eager conditions of the
model assets then retrain exactly what a change touches. Eager automation can miss a change (dagster#24650), and
a run that read the old reward YAML and finished after the new hash was observed is recorded as built from the
new one, so nothing even looks stale: `stale_models_sensor` therefore compares what the latest policy was really
trained with (the reward sha256 in its materialization metadata) against the file now, and never launches while
a live model run is in progress.
"""

from __future__ import annotations

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_TAG

from assets.family import model_stage_keys, source_versions
from assets.resources import ConfigStore
from pipelines.recovery import live_runs
from rl.core.registry import get_family, kinds

automation_sensor = dg.AutomationConditionSensorDefinition(
    "model_automation_sensor",
    target=dg.AssetSelection.all(include_sources=True),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Every 30 s, materializes the model assets whose config, reward or upstream changed (eager "
    "conditions); launches nothing when nothing changed.",
)


def model_keys(family: str) -> list[dg.AssetKey]:
    """The family's model assets: audit, gated stage (if any), policy and evaluation."""
    return [dg.AssetKey(k) for k in model_stage_keys(get_family(family))]


def models_in_progress(instance: dg.DagsterInstance, family: str) -> list[str]:
    """Ids of queued or running runs that target any of the family's model assets; a run whose process is gone
    (killed) does not count, so it cannot hold the family's retraining back for ever."""
    targets = set(model_keys(family))
    return [r.run_id for r in live_runs(instance) if r.asset_selection and targets & set(r.asset_selection)]


def trained_reward_sha(instance: dg.DagsterInstance, family: str) -> str | None:
    """The reward sha256 the family's latest policy was trained with, or None before the first training."""
    event = instance.get_latest_materialization_event(dg.AssetKey(f"{family}_policy"))
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get("reward_sha256")
    return str(value.value) if value is not None else None


def observed_version(instance: dg.DagsterInstance, key: str) -> str | None:
    """The data version last recorded for a source asset, or None before its first observation."""
    record = instance.get_latest_data_version_record(dg.AssetKey(key), is_source=True)
    if record is None:
        return None
    return (record.event_log_entry.tags or {}).get(DATA_VERSION_TAG)


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 30 s, hashes each family's config sections and reward file and records an observation of "
    "each config source whose hash changed; launches no runs.",
)
def config_observation_sensor(context: dg.SensorEvaluationContext, configs: ConfigStore):
    events = []
    for kind in kinds():
        for key, version in source_versions(configs, kind).items():
            if observed_version(context.instance, key) != version:
                events.append(dg.AssetObservation(asset_key=key, tags={DATA_VERSION_TAG: version}))
    if not events:
        return dg.SkipReason("no config or reward file changed")
    return dg.SensorResult(asset_events=events)


@dg.sensor(
    minimum_interval_seconds=600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 10 min, retrains a family whose latest policy was trained with another reward than the "
    "file holds now, unless a model run of that family is in progress.",
)
def stale_models_sensor(context: dg.SensorEvaluationContext, configs: ConfigStore):
    skipped = []
    for family in kinds():
        running = models_in_progress(context.instance, family)
        if running:
            skipped.append(f"{family}: model runs in progress ({', '.join(running)})")
            continue
        used = trained_reward_sha(context.instance, family)
        current = source_versions(configs, family)[f"{family}_reward_config"]
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
