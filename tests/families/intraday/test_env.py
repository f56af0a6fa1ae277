"""Intraday envs: Gymnasium/SB3 conformance, masks, no look-ahead, batched == single, data and config."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from rl.core.data import MarketDays, random_walk_days
from rl.core.reward import RewardSpec
from rl.families.intraday.accounting import COMPONENTS
from rl.families.intraday.config import EnvConfig
from rl.families.intraday.env import BUY, CLOSE, HOLD, SELL, STATE_NAMES, IntradayEnv, IntradayVecEnv, observation_names

SPEC = RewardSpec.from_dict(
    {
        "name": "test",
        "components": {
            "pnl": {"weight": 1.0, "scale": 0.01},
            "commission": {"weight": 1.0, "scale": 0.01},
            "spread_cost": {"weight": 1.0, "scale": 0.01},
            "drawdown": {"weight": 0.5, "scale": 0.01},
            "win_bonus": {"weight": 0.1},
            "sharpe": {"weight": 0.01},
            "loss_penalty": {"weight": 0.01},
        },
    },
    COMPONENTS,
)
CFG = EnvConfig(warmup_minutes=5, flat_minutes_before_close=3, loss_cut=-60.0, profit_lock=60.0)


@pytest.fixture(scope="module")
def days() -> MarketDays:
    return random_walk_days(5, [40, 55, 32, 60, 47], n_features=4, seed=11)


def _random_valid(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.argmax(rng.random(mask.shape) * mask, axis=-1)


# ------------------------------------------------------------------------------------------- conformance
def test_gymnasium_and_sb3_check_env_pass(days: MarketDays) -> None:
    gym_check_env(IntradayEnv(days, CFG, SPEC))
    sb3_check_env(IntradayEnv(days, CFG, SPEC), warn=True)


def test_reset_uses_np_random_and_seed(days: MarketDays) -> None:
    env = IntradayEnv(days, CFG, SPEC)
    picks = [env.reset(seed=s)[1]["day_index"] for s in range(20)]
    assert len(set(picks)) > 1
    assert [env.reset(seed=s)[1]["day_index"] for s in range(20)] == picks
    env.reset(seed=3)
    seq = [env.reset()[1]["day_index"] for _ in range(10)]
    env.reset(seed=3)
    assert [env.reset()[1]["day_index"] for _ in range(10)] == seq
    assert env.reset(seed=0, options={"day_index": 4})[1]["day_index"] == 4
    assert IntradayEnv(days, CFG, SPEC, day_index=2).reset(seed=9)[1]["day_index"] == 2


def test_observation_layout(days: MarketDays) -> None:
    env = IntradayEnv(days, CFG, SPEC, day_index=1)
    obs, _ = env.reset(seed=0)
    f = days.n_features
    names = observation_names(days.feature_names)
    assert names[:f] == days.feature_names and names[f:] == STATE_NAMES and obs.shape == (len(names),)
    t = CFG.warmup_minutes
    np.testing.assert_array_equal(obs[:f], days.features[1, t])
    assert list(obs[f:]) == [0.0, 0.0, 0.0, pytest.approx(t / (days.length[1] - 1))]
    obs, _, _, _, info = env.step(BUY)
    t += 1
    np.testing.assert_array_equal(obs[:f], days.features[1, t])
    unrealized = 100 * (days.close[1, t] - days.open[1, t]) - 1.0 - 100 * days.spread[1, t] / 2
    assert obs[f] == 1.0
    assert obs[f + 1] == pytest.approx(unrealized / CFG.pnl_scale, rel=1e-5)
    assert obs[f + 2] == pytest.approx(info["net_pnl"] / CFG.pnl_scale, rel=1e-5)
    assert obs[f + 3] == pytest.approx(t / (days.length[1] - 1))
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)


def test_masks_follow_position_and_last_minutes(days: MarketDays) -> None:
    env = IntradayEnv(days, dataclasses.replace(CFG, loss_cut=None, profit_lock=None), SPEC, day_index=0)
    env.reset(seed=0)
    assert list(env.action_masks()) == [True, True, True, False]
    env.step(BUY)
    assert list(env.action_masks()) == [True, False, True, True]
    env.step(SELL)
    assert list(env.action_masks()) == [True, True, False, True]
    length, k = int(days.length[0]), CFG.flat_minutes_before_close
    t = CFG.warmup_minutes + 2
    while t + 1 < length - k:  # fills before the last k bars: opening allowed
        assert env.action_masks()[BUY]
        env.step(HOLD)
        t += 1
    assert list(env.action_masks()) == [True, False, False, True]  # short, last minutes: HOLD/CLOSE only
    obs, *_ = env.step(BUY)  # invalid BUY acts as HOLD: exposure cannot grow in the last minutes
    assert obs[days.n_features] == -1.0
    env.step(CLOSE)
    assert list(env.action_masks()) == [True, False, False, False]
    mask = env.action_masks()
    mask[:] = False
    assert env.action_masks()[HOLD]  # a copy, not the live state


# --------------------------------------------------------------------------------------------- look-ahead
def _perturbed(days: MarketDays, after: int, seed: int) -> MarketDays:
    """Same days, with every feature and price at indices > `after` replaced by noise."""
    rng = np.random.default_rng(seed)
    feats, open_, close, spread = (a.copy() for a in (days.features, days.open, days.close, days.spread))
    feats[:, after + 1 :] = rng.standard_normal(feats[:, after + 1 :].shape)
    open_[:, after + 1 :] *= 1 + rng.uniform(-0.01, 0.01, open_[:, after + 1 :].shape)
    close[:, after + 1 :] *= 1 + rng.uniform(-0.01, 0.01, close[:, after + 1 :].shape)
    spread[:, after + 1 :] += 0.05
    return dataclasses.replace(days, features=feats, open=open_, close=close, spread=spread)


@pytest.mark.parametrize("t_cut", [5, 12, 25])
def test_no_look_ahead_in_observations(days: MarketDays, t_cut: int) -> None:
    """The observation at t is unchanged when everything after t changes."""
    cfg = dataclasses.replace(CFG, loss_cut=None, profit_lock=None)
    other = _perturbed(days, t_cut, seed=t_cut)
    a, b = IntradayEnv(days, cfg, SPEC, day_index=3), IntradayEnv(other, cfg, SPEC, day_index=3)
    oa, _ = a.reset(seed=0)
    ob, _ = b.reset(seed=0)
    rng = np.random.default_rng(0)
    t = cfg.warmup_minutes
    while t <= t_cut:
        np.testing.assert_array_equal(oa, ob)
        np.testing.assert_array_equal(a.action_masks(), b.action_masks())
        act = int(_random_valid(a.action_masks(), rng))
        oa, *_ = a.step(act)
        ob, *_ = b.step(act)
        t += 1
    assert not np.array_equal(oa, ob)  # ... and the perturbation is visible once t passes the cut


def test_fill_uses_next_open_and_mark_next_close(days: MarketDays) -> None:
    cfg = dataclasses.replace(CFG, loss_cut=None, profit_lock=None)
    t = cfg.warmup_minutes

    def first_step(d: MarketDays) -> dict:
        env = IntradayEnv(d, cfg, SPEC, day_index=0)
        env.reset(seed=0)
        return env.step(BUY)[4]

    base = first_step(days)
    for arr_name, index, delta, expected in (
        ("open", t + 1, 0.10, {"pnl": -10.0}),  # fill 10 cents worse on 100 shares
        ("close", t + 1, 0.10, {"pnl": +10.0}),  # marked 10 cents higher
        ("spread", t + 1, 0.04, {"spread_cost": -2.0}),  # half-spread of the fill bar
        ("open", t, 5.0, {}),  # the decision bar's own open: already past
        ("open", t + 2, 5.0, {}),  # two bars ahead: not yet known
        ("close", t, 5.0, {}),
    ):
        arr = getattr(days, arr_name).copy()
        arr[0, index] += delta
        info = first_step(dataclasses.replace(days, **{arr_name: arr}))
        for name in ("pnl", "commission", "spread_cost"):
            assert info[name] == pytest.approx(base[name] + expected.get(name, 0.0), abs=1e-9), (
                arr_name,
                index,
            )


# ----------------------------------------------------------------------------------------- batched == single
def test_vec_env_reproduces_single_envs_exactly(days: MarketDays) -> None:
    n, seed, steps = 5, 42, 220
    vec = IntradayVecEnv(days, CFG, SPEC, n, seed=seed)
    singles = [IntradayEnv(days, CFG, SPEC) for _ in range(n)]
    obs = vec.reset()
    single_obs = np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(singles)])
    np.testing.assert_array_equal(obs, single_obs)
    assert [info["day_index"] for info in vec.reset_infos] == vec.get_attr("day_index")
    rng = np.random.default_rng(7)
    episodes, reasons = 0, set()
    for _ in range(steps):
        masks = vec.action_masks()
        np.testing.assert_array_equal(masks, np.stack([e.action_masks() for e in singles]))
        actions = _random_valid(masks, rng)
        obs, rewards, dones, infos = vec.step(actions)
        for i, env in enumerate(singles):
            o, r, term, trunc, info = env.step(int(actions[i]))
            assert rewards[i] == r
            assert dones[i] == (term or trunc)
            for name, value in vec.last_components.items():
                assert value[i] == info[name], name
            assert vec.last_net_pnl[i] == info["net_pnl"]
            if term or trunc:
                episodes += 1
                reasons.add(info["done_reason"])
                np.testing.assert_array_equal(infos[i]["terminal_observation"], o)
                assert infos[i]["TimeLimit.truncated"] == trunc
                for key, value in info.items():
                    assert infos[i][key] == value, key
                o, _ = env.reset()
            else:
                assert infos[i] == {}
            np.testing.assert_array_equal(obs[i], o)
    assert episodes >= 2 * n and reasons == {"loss_cut", "profit_lock", "end_of_data"}


def test_fixed_days_and_evaluation_mode(days: MarketDays) -> None:
    fixed = np.array([4, 0, 2, 2])
    vec = IntradayVecEnv(days, CFG, SPEC, 4, seed=0, fixed_days=fixed, auto_reset=False)
    vec.reset()
    assert vec.get_attr("day_index") == fixed.tolist()
    singles = [IntradayEnv(days, CFG, SPEC, day_index=int(d)) for d in fixed]
    for e in singles:
        e.reset(seed=0)
    rng = np.random.default_rng(1)
    live = np.ones(4, bool)
    frozen: dict[int, np.ndarray] = {}
    n_done = np.zeros(4, int)
    while not vec.done_mask.all():
        masks = vec.action_masks()
        for i in frozen:
            assert list(masks[i]) == [True, False, False, False]
        actions = _random_valid(masks, rng)
        obs, rewards, dones, infos = vec.step(actions)
        n_done += dones
        for i in range(4):
            if i in frozen:
                np.testing.assert_array_equal(obs[i], frozen[i])
                assert rewards[i] == 0.0 and not dones[i] and vec.last_components["pnl"][i] == 0.0
                continue
            o, r, term, trunc, _ = singles[i].step(int(actions[i]))
            assert rewards[i] == r and dones[i] == (term or trunc)
            np.testing.assert_array_equal(obs[i], o)
            if dones[i]:
                live[i] = False
                frozen[i] = obs[i].copy()
    assert list(n_done) == [1, 1, 1, 1] and not live.any()
    vec.reset()
    assert not vec.done_mask.any() and vec.action_masks()[:, BUY].all()


def test_masks_are_copies_and_env_method_matches(days: MarketDays) -> None:
    from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported

    vec = IntradayVecEnv(days, CFG, SPEC, 6, seed=0)
    vec.reset()
    assert is_masking_supported(vec)
    before = vec.action_masks()
    kept = before.copy()
    vec.step(np.full(6, BUY))
    np.testing.assert_array_equal(before, kept)  # the array handed out earlier did not change
    after = vec.action_masks()
    assert not after[:, BUY].any()
    after[:] = False
    assert vec.action_masks()[:, HOLD].all()
    via_method = vec.env_method("action_masks")
    assert isinstance(via_method, np.ndarray) and via_method.shape == (6, 4)
    stacked = get_action_masks(vec)
    assert type(stacked) is np.ndarray and stacked.dtype == bool
    np.testing.assert_array_equal(stacked, vec.action_masks())
    np.testing.assert_array_equal(vec.env_method("action_masks", indices=[1, 3]), vec.action_masks()[[1, 3]])
    np.testing.assert_array_equal(np.stack(list(via_method)), stacked)


def test_attrs_seed_wrapping_and_shared_infos(days: MarketDays) -> None:
    vec = IntradayVecEnv(days, CFG, SPEC, 3, seed=5)
    first = vec.reset()
    assert vec.get_attr("render_mode") == [None] * 3
    assert vec.get_attr("position") == [0, 0, 0] and vec.get_attr("t", indices=1) == [CFG.warmup_minutes]
    assert vec.env_is_wrapped(object) == [False] * 3
    vec.set_attr("auto_reset", True)
    with pytest.raises(ValueError, match="all indices"):
        vec.set_attr("auto_reset", False, indices=[0])
    with pytest.raises(AttributeError):
        vec.set_attr("position", 1)
    with pytest.raises(AttributeError):
        vec.get_attr("no_such_attribute")
    vec.step(np.zeros(3, dtype=np.int64))
    assert vec.seed(5) == [5, 6, 7]
    np.testing.assert_array_equal(vec.reset(), first)  # seed() applies at the next reset
    _, _, dones, infos = vec.step(np.zeros(3, dtype=np.int64))
    assert not dones.any() and all(info == {} for info in infos)
    with pytest.raises(TypeError, match="read-only"):
        infos[0]["episode"] = 1
    copy = infos[0].copy()
    copy["x"] = 1
    assert infos[1] == {} and type(copy) is dict
    with pytest.raises(ValueError, match="actions"):
        vec.step(np.array([0, 1, 7]))
    with pytest.raises(ValueError, match="expected 3"):
        vec.step(np.array([0, 1]))


def test_maskable_ppo_learns_a_few_steps_on_the_vec_env(days: MarketDays) -> None:
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.vec_env import VecMonitor

    vec = VecMonitor(IntradayVecEnv(days, CFG, SPEC, 8, seed=0))
    model = MaskablePPO("MlpPolicy", vec, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.set_logger(Logger(folder=None, output_formats=[]))
    model.learn(total_timesteps=512)
    buf = model.rollout_buffer
    obs_pos = buf.observations[..., days.n_features]
    masks = buf.action_masks.reshape(*obs_pos.shape, 4).astype(bool)
    # recorded masks match the recorded observation's position (a view would record the next step's masks)
    assert not np.any(masks[..., BUY] & (obs_pos == 1))
    assert not np.any(masks[..., SELL] & (obs_pos == -1))
    assert not np.any(masks[..., CLOSE] & (obs_pos == 0))
    assert len(model.ep_info_buffer) > 0


# ------------------------------------------------------------------------------------------ config and data
def test_env_config_validation() -> None:
    assert EnvConfig.from_dict({"shares": 50}).shares == 50
    assert EnvConfig.from_dict({"loss_cut": None}).loss_cut is None
    with pytest.raises(ValueError, match="unknown key"):
        EnvConfig.from_dict({"sharez": 50})
    for bad in ({"shares": 0}, {"shares": 1.5}, {"loss_cut": 5.0}, {"profit_lock": -1}, {"pnl_scale": 0},
                {"commission_per_share": float("nan")}, {"warmup_minutes": -1}):  # fmt: skip
        with pytest.raises(ValueError, match="EnvConfig"):
            EnvConfig(**bad)
    assert EnvConfig.from_dict(EnvConfig().to_dict()) == EnvConfig()


def test_env_rejects_days_shorter_than_warmup() -> None:
    short = random_walk_days(2, [40, 20], seed=0)
    with pytest.raises(ValueError, match="warmup"):
        IntradayEnv(short, EnvConfig(warmup_minutes=30), SPEC)


def _frame() -> pl.DataFrame:
    rows = []
    for sym, d, n in (
        ("SPY", date(2024, 1, 2), 5),
        ("SPY", date(2024, 1, 3), 3),
        ("SPX", date(2024, 1, 2), 4),
    ):
        for m in range(n):
            rows.append(
                {
                    "symbol": sym,
                    "session_date": d,
                    "minute": datetime(d.year, d.month, d.day, 14, 30) + timedelta(minutes=m),
                    "open": 470.0 + m,
                    "close": 470.5 + m,
                    "mean_spread": None if sym == "SPX" or m == 1 else 0.01 * (m + 1),
                    "ret_1m": float("nan") if m == 0 else 0.1 * m,
                    "sma_5_20": 1.0,
                }
            )
    return pl.DataFrame(rows).with_columns(pl.col("minute").cast(pl.Datetime("ns"))).reverse()


def test_market_days_from_frame_and_round_trip(tmp_path) -> None:
    md = MarketDays.from_frame(_frame(), ["ret_1m", "sma_5_20"])
    assert list(md.symbols) == ["SPX", "SPY", "SPY"] and list(md.length) == [4, 5, 3]
    assert md.dates[1] == np.datetime64("2024-01-02") and md.features.shape == (3, 5, 2)
    assert md.features[1, 0, 0] == 0.0 and md.features[1, 2, 0] == pytest.approx(0.2)
    assert list(md.spread[1, :5]) == pytest.approx([0.01, 0.01, 0.03, 0.04, 0.05])  # gap carried forward
    assert np.all(md.spread[0] == 0.0)  # an index has no quotes
    assert md.close[2, 4] == md.close[2, 2] and np.all(np.isfinite(md.open))  # padding repeats the last bar
    path = tmp_path / "d" / "days.npz"
    md.save_npz(path)
    back = MarketDays.load_npz(path)
    assert back.content_hash() == md.content_hash() and back.feature_names == md.feature_names
    changed = md.close.copy()
    changed[1, 1] += 0.01
    assert dataclasses.replace(md, close=changed).content_hash() != md.content_hash()
    assert list(md.select_dates([date(2024, 1, 3)]).symbols) == ["SPY"]
    assert md.subset([2, 0]).n_days == 2 and md.subset(np.array([True, False, False])).symbols[0] == "SPX"
    with pytest.raises(ValueError, match="none of"):
        md.select_dates(["2023-01-01"])


def test_market_days_from_frame_rejects_bad_input() -> None:
    frame = _frame()
    with pytest.raises(ValueError, match="missing column"):
        MarketDays.from_frame(frame.drop("open"), ["ret_1m"])
    with pytest.raises(ValueError, match="missing column"):
        MarketDays.from_frame(frame, ["no_such_feature"])
    with pytest.raises(ValueError, match="close"):
        MarketDays.from_frame(frame.with_columns(pl.lit(-1.0).alias("close")), ["ret_1m"])
    with pytest.raises(ValueError, match="duplicate minute"):
        MarketDays.from_frame(pl.concat([frame, frame.head(1)]), ["ret_1m"])


def test_session_close_is_terminal_not_truncated(days: MarketDays) -> None:
    """The close liquidates the position: the episode really ends, so SB3 must not bootstrap a value past it."""
    cfg = dataclasses.replace(CFG, loss_cut=None, profit_lock=None)
    env = IntradayEnv(days, cfg, SPEC, day_index=2)
    env.reset(seed=0)
    steps, terminated, truncated, info = 0, False, False, {}
    while not (terminated or truncated):
        _, _, terminated, truncated, info = env.step(BUY if env.action_masks()[BUY] else HOLD)
        steps += 1
    assert terminated and not truncated
    assert info["done_reason"] == "end_of_data" and info["position"] == 0
    assert steps == int(days.length[2]) - 1 - cfg.warmup_minutes

    vec = IntradayVecEnv(days, cfg, SPEC, 1, seed=0, fixed_days=np.array([2]))
    vec.reset()
    for _ in range(steps):
        _, _, dones, infos = vec.step(np.array([HOLD]))
    assert dones[0] and infos[0]["TimeLimit.truncated"] is False
