"""Shared pytest fixtures: make the repo root importable and keep every test's state in temp folders."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _edit_yaml(path: Path, edit) -> None:
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def tf_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A temp tradeflow home and a copy of configs/ shrunk to a few sessions, low density and a tiny PPO run."""
    home = tmp_path / "home"
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)

    def small_market(m: dict) -> None:
        m["embedded"]["trades_per_day"] = 1500

    def tiny_family(f: dict) -> None:
        f["data"]["start"] = "2024-01-02"
        f["data"]["end"] = "2024-01-10"
        f["walk_forward"].update({"train_days": 3, "test_days": 1, "slices": 2})
        f["ppo"].update({"total_timesteps": 512, "n_envs": 8, "n_steps": 32, "batch_size": 128, "n_epochs": 1})

    def tiny_funding(f: dict) -> None:
        f["data"].update({"start": "2024-03-01", "end": "2024-03-08"})
        f["env"]["episode_hours"] = 24
        f["walk_forward"].update({"train_days": 3, "test_days": 2, "slices": 2})
        f["ppo"].update({"total_timesteps": 384, "n_envs": 8, "n_steps": 24, "batch_size": 96, "n_epochs": 1})

    def tiny_propfirm(f: dict) -> None:
        f["data"].update({"start": "2024-01-02", "end": "2024-01-19"})  # 14 CME days (MLK Day included)
        f["walk_forward"].update({"train_days": 6, "test_days": 3, "slices": 2})
        f["phases"][0].update({"timesteps": 256, "validation_days": 2})
        f["phases"][1]["timesteps"] = 256
        f["evaluation"].update({"starts_per_slice": 2, "min_days_left": 1})
        f["ppo"].update({"total_timesteps": 512, "n_envs": 4, "n_steps": 64, "batch_size": 128, "n_epochs": 1})

    _edit_yaml(configs / "market.yaml", small_market)
    _edit_yaml(configs / "intraday.yaml", tiny_family)
    _edit_yaml(configs / "funding.yaml", tiny_funding)
    _edit_yaml(configs / "propfirm.yaml", tiny_propfirm)
    monkeypatch.setenv("TRADEFLOW_HOME", str(home))
    monkeypatch.setenv("TRADEFLOW_CONFIG_DIR", str(configs))
    return SimpleNamespace(home=home, configs=configs, edit_yaml=_edit_yaml)
