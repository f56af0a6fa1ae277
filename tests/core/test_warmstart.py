"""Warm start by behaviour cloning: the policy learns a rule baseline's masked actions before PPO, on the
training days' env only, and a bad teacher or setting is refused clearly."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from rl.core.family import FamilyConfig, load_family
from rl.core.reward import load_reward
from rl.core.train import PPOConfig, build_model, train_policy
from rl.core.warmstart import WarmStartConfig, agreement, behaviour_clone, demonstrations
from rl.core.workflow import _teacher
from rl.families.intraday import FAMILY
from rl.families.intraday.accounting import COMPONENTS
from rl.families.intraday.config import EnvConfig
from tests import ROOT
from tests.core.test_train import make_days

PPO = PPOConfig(total_timesteps=512, n_envs=16, n_steps=32, batch_size=256, n_epochs=1, seed=5, net_arch=(64, 64))
WARM = WarmStartConfig(teacher="sma_crossover", steps=8192, epochs=6, batch_size=512, learning_rate=3e-3)


@pytest.fixture(scope="module")
def setup():
    days = make_days(4, seed=3, symbols=("SPY", "QQQ"))
    reward = load_reward(ROOT / "configs" / "rewards" / "intraday.yaml", COMPONENTS)
    cfg = replace(load_family(ROOT / "configs" / "intraday.yaml"), warm_start=WARM)
    return days, reward, cfg, FAMILY.env_factory(days, EnvConfig(), reward)


def test_cloning_teaches_the_policy_the_teachers_actions(setup):
    days, reward, cfg, make_env = setup
    teacher = _teacher(FAMILY, days, cfg)
    env = make_env(16, 99)
    demos = demonstrations(env, teacher(env), WARM.steps)
    assert len(demos.actions) == WARM.steps and demos.masks[np.arange(len(demos.actions)), demos.actions].all()
    model = build_model(make_env, PPO)
    before = agreement(model, demos)
    stats = behaviour_clone(model, demos, WARM, seed=0)
    after = stats["epochs"][-1]["agreement"]
    assert after > 0.9 and after > before + 0.2, (before, stats["epochs"])
    assert stats["epochs"][-1]["loss"] < stats["epochs"][0]["loss"]
    assert sum(stats["teacher_action_share"]) == pytest.approx(1.0)


def test_a_warm_started_training_records_the_clone_and_starts_ppo_from_it(setup, tmp_path):
    days, reward, cfg, make_env = setup
    teacher = _teacher(FAMILY, days, cfg)
    result = train_policy(days, EnvConfig(), reward, PPO, tmp_path / "warm", make_env, warm_start=(WARM, teacher))
    meta = json.loads((result.checkpoint_dir / "meta.json").read_text())
    assert meta["warm_start"]["teacher"] == "sma_crossover" and len(meta["warm_start"]["epochs"]) == WARM.epochs
    assert meta["warm_start"]["epochs"][-1]["agreement"] > 0.8
    cold = train_policy(days, EnvConfig(), reward, PPO, tmp_path / "cold", make_env)
    assert "warm_start" not in json.loads((cold.checkpoint_dir / "meta.json").read_text())


def test_a_teacher_that_breaks_the_mask_is_refused(setup):
    _, _, _, make_env = setup
    env = make_env(4, 0)

    def reckless(obs, masks):
        return np.argmin(masks, axis=1)  # a masked action wherever there is one

    with pytest.raises(ValueError, match="masked action"):
        demonstrations(env, reckless, 4096)


def test_warm_start_settings_are_validated_and_an_unknown_teacher_is_named(setup):
    days, _, cfg, _ = setup
    with pytest.raises(ValueError, match="warm_start.steps"):
        WarmStartConfig(teacher="flat", steps=0)
    with pytest.raises(ValueError, match="unknown"):
        WarmStartConfig.from_dict({"teacher": "flat", "demos": 10})
    with pytest.raises(ValueError, match="'oracle' is not a baseline of the intraday family; known: .*sma_crossover"):
        _teacher(FAMILY, days, replace(cfg, warm_start=WarmStartConfig(teacher="oracle")))
    assert _teacher(FAMILY, days, replace(cfg, warm_start=WarmStartConfig())) is None
    raw = cfg.to_dict()
    assert FamilyConfig.from_dict(raw).warm_start == WARM
    off = FamilyConfig.from_dict({**raw, "warm_start": None})
    sections = ("env", "ppo", "seeds", "warm_start", "phases", "walk_forward", "reward")
    assert off.version(sections) != cfg.version(sections), "turning the warm start on or off retrains"


@pytest.mark.parametrize("kind", ["intraday", "funding", "propfirm", "zerodte"])
def test_every_familys_baselines_can_teach_on_its_training_env(kind):
    from rl.core.registry import get_family

    family = get_family(kind)
    cfg = load_family(ROOT / "configs" / f"{kind}.yaml")
    reward = load_reward(ROOT / "configs" / cfg.reward, family.reward_components)
    days = family.synthetic_days(0)
    teachers = family.teachers(days, cfg)
    assert "random_valid" in teachers and len(teachers) >= 3
    for name, factory in teachers.items():
        env = family.env_factory(days, cfg.training_phases()[0][2], reward)(8, 0)
        demos = demonstrations(env, factory(env), 64)  # refuses any masked action
        assert len(demos.actions) == 64, name
