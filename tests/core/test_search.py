"""Hyperparameter search: TPE + median pruning on validation days only, a versioned preset, resumable studies."""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import pytest

from rl.core.family import FamilyConfig, load_family
from rl.core.reward import load_reward
from rl.core.search import HpoConfig, ParamSpace, load_preset, redact, run_search, validation_windows
from rl.core.walkforward import WalkForwardConfig, walk_forward_slices
from rl.families.intraday import FAMILY
from rl.families.intraday.accounting import COMPONENTS
from tests import ROOT
from tests.core.test_train import make_days

SPACE = {"learning_rate": {"low": 1e-4, "high": 1e-3, "log": True}, "n_epochs": [1, 2]}


class SpyDays:
    """The family's days, recording every date any code selects from them."""

    def __init__(self, days):
        self.days, self.read = days, set()

    def select_dates(self, dates):
        self.read |= {np.datetime64(d, "D").item() for d in dates}
        return self.days.select_dates(dates)

    def __getattr__(self, name):
        return getattr(self.days, name)


def search_setup(storage: str, trials: int = 3, heartbeat_s: int = 30):
    """A tiny intraday search: config, spied days, slices and reward (also run in subprocesses by other tests)."""
    base = load_family(ROOT / "configs" / "intraday.yaml")
    raw = base.to_dict()
    raw["walk_forward"] = {"train_days": 6, "test_days": 2, "slices": 2, "step_days": None}
    raw["ppo"].update(total_timesteps=512, n_envs=8, n_steps=32, batch_size=128, n_epochs=1, net_arch=[32, 32])
    raw["hpo"] = {"trials": trials, "steps_per_trial": 512, "evals_per_trial": 2, "validation_days": 2,
                  "space": SPACE, "storage": storage, "heartbeat_s": heartbeat_s}  # fmt: skip
    cfg = FamilyConfig.from_dict(raw)
    days = make_days(10, seed=6, symbols=("SPY",))
    slices = walk_forward_slices(sorted({d.item() for d in days.dates}), cfg.walk_forward)
    reward = load_reward(ROOT / "configs" / "rewards" / "intraday.yaml", COMPONENTS)
    return cfg, SpyDays(days), slices, reward


@pytest.fixture()
def setup(tmp_path):
    return search_setup(f"sqlite:///{tmp_path / 'studies.db'}")


def test_a_search_never_reads_a_test_day_and_writes_a_versioned_preset(setup, tmp_path):
    cfg, days, slices, reward = setup
    lines = []
    result = run_search(FAMILY, days, cfg, reward, slices, tmp_path, tmp_path / "presets", lines.append)
    test_days = {d for s in slices for d in s.test_dates}
    validation = {d for _, _, v in validation_windows(slices, 2) for d in v}
    assert days.read and not days.read & test_days, sorted(days.read & test_days)
    assert validation <= days.read  # the trials were judged on the validation days
    assert len(result.trials) == 3 and {t["state"] for t in result.trials} <= {"COMPLETE", "PRUNED"}
    assert set(result.best_params) == {"learning_rate", "n_epochs"}
    assert 1e-4 <= result.best_params["learning_rate"] <= 1e-3 and result.best_params["n_epochs"] in (1, 2)
    assert load_preset(result.preset_path, result.preset_sha256) == result.best_params
    assert any("trial 0:" in line for line in lines) and "3 more" in lines[0]

    again = run_search(FAMILY, days, dataclasses.replace(cfg, hpo=dataclasses.replace(cfg.hpo, trials=4)), reward,
                       slices, tmp_path, tmp_path / "presets", lines.append)  # fmt: skip
    assert again.study != result.study  # the budget is part of what names a study: a new one
    same = run_search(FAMILY, days, cfg, reward, slices, tmp_path, tmp_path / "presets", lines.append)
    assert same.study == result.study and len(same.trials) == 3  # the finished study is read back, not rerun
    assert "0 more" in lines[-1] or "running 0 more" in " ".join(lines)


def test_an_edited_preset_is_refused(setup, tmp_path):
    cfg, days, slices, reward = setup
    cfg = dataclasses.replace(cfg, hpo=dataclasses.replace(cfg.hpo, trials=1))
    result = run_search(FAMILY, days, cfg, reward, slices, tmp_path, tmp_path / "presets", lambda _: None)
    path = tmp_path / "presets" / result.preset_path.split("/")[-1]
    path.write_text(path.read_text().replace("n_epochs: ", "n_epochs: 1"))
    with pytest.raises(ValueError, match="edited after its search"):
        load_preset(path, result.preset_sha256)
    path.unlink()
    with pytest.raises(ValueError, match="is gone"):
        load_preset(path, result.preset_sha256)


def test_search_settings_are_validated():
    with pytest.raises(ValueError, match="not a searchable ppo setting"):
        HpoConfig.from_dict({"space": {"lr": {"low": 1, "high": 2}}})
    with pytest.raises(ValueError, match="needs low < high"):
        ParamSpace("gamma", low=0.99, high=0.9)
    with pytest.raises(ValueError, match="log range needs low > 0"):
        ParamSpace("ent_coef", low=0.0, high=0.1, log=True)
    with pytest.raises(ValueError, match="hpo.use needs an hpo.space"):
        HpoConfig(use=True)
    with pytest.raises(ValueError, match="SQLAlchemy URL"):
        HpoConfig(storage="optuna.db")
    with pytest.raises(ValueError, match="validation_days"):
        validation_windows(walk_forward_slices([date(2024, 1, d) for d in range(2, 12)], WalkForwardConfig(4, 2, 1)), 4)
    raw = load_family(ROOT / "configs" / "intraday.yaml").to_dict()
    raw["hpo"] = {"space": SPACE, "use": True}
    cfg = FamilyConfig.from_dict(raw)
    assert FamilyConfig.from_dict(cfg.to_dict()) == cfg


def test_a_storage_password_never_reaches_a_log():
    assert redact("postgresql://tf:s3cret@127.0.0.1:5432/optuna") == "postgresql://tf:***@127.0.0.1:5432/optuna"
    assert redact("sqlite:///home/optuna.db") == "sqlite:///home/optuna.db"
