"""Where tradeflow keeps its state: one home folder, overridable by an environment variable."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "TRADEFLOW_HOME"
CONFIG_ENV = "TRADEFLOW_CONFIG_DIR"
INSTANCE_ENV = "TRADEFLOW_DAGSTER_YAML"  # e.g. deploy/dagster.yaml: the Postgres instance instead of SQLite
ARTIFACTS_ENV = "TRADEFLOW_ARTIFACTS"  # e.g. s3://bucket/tradeflow: the artifact mirror every worker reaches
DEFAULT_HOME = ".tradeflow"
REPO_ROOT = Path(__file__).resolve().parents[1]

DAGSTER_YAML = """\
# Written by tradeflow. DuckDB allows one writing process, so every warehouse writer runs in the
# "duckdb" pool and pools default to one slot: steps are serialized within a run and across runs.
concurrency:
  pools:
    default_limit: 1
# A run whose worker died (kill -9, out of memory) is marked failed by the code server that launched it;
# run monitoring then frees its pool slots. dead_runs_sensor covers runs executed in-process too.
run_monitoring:
  enabled: true
  poll_interval_seconds: 30
  free_slots_after_run_end_seconds: 30
telemetry:
  enabled: false
"""


def tradeflow_home() -> Path:
    """The home folder: DuckDB file, checkpoints, reports, TensorBoard logs and the Dagster instance."""
    return Path(os.environ.get(HOME_ENV, DEFAULT_HOME)).expanduser().resolve()


def config_dir() -> Path:
    """YAML presets (family configs and rewards); the repo's configs/ unless overridden."""
    return Path(os.environ.get(CONFIG_ENV, REPO_ROOT / "configs")).expanduser().resolve()


def artifact_mirror() -> str | None:
    """The object-store URL that datasets, checkpoints, presets, reports and step outputs are mirrored to
    (TRADEFLOW_ARTIFACTS), or None: everything stays under the home, which every worker must then reach."""
    from warehouse.store import check_location, is_url

    chosen = os.environ.get(ARTIFACTS_ENV, "").strip()
    if not chosen:
        return None
    chosen = check_location(chosen, ARTIFACTS_ENV)
    if not is_url(chosen):
        raise ValueError(f"{ARTIFACTS_ENV} must be an object-store URL such as s3://bucket/prefix, got {chosen!r}")
    return chosen.rstrip("/")


def instance_yaml() -> str:
    """The Dagster instance config: the embedded SQLite one, or the file TRADEFLOW_DAGSTER_YAML names."""
    chosen = os.environ.get(INSTANCE_ENV)
    if not chosen:
        return DAGSTER_YAML
    path = Path(chosen).expanduser()
    path = path if path.is_absolute() else REPO_ROOT / path
    if not path.is_file():
        raise FileNotFoundError(f"{INSTANCE_ENV}={chosen}: no such instance config file")
    return path.read_text()


def ensure_dagster_home(home: Path | None = None) -> Path:
    """Create `<home>/dagster` with the instance config (pools included), so runs launched from it serialize
    DuckDB writes."""
    dagster_home = (home or tradeflow_home()) / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    cfg = dagster_home / "dagster.yaml"
    wanted = instance_yaml()
    if not cfg.exists() or cfg.read_text() != wanted:
        cfg.write_text(wanted)
    return dagster_home
