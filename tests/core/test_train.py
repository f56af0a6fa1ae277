"""Training: config validation, atomic checkpoints, load round-trip, same-seed determinism, and learning.

The learning test plants a strong, known signal (order-flow imbalance at minute t sets the drift of minute
t+1) in synthetic days: a short MaskablePPO run must then beat flat and random on later held-out days, and
the same run on data without the signal must not look reliably profitable.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rl.core.checkpoint import load_checkpoint, save_checkpoint
from rl.core.data import MarketDays
from rl.core.reward import load_reward
from rl.core.train import PPOConfig, TrainStats, train_policy
from rl.families.intraday import FAMILY
from rl.families.intraday.accounting import COMPONENTS
from rl.families.intraday.config import EnvConfig
from tests import ROOT  # noqa: E402

REWARD = ROOT / "configs" / "rewards" / "intraday.yaml"
TINY = PPOConfig(total_timesteps=256, n_envs=8, n_steps=32, batch_size=64, n_epochs=1, seed=3)


def make_days(
    n_sessions: int,
    seed: int = 0,
    edge: float = 0.0,
    symbols: tuple[str, ...] = ("SPY",),
    n_minutes: int = 390,
) -> MarketDays:
    """Random walk around $470 with a 1-cent spread; with `edge` > 0, imbalance_1m[t] drifts minute t+1."""
    rng = np.random.default_rng(seed)
    d = n_sessions * len(symbols)
    sessions = np.busday_offset(np.datetime64("2024-01-02", "D"), np.arange(n_sessions), roll="forward")
    vol = 0.0006
    imbalance = rng.uniform(-1.0, 1.0, size=(d, n_minutes))
    rets = rng.standard_normal((d, n_minutes)) * vol
    rets[:, 1:] += edge * vol * imbalance[:, :-1]
    day_open = np.round(470.0 * np.exp(rng.standard_normal(d) * 0.01), 2)
    close = np.round(day_open[:, None] * np.exp(np.cumsum(rets, axis=1)), 2)
    open_ = np.concatenate([day_open[:, None], close[:, :-1]], axis=1)
    ret_1m = np.zeros_like(close)
    ret_1m[:, 1:] = np.diff(np.log(close), axis=1) * 100.0
    csum = np.cumsum(np.pad(close, ((0, 0), (1, 0))), axis=1)
    t = np.arange(n_minutes)

    def sma(w: int) -> np.ndarray:
        lo = np.maximum(t + 1 - w, 0)
        return (csum[:, t + 1] - csum[:, lo]) / (t + 1 - lo)

    features = np.stack([ret_1m, imbalance, np.log(sma(5) / sma(20)) * 100.0], axis=-1).astype(np.float32)
    return MarketDays(
        symbols=np.tile(np.array(symbols), n_sessions),
        dates=np.repeat(sessions, len(symbols)).astype("datetime64[D]"),
        features=features,
        open=open_,
        close=close,
        spread=np.full((d, n_minutes), 0.01),
        length=np.full(d, n_minutes, dtype=np.int32),
        feature_names=("ret_1m", "imbalance_1m", "sma_5_20"),
    )


@pytest.fixture(scope="module")
def reward():
    return load_reward(REWARD, COMPONENTS)


@pytest.fixture(scope="module")
def days() -> MarketDays:
    return make_days(4, seed=1, symbols=("SPY", "QQQ"))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, days, reward):
    out = tmp_path_factory.mktemp("ckpt") / "run" / "slice0"
    meta = {"run_id": "test-run", "slice": "slice0", "train_dates": ["2024-01-02"]}
    return train_policy(days, EnvConfig(), reward, TINY, out, _env(days, reward), run_meta=meta)


def _env(days, reward, env_cfg=None):
    """The intraday family's env factory: training code is the core's, the env is a family's."""
    return FAMILY.env_factory(days, env_cfg or EnvConfig(), reward)


def _params(model) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.policy.state_dict().items()}


# ------------------------------------------------------------------------------------------ PPOConfig
def test_ppo_config_validates_and_round_trips():
    cfg = PPOConfig.from_dict({"n_envs": 16, "n_steps": 64, "batch_size": 256, "net_arch": [64, 32], "gamma": 1})
    assert cfg.net_arch == (64, 32) and isinstance(cfg.gamma, float)
    assert PPOConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.policy_kwargs()["net_arch"] == {"pi": [64, 32], "vf": [64, 32]}
    with pytest.raises(ValueError, match="unknown key"):
        PPOConfig.from_dict({"n_env": 8})
    with pytest.raises(ValueError, match="divide the rollout"):
        PPOConfig(n_envs=8, n_steps=32, batch_size=100)
    with pytest.raises(ValueError, match="gamma"):
        PPOConfig(gamma=1.5)
    with pytest.raises(ValueError, match="activation"):
        PPOConfig(activation="sigmoid")
    with pytest.raises(ValueError, match="net_arch"):
        PPOConfig(net_arch=(256, 0))


def test_importing_training_modules_does_not_import_torch():
    code = (
        "import sys; import rl.core.family, rl.core.train, rl.core.evaluate, rl.core.metrics, rl.core.report, "
        "rl.core.workflow, rl.core.walkforward, rl.core.versioning, rl.families.intraday.evaluate, "
        "rl.families.intraday.metrics, rl.families.intraday.report, rl.families.intraday.baselines; "
        "bad = [m for m in ('torch', 'stable_baselines3', 'sb3_contrib', 'dagster') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ------------------------------------------------------------------------------------------ checkpoints
def test_checkpoint_has_model_and_full_meta(tiny_run, days, reward):
    ckpt = tiny_run.checkpoint_dir
    assert sorted(p.name for p in ckpt.iterdir()) == ["FINISHED", "meta.json", "model.zip"]
    assert [p.name for p in ckpt.parent.iterdir()] == ["slice0"], "no temp dirs may be left next to it"
    meta = json.loads((ckpt / "meta.json").read_text())
    assert meta["run_id"] == "test-run"
    assert meta["run_meta"]["slice"] == "slice0"
    assert meta["reward"]["sha256"] == reward.sha256 and meta["reward"]["name"] == reward.name
    assert set(meta["reward"]["components"]) == set(reward.components)
    assert meta["data"]["version"] == days.content_hash()
    assert meta["data"]["symbols"] == ["QQQ", "SPY"]
    assert meta["code_version"].startswith("src-")
    assert meta["config"]["ppo"] == TINY.to_dict()
    assert meta["config"]["env"] == EnvConfig().to_dict()
    assert meta["created_at"] and meta["model_sha256"] and meta["checkpoint_id"]
    stats = tiny_run.stats
    assert isinstance(stats, TrainStats)
    assert stats.timesteps >= TINY.total_timesteps and stats.steps_per_s > 0
    for key in ("value_loss", "explained_variance", "entropy_loss", "policy_loss", "approx_kl"):
        assert np.isfinite(stats[key]), key
        assert meta["stats"][key] == pytest.approx(stats[key])
    assert dict(stats.items())["timesteps"] == stats.timesteps


def test_load_checkpoint_round_trip_predicts_the_same(tiny_run, days, reward):
    from rl.families.intraday.env import IntradayVecEnv

    model, meta = load_checkpoint(tiny_run.checkpoint_dir)
    assert meta["checkpoint_id"] == tiny_run.meta["checkpoint_id"]
    env = IntradayVecEnv(days, EnvConfig(), reward, n_envs=8, seed=5)
    obs = env.reset()
    masks = env.action_masks()
    # The in-memory model is gone after training; compare two independent loads against the saved params.
    model2, _ = load_checkpoint(tiny_run.checkpoint_dir)
    a1, _ = model.predict(obs, action_masks=masks, deterministic=True)
    a2, _ = model2.predict(obs, action_masks=masks, deterministic=True)
    np.testing.assert_array_equal(a1, a2)
    assert masks[np.arange(len(a1)), a1].all()
    for k, v in _params(model).items():
        np.testing.assert_array_equal(v, _params(model2)[k])


def test_save_round_trip_and_atomic_failure(tmp_path, days, reward, monkeypatch):
    from rl.core.train import build_model

    model = build_model(_env(days, reward), TINY)
    target = save_checkpoint(model, {"run_id": "r"}, tmp_path / "ok")
    loaded, _ = load_checkpoint(target)
    obs = np.random.default_rng(0).standard_normal((16, days.n_features + 4)).astype(np.float32)
    masks = np.ones((16, 4), dtype=bool)
    np.testing.assert_array_equal(
        model.predict(obs, action_masks=masks, deterministic=True)[0],
        loaded.predict(obs, action_masks=masks, deterministic=True)[0],
    )
    with pytest.raises(FileExistsError):
        save_checkpoint(model, {"run_id": "r"}, target)

    # meta that cannot be serialised: fails after model.zip was written, leaves nothing behind.
    with pytest.raises(TypeError):
        save_checkpoint(model, {"run_id": "r", "bad": object()}, tmp_path / "broken")
    assert not (tmp_path / "broken").exists()

    # a crash inside model.save itself
    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(model, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(model, {"run_id": "r"}, tmp_path / "crashed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok"], "no partial or temp dirs"


def test_load_refuses_a_tampered_model(tmp_path, tiny_run):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_run.checkpoint_dir, copy)
    with open(copy / "model.zip", "ab") as f:
        f.write(b"tampered")
    with pytest.raises(ValueError, match="sha256"):
        load_checkpoint(copy)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "nothing")


def test_train_refuses_existing_target_and_unserialisable_meta(tmp_path, days, reward):
    (tmp_path / "exists").mkdir()
    with pytest.raises(FileExistsError):
        train_policy(days, EnvConfig(), reward, TINY, tmp_path / "exists", _env(days, reward), {})
    with pytest.raises(TypeError):
        train_policy(days, EnvConfig(), reward, TINY, tmp_path / "new", _env(days, reward), {"x": object()})
    assert not (tmp_path / "new").exists()


def test_same_seed_same_parameters_and_tensorboard(tmp_path, days, reward):
    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        res = train_policy(
            days,
            EnvConfig(),
            reward,
            replace(TINY, seed=seed),
            tmp_path / name,
            _env(days, reward),
            {"run_id": name},
            tensorboard_dir=tmp_path / "tb" if name == "a" else None,
        )
        runs[name] = _params(load_checkpoint(res.checkpoint_dir)[0])
    for key, value in runs["a"].items():
        np.testing.assert_array_equal(value, runs["b"][key], err_msg=key)
    assert any(not np.array_equal(v, runs["c"][k]) for k, v in runs["a"].items()), "seed must matter"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = (tmp_path / "tb").rglob("events.out.tfevents*")
    acc = EventAccumulator(str(events.parent))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"rollout/ep_net_pnl", "rollout/ep_rew_mean", "train/value_loss", "train/approx_kl"} <= tags


# ------------------------------------------------------------------------------------------ learning
def _learn_and_evaluate(tmp_path: Path, edge: float, seed: int, reward) -> dict[str, np.ndarray]:
    from rl.core.walkforward import WalkForwardConfig, walk_forward_slices
    from rl.families.intraday.evaluate import evaluate_checkpoint
    from rl.families.intraday.metrics import daily_pnl

    days = make_days(24, seed=100 + seed, edge=edge, symbols=("SPY", "QQQ"))
    (fold,) = walk_forward_slices(days.dates, WalkForwardConfig(train_days=16, test_days=8, slices=1))
    ppo = PPOConfig(
        total_timesteps=32_768,
        n_envs=64,
        n_steps=64,
        batch_size=1024,
        n_epochs=4,
        learning_rate=1e-3,
        seed=seed,
    )
    train = days.select_dates(fold.train_dates)
    res = train_policy(train, EnvConfig(), reward, ppo, tmp_path / f"e{edge}", _env(train, reward))
    held_out = days.select_dates(fold.test_dates)
    results = evaluate_checkpoint(res.checkpoint_dir, held_out, EnvConfig(), reward, seed=seed)
    return {name: daily_pnl(r)[1] for name, r in results.items()}


def _reliably_profitable(daily: np.ndarray) -> bool:
    mean, se = daily.mean(), daily.std(ddof=1) / np.sqrt(len(daily))
    return bool(mean > 0 and mean > 2 * se)


def test_ppo_learns_a_planted_signal_and_not_noise(tmp_path, reward):
    with_signal = _learn_and_evaluate(tmp_path, edge=1.0, seed=0, reward=reward)
    agent_mean = with_signal["agent"].mean()
    assert agent_mean > with_signal["flat"].mean() + 50, with_signal
    assert agent_mean > with_signal["random_valid"].mean() + 50, with_signal
    assert _reliably_profitable(with_signal["agent"]), with_signal["agent"]

    no_signal = _learn_and_evaluate(tmp_path, edge=0.0, seed=0, reward=reward)
    assert not _reliably_profitable(no_signal["agent"]), no_signal["agent"]


def test_training_without_tensorboard_leaves_nothing_in_the_temp_dir(tmp_path, days, reward, monkeypatch):
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    result = train_policy(days, EnvConfig(), reward, TINY, tmp_path / "ckpt", _env(days, reward))
    assert result.stats["timesteps"] >= TINY.total_timesteps
    assert list(scratch.iterdir()) == []


def test_a_finished_training_frees_its_env_without_waiting_for_the_collector(tmp_path, days, reward):
    """Runs of one process (seeds x slices) must not pile up their envs' arrays: SB3's model holds its env in
    reference cycles, so the env must be gone when train_policy returns, with automatic collection off."""
    import gc
    import weakref

    made = []
    factory = _env(days, reward)

    def tracked(n_envs, seed):
        env = factory(n_envs, seed)
        made.append(weakref.ref(env))
        return env

    gc.collect()
    gc.disable()
    try:
        train_policy(days, EnvConfig(), reward, TINY, tmp_path / "ckpt", tracked)
        alive = [ref for ref in made if ref() is not None]
    finally:
        gc.enable()
    assert made and not alive


# ------------------------------------------------------------------------------------------ phases and progress
def test_a_curriculum_trains_its_phases_in_order_from_the_previous_phase_weights(tmp_path, days, reward):
    from rl.core.train import TrainPhase

    built: list[tuple[float | None, int]] = []

    def factory(env_cfg):
        make = _env(days, reward, env_cfg)

        def make_env(n_envs, seed):
            built.append((env_cfg.loss_cut, seed))
            return make(n_envs, seed)

        return make_env

    easy, strict = EnvConfig(loss_cut=None), EnvConfig(loss_cut=-50.0)
    phases = [TrainPhase("easy", 256, factory(easy)), TrainPhase("strict", 256, factory(strict))]
    res = train_policy(days, strict, reward, TINY, tmp_path / "curriculum", phases, {"run_id": "c"})
    assert built == [(None, TINY.seed), (-50.0, TINY.seed + 1)]  # each phase on its own env settings, in order
    assert [p["name"] for p in res.phases] == ["easy", "strict"] and all(p["timesteps"] >= 256 for p in res.phases)
    assert res.stats.timesteps == sum(p["timesteps"] for p in res.phases)  # one model through both phases
    meta = json.loads((res.checkpoint_dir / "meta.json").read_text())
    assert [p["name"] for p in meta["phases"]] == ["easy", "strict"]
    # The second phase started from the first one's weights: not the same as training the second phase alone.
    alone = train_policy(days, strict, reward, TINY, tmp_path / "alone", [phases[1]], {"run_id": "a"})
    first = _params(load_checkpoint(res.checkpoint_dir)[0])
    second = _params(load_checkpoint(alone.checkpoint_dir)[0])
    assert any(not np.array_equal(v, second[k]) for k, v in first.items())
    with pytest.raises(ValueError, match="unique"):
        train_policy(days, strict, reward, TINY, tmp_path / "dup", [phases[0], phases[0]], {})


def test_family_config_phases_override_the_env_and_are_validated():
    import yaml

    from rl.core.family import FamilyConfig

    raw = yaml.safe_load((ROOT / "configs" / "intraday.yaml").read_text())
    raw["phases"] = [
        {"name": "easy", "timesteps": 1000, "env": {"loss_cut": None, "profit_lock": None}},
        {"name": "strict", "timesteps": 2000},
    ]
    cfg = FamilyConfig.from_dict(raw)
    (n1, s1, env1), (n2, s2, env2) = cfg.training_phases()
    assert (n1, s1, env1.loss_cut, env1.profit_lock) == ("easy", 1000, None, None)
    assert (n2, s2, env2) == ("strict", 2000, cfg.env)
    assert cfg.to_dict()["phases"][0]["env"] == {"loss_cut": None, "profit_lock": None}
    raw["phases"][0]["env"] = {"shares": -1}
    with pytest.raises(ValueError, match="phases.easy: EnvConfig.shares"):
        FamilyConfig.from_dict(raw)


def test_training_logs_progress_about_every_tenth(tmp_path, days, reward):
    lines: list[str] = []
    ppo = replace(TINY, total_timesteps=TINY.n_envs * TINY.n_steps * 40)  # 40 rollouts: one line every 4
    train_policy(days, EnvConfig(), reward, ppo, tmp_path / "p", _env(days, reward), {}, log=lines.append)
    assert 8 <= len(lines) <= 11, lines
    for line in lines:
        for part in ("% (", "steps/s", "ETA", "mean episode net P&L", "value_loss", "approx_kl", "clip_fraction"):
            assert part in line, line
