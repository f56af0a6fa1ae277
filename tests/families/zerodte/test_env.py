"""The 0DTE env on hand-made quotes: masks, fills at the next minute, the stop, the tiers, settlement, batching."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rl.core.data import MarketDays
from rl.core.reward import RewardSpec
from rl.families.zerodte.config import EnvConfig
from rl.families.zerodte.data import QUOTE_FIELDS, OptionDays, synthetic_option_days
from rl.families.zerodte.env import (
    BUY_CALL,
    BUY_PUT,
    COMPONENT_NAMES,
    EXIT,
    HOLD,
    TRIM_50,
    ZeroDteEnv,
    ZeroDteVecEnv,
)

NET = RewardSpec.from_dict(
    {"name": "net", "components": {k: {"weight": 1.0, "scale": 0.01} for k in ("pnl", "commission", "spread_cost")}},
    COMPONENT_NAMES,
)
T = 12


def hand_days(call_bid: list[float], spread: float = 0.10, to_close_end: float = 0.0) -> OptionDays:
    """One session of T minutes with one call (strike 100) and one put, the call's bid path given by hand."""
    close = np.full((1, T), 100.0)
    bars = MarketDays(
        np.array(["SPY"]), np.array(["2024-03-04"], dtype="datetime64[D]"), np.zeros((1, T, 2), np.float32),
        close.copy(), close, np.full((1, T), 0.01), np.array([T], np.int32), ("a", "b"),
    )  # fmt: skip
    q = {name: np.zeros((1, T, 2), np.float32) for name in QUOTE_FIELDS}
    q["bid"][0, :, 0] = call_bid
    q["ask"][0, :, 0] = np.asarray(call_bid) + spread
    q["bid"][0, :, 1], q["ask"][0, :, 1] = 1.0, 1.0 + spread
    q["delta"][0, :, 0], q["delta"][0, :, 1] = 0.5, -0.5
    q["iv"][...] = 0.2
    to_close = (np.arange(T, 0, -1) - 1 + to_close_end).astype(np.float32)[None, :]
    return OptionDays(bars, np.array([[100.0, 100.0]]), np.array([[True, False]]), to_close, q)


def cfg(**risk: object) -> EnvConfig:
    rules = {"cooldown_minutes": 3, "flat_minutes_before_close": 0, **risk}
    return EnvConfig(risk=rules, window=2, warmup_minutes=1, entry_cutoff_minutes=0, setup_minutes=2,
                     chase_minutes=2, commission_per_contract=0.5, contracts=4)  # fmt: skip


def test_gymnasium_check_env_passes_on_the_embedded_chain() -> None:
    check_env(ZeroDteEnv(synthetic_option_days(n_days=2, n_minutes=60), EnvConfig(), NET), skip_render_check=True)


def test_a_buy_fills_at_the_next_minutes_ask_and_is_marked_at_its_mid() -> None:
    bids = [1.0, 1.0, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5]
    env = ZeroDteEnv(hand_days(bids), cfg(), NET)
    env.reset(seed=0)
    masks = env.action_masks()
    assert masks.tolist() == [True, True, True, False, False, False]  # flat: no trim, no exit
    _, _, _, _, info = env.step(BUY_CALL)  # decided at minute 1, filled at minute 2's ask 1.60
    core = env._core
    assert core.paid[0] == pytest.approx(1.60)
    # Marked at minute 2's mid 1.55: -0.05 x 100 x 4 of half-spread, and 4 x $0.50 of commission.
    assert info["net_pnl"] == pytest.approx(-0.05 * 400 - 2.0)
    assert env.action_masks().tolist() == [True, False, False, True, True, True]


def test_a_premium_budget_sizes_the_buy_from_the_decision_minutes_ask_within_one_and_contracts() -> None:
    from dataclasses import replace

    bids = [1.0, 0.20, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]  # decision ask 0.30, fill ask 3.10
    sizes = {}
    for budget in (None, 50.0, 1000.0, 10.0):
        env = ZeroDteEnv(hand_days(bids), replace(cfg(), premium_budget=budget), NET)
        env.reset(seed=0)
        env.step(BUY_CALL)
        sizes[budget] = int(env._core.ledger.pos[0])
        assert env._core.observe()[0, env._core._w] == pytest.approx(1.0)  # all of the buy is held
    # $50 at the decision minute's $0.30 ask buys 1 (not 0, never the later $3.10 ask); $1,000 buys 33,
    # capped at the 4 `contracts` allow; without a budget every buy takes `contracts`.
    assert sizes == {None: 4, 50.0: 1, 1000.0: 4, 10.0: 1}
    env = ZeroDteEnv(hand_days(bids), replace(cfg(), premium_budget=60.0, contracts=10), NET)
    env.reset(seed=0)
    env.step(BUY_CALL)
    assert env._core.ledger.pos[0] == 2  # floor(60 / 30)


def test_the_stop_sells_everything_at_the_bid_of_the_first_mark_that_reaches_it() -> None:
    bids = [1.0, 1.0, 1.0, 1.0, 0.8, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]
    env = ZeroDteEnv(hand_days(bids), cfg(), NET)
    env.reset(seed=0)
    env.step(BUY_CALL)  # fills at minute 2's ask 1.10
    env.step(HOLD)  # minute 3: mid 1.05, above the stop at 1.10 x 0.85 = 0.935
    core = env._core
    assert core.ledger.pos[0] == 4
    _, _, done, _, info = env.step(HOLD)  # minute 4: mid 0.85 reaches it; sold at minute 4's bid 0.80
    assert not done and core.ledger.pos[0] == 0 and core.stops[0] == 1
    assert info["stop_loss"] == -1.0
    assert core.worst_beyond_stop[0] == pytest.approx((1.10 * 0.85 - 0.80) / 1.10)
    # of which the mark 0.85 already lay 0.085 past the stop (the gap) and the bid 0.05 below the mark (slippage)
    assert core.worst_stop_gap[0] == pytest.approx((1.10 * 0.85 - 0.85) / 1.10)
    assert core.worst_stop_slippage[0] == pytest.approx(0.05 / 1.10)
    assert core.trade_return_sum[0] == pytest.approx((0.80 - 1.10) * 400 / (1.10 * 400) - 4.0 / 440)
    assert not env.action_masks()[BUY_CALL]  # the cooldown: 3 minutes after the exit at minute 4


def test_take_profit_tiers_pay_once_and_their_exit_sells_a_share_next_minute() -> None:
    bids = [1.0, 1.0, 1.0, 1.30, 1.45, 1.45, 1.45, 1.45, 1.45, 1.45, 1.45, 1.45]
    env = ZeroDteEnv(hand_days(bids), cfg(tier_exits=[0.0, 0.5, 0.0, 0.0, 0.0, 1.0]), NET)
    env.reset(seed=0)
    env.step(BUY_CALL)  # paid 1.10 at minute 2
    _, _, _, _, info = env.step(HOLD)  # minute 3 mid 1.35: +22.7%, tier 20 only
    assert info["good_buy_call"] == 1.0 and info["tp_tiers"] == 1.0
    _, _, _, _, info = env.step(HOLD)  # minute 4 mid 1.50: +36%, tier 30, whose exit sells half next minute
    assert info["good_buy_call"] == 0.0 and info["tp_tiers"] == 1.0
    assert env._core.ledger.pos[0] == 4
    env.step(HOLD)
    assert env._core.ledger.pos[0] == 2
    assert env._core.tier_hits[0].tolist() == [1, 1, 0, 0, 0, 0]


def test_trims_round_to_whole_contracts_and_exit_flattens() -> None:
    env = ZeroDteEnv(hand_days([1.0] * T), cfg(), NET)
    env.reset(seed=0)
    env.step(BUY_CALL)
    env.step(TRIM_50)
    assert env._core.ledger.pos[0] == 2
    env.step(TRIM_50)
    assert env._core.ledger.pos[0] == 1
    assert env.action_masks().tolist() == [True, False, False, False, False, True]
    env.step(EXIT)
    assert env._core.ledger.pos[0] == 0 and env._core.ledger.round_trips[0] == 1


def test_a_contract_without_a_quote_next_minute_cannot_be_traded_until_it_has_one() -> None:
    days = hand_days([1.0] * T)
    days.quotes["bid"][0, 2, 0] = np.nan
    env = ZeroDteEnv(days, cfg(), NET)
    env.reset(seed=0)
    env.step(BUY_CALL)  # minute 2 has no call quote: the buy waits, nothing is paid
    assert env._core.ledger.pos[0] == 0 and env._core.ledger.equity[0] == 0.0
    assert days.missing_quotes() == 1


def test_min_volume_lets_a_buy_take_only_a_contract_that_traded_enough_in_the_decision_minute() -> None:
    days = hand_days([1.0] * T)
    days.volume[0, :, 0] = np.where(np.arange(T) >= 3, 30.0, 5.0)  # the call trades 5 a minute, then 30 from t=3
    days.volume[0, :, 1] = np.nan  # the put's volume is not reported: it never qualifies
    rules = {"contract": {"min_volume": 20}}
    env = ZeroDteEnv(days, EnvConfig.from_dict({**cfg().to_dict(), **rules}), NET)
    env.reset(seed=0)
    seen = []
    for _ in range(4):
        mask = env.action_masks()
        seen.append((int(env._core.t[0]), bool(mask[BUY_CALL]), bool(mask[BUY_PUT])))
        env.step(HOLD)
    assert [(t, call) for t, call, _ in seen] == [(t, t >= 3) for t, _, _ in seen] and seen[0][0] < 3 <= seen[-1][0]
    assert not any(put for _, _, put in seen)
    plain = ZeroDteEnv(days, cfg(), NET)  # min_volume 0: volume is not consulted
    plain.reset(seed=0)
    assert plain.action_masks()[BUY_CALL] and plain.action_masks()[BUY_PUT]


def test_min_volume_on_a_chain_without_volumes_is_refused() -> None:
    with pytest.raises(ValueError, match="contract.min_volume is 20 but the chain reports no volume"):
        ZeroDteEnv(hand_days([1.0] * T), EnvConfig.from_dict({**cfg().to_dict(), "contract": {"min_volume": 20}}), NET)


def test_cash_settlement_pays_intrinsic_value_at_the_last_close() -> None:
    days = hand_days([1.0] * T)
    days.bars.close[0, -1] = 101.5  # the underlying's closing print: the 100 call is worth 1.50
    env = ZeroDteEnv(days, cfg(settlement="cash_at_expiry"), NET)
    env.reset(seed=0)
    env.step(BUY_CALL)  # paid 1.10, 4 contracts, $2 commission
    done, info = False, {}
    while not done:
        _, _, done, _, info = env.step(HOLD)
    assert info["net_pnl"] == pytest.approx((1.50 - 1.10) * 400 - 2.0 - 2.0)  # commission both sides


def test_flat_before_close_forbids_holding_into_the_last_minutes() -> None:
    env = ZeroDteEnv(hand_days([1.0] * T), cfg(flat_minutes_before_close=4), NET)
    env.reset(seed=0)
    env.step(BUY_CALL)
    positions = []
    done = False
    while not done:
        _, _, done, _, _ = env.step(HOLD)
        positions.append(int(env._core.ledger.pos[0]))
    assert positions[-5:] == [0, 0, 0, 0, 0] and max(positions) == 4


def test_env_i_of_the_batch_plays_exactly_what_the_single_env_plays_with_seed_plus_i() -> None:
    days = synthetic_option_days(n_days=3, n_minutes=60, seed=3)
    vec = ZeroDteVecEnv(days, EnvConfig(), NET, n_envs=3, seed=10)
    singles = [ZeroDteEnv(days, EnvConfig(), NET) for _ in range(3)]
    obs_v = vec.reset()
    obs_s = [e.reset(seed=10 + i)[0] for i, e in enumerate(singles)]
    rng = np.random.default_rng(0)
    episodes = 0
    for _ in range(70):  # two episodes and more each (28 decisions a session)
        np.testing.assert_array_equal(obs_v, np.stack(obs_s))
        masks = vec.action_masks()
        np.testing.assert_array_equal(masks, np.stack([e.action_masks() for e in singles]))
        actions = np.argmax(rng.random(masks.shape) * masks, axis=1)
        obs_v, rewards, dones, infos = vec.step(actions)
        for i, env in enumerate(singles):
            o, r, term, trunc, info = env.step(int(actions[i]))
            assert rewards[i] == r and dones[i] == term and not trunc
            for name in COMPONENT_NAMES:
                assert vec.last_components[name][i] == info[name], name
            if term:
                episodes += 1
                np.testing.assert_array_equal(infos[i]["terminal_observation"], o)
                assert infos[i]["net_pnl"] == info["net_pnl"] and infos[i]["stops"] == info["stops"]
                o, _ = env.reset()
            obs_s[i] = o
    assert episodes >= 6


def test_a_masked_action_acts_as_hold_and_buying_in_a_position_is_masked() -> None:
    env = ZeroDteEnv(hand_days([1.0] * T), cfg(), NET)
    env.reset(seed=0)
    env.step(EXIT)  # invalid when flat: HOLD
    assert env._core.ledger.pos[0] == 0
    env.step(BUY_PUT)
    assert env._core.side[0] == -1
    env.step(BUY_CALL)  # masked while holding the put: nothing changes
    assert env._core.side[0] == -1 and env._core.ledger.pos[0] == 4


def test_the_observation_is_the_last_window_feature_rows_then_the_state() -> None:
    days = synthetic_option_days(n_days=1, n_minutes=60, seed=1)
    env = ZeroDteEnv(days, EnvConfig(), NET)
    obs, _ = env.reset(seed=0)
    t = EnvConfig().warmup_minutes
    window = days.bars.features[0, t - 19 : t + 1].reshape(-1)
    np.testing.assert_array_equal(obs[: window.size], window)
    assert obs.size == window.size + 14 and obs[window.size] == 0.0  # flat


def test_nothing_after_minute_t_changes_what_the_agent_saw_or_could_do_up_to_t() -> None:
    days = synthetic_option_days(n_days=1, n_minutes=60, seed=2)
    later = OptionDays(
        days.bars.__class__(**{**days.bars.__dict__, "features": days.bars.features.copy()}),
        days.strike, days.is_call, days.to_close, {k: v.copy() for k, v in days.quotes.items()},
    )  # fmt: skip
    cut = 45
    later.bars.features[0, cut + 1 :] += 3.0
    later.quotes["bid"][0, cut + 1 :] *= 0.5
    runs = []
    for d in (days, later):
        env = ZeroDteEnv(d, EnvConfig(), NET)
        obs, _ = env.reset(seed=0)
        seen = []
        for _ in range(EnvConfig().warmup_minutes, cut):
            seen.append((obs.copy(), env.action_masks()))
            obs, *_ = env.step(BUY_CALL if env.action_masks()[BUY_CALL] else HOLD)
        runs.append(seen)
    for (o1, m1), (o2, m2) in zip(*runs, strict=True):
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(m1, m2)
