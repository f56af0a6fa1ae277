"""Funding envs: Gymnasium/SB3 conformance, masks, ranking, no look-ahead, batched == single, seed 004's v2 reward."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from rl.core.reward import combine
from rl.families.funding.config import FundingEnvConfig, TradingConfig, load_funding_reward
from rl.families.funding.data import FundingDays, random_funding_days
from rl.families.funding.env import (
    ACCOUNT_FEATURES,
    CONFIG_FEATURES,
    OPP_FEATURES,
    SLOT_FEATURES,
    FundingEnv,
    FundingVecEnv,
    n_actions,
    observation_names,
    rank_opportunities,
)

CFG = FundingEnvConfig(episode_hours=24, top_k=4)
DEFAULT = load_funding_reward("configs/rewards/funding.yaml")
V2 = load_funding_reward("configs/rewards/funding_seed004_v2.yaml")


@pytest.fixture(scope="module")
def days() -> FundingDays:
    return random_funding_days(120, 6, seed=7, planted_spread_apr=0.6, anomalous=1)


def _random_valid(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.argmax(rng.random(mask.shape) * mask, axis=-1)


def test_gymnasium_and_sb3_check_env_pass(days: FundingDays) -> None:
    gym_check_env(FundingEnv(days, CFG, DEFAULT))
    sb3_check_env(FundingEnv(days, CFG, DEFAULT), warn=True)


def test_observation_layout_and_config_in_observation(days: FundingDays) -> None:
    env = FundingEnv(days, CFG, DEFAULT)
    names = observation_names(CFG)
    assert len(names) == len(CONFIG_FEATURES) + len(ACCOUNT_FEATURES) + 4 * len(OPP_FEATURES) + 5 * len(SLOT_FEATURES)
    assert env.action_space.n == n_actions(CFG) == 1 + 4 + 5
    seen = set()
    for seed in range(6):
        obs, info = env.reset(seed=seed)
        assert obs.shape == (len(names),) and obs.dtype == np.float32
        tc = info["trading"]
        np.testing.assert_allclose(
            obs[:5],
            [tc["leverage"] / 10, tc["target_utilization"], tc["max_positions"] / 5, 0.2, 0.5],
            rtol=1e-6,
        )
        seen.add(round(tc["leverage"], 6))
    assert len(seen) == 6  # a config per episode
    fixed = FundingEnv(
        days, dataclasses.replace(CFG, sample_config=False, trading=TradingConfig(leverage=2.0)), DEFAULT
    )
    assert fixed.reset(seed=1)[1]["trading"]["leverage"] == 2.0


def test_ranking_uses_each_legs_interval_and_only_hour_t(days: FundingDays) -> None:
    opp = rank_opportunities(days, 4)
    apr = days.apr_now
    t = 30
    for k in range(4):
        s, a, b = opp.sym[t, k], opp.long_x[t, k], opp.short_x[t, k]
        assert opp.valid[t, k] and a != b
        assert opp.apr[t, k] == pytest.approx(apr[t, s, b] - apr[t, s, a])
    assert np.all(np.diff(opp.apr[t]) <= 0)
    assert str(days.symbols[opp.sym[t, 0]]).startswith("ANOM")  # the anomaly quotes the highest APR
    changed = dataclasses.replace(days, rate_now=days.rate_now.copy())
    changed.rate_now[t + 1 :] *= -3.0
    opp2 = rank_opportunities(changed, 4)
    np.testing.assert_array_equal(opp2.sym[: t + 1], opp.sym[: t + 1])
    np.testing.assert_array_equal(opp2.apr[: t + 1], opp.apr[: t + 1])


def test_masks_slots_and_copies(days: FundingDays) -> None:
    cfg = dataclasses.replace(CFG, sample_config=False, trading=TradingConfig(max_positions=2))
    env = FundingEnv(days, cfg, DEFAULT)
    env.reset(seed=0)
    m = env.action_masks()
    assert m[0] and m[1:5].any() and not m[5:].any()  # no slot to exit yet
    env.step(1)
    m = env.action_masks()
    assert m[5] and not m[6:].any() and m[1:5].any()
    env.step(1)
    m = env.action_masks()
    assert m[5] and m[6] and not m[1:5].any() and not m[7:].any()  # max_positions=2: full
    obs_before = env._get_obs()
    env.step(3)  # masked enter: does nothing
    assert env._core.ledger.n_open()[0] == 2 and obs_before[observation_names(cfg).index("slot0_active")] == 1.0
    m[:] = False
    assert env.action_masks()[0]
    env.step(6)  # exit slot 1
    assert env.action_masks()[1:5].any() and not env.action_masks()[6]

    vec = FundingVecEnv(days, CFG, DEFAULT, n_envs=6, seed=1)
    vec.reset()
    a = vec.action_masks()
    assert a.shape == (6, n_actions(CFG)) and a.dtype == bool
    via_method = vec.env_method("action_masks")
    np.testing.assert_array_equal(np.stack(via_method), a)
    a[:] = False
    assert vec.action_masks()[:, 0].all()  # a copy: editing it does not touch the env


def test_batched_equals_single(days: FundingDays) -> None:
    n, seed = 4, 21
    vec = FundingVecEnv(days, CFG, DEFAULT, n_envs=n, seed=seed)
    singles = [FundingEnv(days, CFG, DEFAULT) for _ in range(n)]
    obs_v = vec.reset()
    obs_s = [env.reset(seed=seed + i)[0] for i, env in enumerate(singles)]
    np.testing.assert_array_equal(obs_v, np.stack(obs_s))
    rng = np.random.default_rng(3)
    episodes = 0
    for _ in range(CFG.episode_hours * 2 + 5):
        masks = vec.action_masks()
        np.testing.assert_array_equal(masks, np.stack([e.action_masks() for e in singles]))
        actions = _random_valid(masks, rng)
        obs_v, rew_v, done_v, infos = vec.step(actions)
        for i, env in enumerate(singles):
            o, r, term, trunc, info = env.step(int(actions[i]))
            assert r == rew_v[i] and term == done_v[i] and not trunc
            if term:
                episodes += 1
                np.testing.assert_array_equal(infos[i]["terminal_observation"], o)
                assert infos[i]["net_pnl"] == info["net_pnl"] and infos[i]["done_reason"] == info["done_reason"]
                o, _ = env.reset()
            np.testing.assert_array_equal(obs_v[i], o)
    assert episodes >= n


def test_no_look_ahead(days: FundingDays) -> None:
    """Observations and rewards up to hour h do not change when everything after h is rewritten."""
    cfg = dataclasses.replace(CFG, sample_config=False)
    start, h = 40, 52
    future = {}
    rng = np.random.default_rng(9)
    for name in ("mark", "bid", "ask", "funding_paid", "rate_now", "volume_24h"):
        arr = getattr(days, name).copy()
        arr[h + 1 :] *= rng.uniform(0.5, 1.5, size=arr[h + 1 :].shape)
        future[name] = arr
    future["ask"] = np.maximum(future["ask"], future["bid"])
    changed = dataclasses.replace(days, **future)
    runs = []
    for d in (days, changed):
        env = FundingEnv(d, cfg, DEFAULT)
        obs, _ = env.reset(seed=0, options={"start": start})
        trace = [(obs, None)]
        act_rng = np.random.default_rng(4)
        for _ in range(h - start):
            obs, r, *_ = env.step(int(_random_valid(env.action_masks(), act_rng)))
            trace.append((obs, r))
        runs.append(trace)
    for (o1, r1), (o2, r2) in zip(*runs, strict=True):
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2
    # ...and the data change is visible right after h.
    assert not np.array_equal(days.mark[h + 1], changed.mark[h + 1])


def test_eval_mode_freezes_finished_envs(days: FundingDays) -> None:
    vec = FundingVecEnv(days, CFG, DEFAULT, n_envs=3, seed=0, fixed_starts=[0, 10, 20], auto_reset=False)
    vec.reset()
    assert vec.get_attr("start") == [0, 10, 20]
    for _ in range(CFG.episode_hours):
        _, rew, dones, _ = vec.step(np.zeros(3, dtype=np.int64))
    assert dones.all() and vec.done_mask.all()
    _, rew, dones, _ = vec.step(np.zeros(3, dtype=np.int64))
    assert not dones.any() and not rew.any()
    assert (vec.action_masks() == np.eye(1, n_actions(CFG), 0, dtype=bool)).all()


def _episode_returns(policy: str, d: FundingDays, n: int = 8) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Net P&L and per-reward episode returns of a scripted policy on the same episodes (one rollout)."""
    cfg = FundingEnvConfig(episode_hours=48, top_k=4, sample_config=False)
    vec = FundingVecEnv(d, cfg, DEFAULT, n_envs=n, seed=0, fixed_starts=np.arange(n) * 8, auto_reset=False)
    vec.reset()
    led = vec.ledger
    returns = {"default": np.zeros(n), "v2": np.zeros(n)}
    anomalous_entries = 0
    while not vec.done_mask.all():
        masks = vec.action_masks()
        actions = np.zeros(n, dtype=np.int64)
        if policy == "apr_chaser":  # enter the top quoted APR, exit an hour later, repeat
            actions = np.where(masks[:, 1], 1, 0)
            actions = np.where(led.active[:, 0], 1 + cfg.top_k, actions)
            top = vec._core.opp.sym[vec._core.t, 0]
            anomalous_entries += int(((actions == 1) & np.char.startswith(d.symbols[top], "ANOM")).sum())
        vec.step(actions)
        returns["default"] += combine(DEFAULT, vec.last_components)
        returns["v2"] += combine(V2, vec.last_components)
    if policy == "apr_chaser":
        assert anomalous_entries > 10 * n
    return led.equity - led.equity0, returns


def test_seed004_v2_rewards_apr_chasing_that_loses_money() -> None:
    d = random_funding_days(
        120, 5, seed=11, anomalous=1, anomalous_apr=50.0, anomalous_half_spread=0.002, planted_spread_apr=0.0
    )
    pnl_chase, r_chase = _episode_returns("apr_chaser", d)
    pnl_flat, r_flat = _episode_returns("flat", d)
    assert np.all(pnl_flat == 0) and not r_flat["default"].any() and not r_flat["v2"].any()
    assert pnl_chase.mean() < 0  # churning the anomalous high-APR symbol loses money ...
    assert r_chase["v2"].mean() > r_flat["v2"].mean()  # ... which v2 rewards above doing nothing,
    assert r_chase["default"].mean() < r_flat["default"].mean()  # while the default reward ranks it below
    # The default reward's ranking of episodes follows P&L; v2's is inflated by the quoted-APR bonus.
    assert np.corrcoef(r_chase["default"], pnl_chase)[0, 1] > 0.9


def test_persistence_feature_is_the_pairs_trailing_24h_mean(days: FundingDays) -> None:
    from rl.families.funding.env import trailing_mean

    x = np.array([1.0, np.nan, 3.0, 5.0])
    np.testing.assert_allclose(trailing_mean(x, 2), [1.0, 1.0, 3.0, 4.0])
    opp = rank_opportunities(days, 4)
    apr = days.apr_now
    col = OPP_FEATURES.index("apr_mean_24h")
    for t in (5, 60):
        for k in range(4):
            s, a, b = opp.sym[t, k], opp.long_x[t, k], opp.short_x[t, k]
            window = slice(max(t - 23, 0), t + 1)
            expected = np.nanmean(apr[window, s, b]) - np.nanmean(apr[window, s, a])
            assert opp.features[t, k, col] == pytest.approx(np.clip(expected, -5, 5), rel=1e-5)
