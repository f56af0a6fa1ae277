"""Funding evaluation: per-trip ledger records, baselines, every (start, config) played once, the checks that make
seed 004's failure (reward up, money down, one symbol farmed) impossible to miss, warehouse rows and the report."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from rl.core.report import REPORT_FILE, ReportContext
from rl.families.funding.accounting import FundingLedger
from rl.families.funding.baselines import (
    ACTION_KINDS,
    HOLD,
    GreedyRule,
    action_kinds,
    funding_baselines,
    greedy,
    never_trade,
)
from rl.families.funding.config import FundingEnvConfig, TradingConfig, load_funding_reward
from rl.families.funding.data import FundingDays, random_funding_days
from rl.families.funding.env import FundingEnv, FundingVecEnv, n_actions, observation_names
from rl.families.funding.evaluate import (
    FundingEvalResult,
    evaluate_funding_policy,
    evaluate_funding_with_baselines,
    evaluation_configs,
    evaluation_starts,
)
from rl.families.funding.metrics import (
    flat_collapse,
    funding_metrics,
    funding_run_checks,
    reward_pnl_alignment,
    symbol_breakdown,
    symbol_concentration,
)
from rl.families.funding.report import build_funding_report
from tests import ROOT
from tests.families.funding.helpers import make_ledger

CONFIGS = ROOT / "configs"
DEFAULT = load_funding_reward(CONFIGS / "rewards" / "funding.yaml")
V2 = load_funding_reward(CONFIGS / "rewards" / "funding_seed004_v2.yaml")
CFG = FundingEnvConfig(episode_hours=48, top_k=4)
RULE = GreedyRule()
ROW_KEYS = {
    "slice",
    "checkpoint_id",
    "policy",
    "policy_kind",
    "symbol",
    "session_date",
    "reward",
    "net_pnl",
    "gross_pnl",
    "commission",
    "spread_cost",
    "n_trades",
    "wins",
    "n_steps",
    "done_reason",
    "action_counts_json",
}


@pytest.fixture(scope="module")
def planted() -> FundingDays:
    """A persistent 300% APR spread on SYM0USDT and one illiquid anomaly quoting 20x APR."""
    return random_funding_days(240, 6, seed=3, planted_spread_apr=3.0, anomalous=1)


@pytest.fixture(scope="module")
def chase_days() -> FundingDays:
    """Seed 004's trap: ANOM0USDT quotes 5000% APR that its price drift and spread more than erase."""
    return random_funding_days(240, 5, seed=11, anomalous=1, anomalous_apr=50.0, anomalous_half_spread=0.002)


def _apr_chaser(cfg: FundingEnvConfig):
    """Enter the top quoted APR, exit it an hour later, repeat (what the v2 reward teaches)."""
    k = cfg.top_k

    def policy(obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return np.where(masks[:, 1 + k], 1 + k, np.where(masks[:, 1], 1, HOLD)).astype(np.int64)

    return policy


@pytest.fixture(scope="module")
def v2_chase(chase_days: FundingDays) -> dict[str, FundingEvalResult]:
    return evaluate_funding_with_baselines(
        _apr_chaser(CFG), chase_days, CFG, V2, evaluation_configs(CFG.trading), RULE, stride_hours=24
    )


@pytest.fixture(scope="module")
def greedy_planted(planted: FundingDays) -> FundingEvalResult:
    return evaluate_funding_policy(
        greedy(CFG, RULE), planted, CFG, DEFAULT, "greedy", evaluation_configs(CFG.trading), stride_hours=24
    )


# ---------------------------------------------------------------------------------------------- ledger records
def _hand_days(hours: int = 12, jump_at: int | None = None, jump: float = 1.0, half: float = 0.0) -> FundingDays:
    """One symbol on two venues at a flat $100 mark, no funding; the short venue's mark can jump at `jump_at`."""
    shape = (hours, 1, 2)
    mark = np.full(shape, 100.0)
    if jump_at is not None:
        mark[jump_at:, 0, 1] *= jump
    spread = np.full(shape, half)
    return FundingDays(
        timeline=np.datetime64("2025-10-22T00:00", "ns") + np.arange(hours) * np.timedelta64(1, "h"),
        symbols=np.array(["XUSDT"]),
        exchanges=np.array(["a", "b"]),
        mark=mark,
        bid=mark - spread,
        ask=mark + spread,
        funding_paid=np.zeros(shape),
        rate_now=np.full(shape, 1e-4),
        interval_h=np.full(shape, 8, dtype=np.int32),
        volume_24h=np.full(shape, 1e7),
    )


def _step(led: FundingLedger, t: int, action: str = "hold", slot: int = -1, last: bool = False, sel=None):
    n = led.n if sel is None else len(sel)
    full = np.full
    return led.step(
        slice(None) if sel is None else np.asarray(sel),
        full(n, t),
        full(n, slot if action == "exit" else -1),
        full(n, action == "enter"),
        full(n, 0),
        full(n, 0),
        full(n, 1),
        full(n, 0.5),
        full(n, last),
    )


def test_closed_trip_records_on_a_hand_made_case() -> None:
    d = _hand_days(12, half=0.05)
    led = make_ledger(d, taker_fee_bps=5.0, leverage=2.0, max_positions=3)
    _step(led, 0, "enter")
    assert led.entered_sym.tolist() == [0] and np.isnan(led.closed_net).all()
    q0 = led.qty[0, 0]
    _step(led, 1, "enter")
    q1 = led.qty[0, 1]
    _step(led, 2)
    assert np.isnan(led.closed_net).all() and np.isnan(led.closed_hours).all() and led.entered_sym[0] == -1
    _step(led, 3, "exit", slot=0)
    # Flat marks, no funding: a trip's net P&L is its four leg trades' costs (taker fee + half-spread each).
    trip_cost = 2 * (5e-4 * q0 * 200.0 + q0 * 0.1)
    assert led.closed_hours[0].tolist()[:1] == [3.0] and np.isnan(led.closed_hours[0, 1:]).all()
    assert led.closed_net[0, 0] == pytest.approx(-trip_cost) and led.sym[0, 0] == 0
    eq_before = led.equity[0]
    _, code = _step(led, 4, last=True)  # the episode's end closes slot 1 at t+1 = 5: held 5 - 1 = 4 hours
    assert code[0] != 0 and led.closed_hours[0, 1] == 4.0 and np.isnan(led.closed_net[0, [0, 2, 3, 4]]).all()
    assert led.closed_net[0, 1] == pytest.approx(-2 * (5e-4 * q1 * 200.0 + q1 * 0.1))
    assert led.equity[0] - eq_before == pytest.approx(-(5e-4 * q1 * 200.0 + q1 * 0.1))
    assert led.round_trips[0] == 2
    # Conservation: the trips' net P&L is the whole equity change; half-spreads are part of the fees.
    assert led.closed_net[0, 1] - trip_cost == pytest.approx(led.equity[0] - led.equity0[0])
    assert led.spread[0] == pytest.approx(-2 * (q0 + q1) * 0.1) and led.fees[0] < led.spread[0] < 0


def test_entry_liquidated_in_its_first_hour_is_a_recorded_trip() -> None:
    d = _hand_days(10, jump_at=3, jump=1.08)
    led = make_ledger(d, taker_fee_bps=5.0, leverage=10.0, liquidation_buffer=0.5, liquidation_fee_bps=50.0)
    _step(led, 0)
    _step(led, 1)
    comps, code = _step(led, 2, "enter")  # entered at 2, the short leg loses 8% over 2 -> 3: liquidated at 3
    assert comps["liquidation"][0] == -1.0 and code[0] == 0 and not led.active.any()
    assert led.entered_sym[0] == 0 and led.closed_hours[0, 0] == 1.0
    assert led.closed_net[0, 0] == pytest.approx(led.equity[0] - led.equity0[0])
    assert led.closed_net[0, 0] == pytest.approx(comps["pnl"][0] + comps["fees"][0])
    assert led.spread[0] == 0.0 and led.liquidations[0] == 1 and led.round_trips[0] == 1


def test_records_describe_only_the_accounts_stepped() -> None:
    led = make_ledger(_hand_days(12), n=2)
    _step(led, 0, "enter")
    _step(led, 1, "exit", slot=0)
    assert np.isfinite(led.closed_net[:, 0]).all()
    _step(led, 2, sel=[1])  # account 0 is not stepped: it closed nothing in this call
    assert np.isnan(led.closed_net).all() and (led.entered_sym == -1).all()
    _step(led, 2, "enter", sel=[1])
    assert led.entered_sym.tolist() == [-1, 0]


def test_closed_trips_conserve_the_equity_change_with_liquidations() -> None:
    days = random_funding_days(200, 6, seed=5, hourly_vol=0.03, anomalous=1, planted_spread_apr=0.5)
    trading = TradingConfig(leverage=10.0, liquidation_buffer=0.5, max_positions=5, taker_fee_bps=4.0)
    cfg = FundingEnvConfig(episode_hours=48, top_k=4, sample_config=False, trading=trading)
    n = 32
    env = FundingVecEnv(days, cfg, DEFAULT, n_envs=n, seed=2, auto_reset=False)
    env.reset()
    led = env.ledger
    rng = np.random.default_rng(1)
    closed_sum, closed_count, entries = np.zeros(n), np.zeros(n, dtype=np.int64), 0
    hours = []
    while not env.done_mask.all():
        masks = env.action_masks()
        actions = np.argmax(rng.random(masks.shape) * masks, axis=1)
        entries += int(((actions >= 1) & (actions <= cfg.top_k)).sum())
        env.step(actions)
        done = np.isfinite(led.closed_net)
        closed_sum += np.where(done, led.closed_net, 0.0).sum(axis=1)
        closed_count += done.sum(axis=1)
        hours += led.closed_hours[done].tolist()
        assert np.array_equal(done, np.isfinite(led.closed_hours))
    assert led.liquidations.sum() > 0 and not led.active.any()
    np.testing.assert_allclose(closed_sum, led.equity - led.equity0, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(closed_count, led.round_trips)
    assert closed_count.sum() == entries  # every entry was closed exactly once
    assert min(hours) >= 1 and max(hours) <= cfg.episode_hours
    assert (led.spread <= 0).all() and (led.fees <= led.spread).all() and (led.spread < 0).any()


# ---------------------------------------------------------------------------------------------------- baselines
def test_greedy_rule_validation() -> None:
    assert GreedyRule.from_dict({"min_apr": 0.3}) == GreedyRule(min_apr=0.3)
    with pytest.raises(ValueError, match="exit_apr"):
        GreedyRule(min_apr=0.1, exit_apr=0.1)
    with pytest.raises(ValueError, match="finite"):
        GreedyRule(min_apr=float("nan"))
    with pytest.raises(ValueError, match="max_half_spreads_pct"):
        GreedyRule(max_half_spreads_pct=0.0)
    with pytest.raises(ValueError, match="unknown key"):
        GreedyRule.from_dict({"min_apy": 0.3})


def test_greedy_reads_columns_by_name_exits_first_and_respects_masks() -> None:
    names = {name: i for i, name in enumerate(observation_names(CFG))}
    obs = np.zeros((4, len(names)), dtype=np.float32)
    masks = np.ones((4, n_actions(CFG)), dtype=bool)

    def put(row: int, **cols: float) -> None:
        for col, value in cols.items():
            obs[row, names[col]] = value

    put(0, slot0_active=1, slot0_apr_now=0.5, slot1_active=1, slot1_apr_now=0.01, opp0_valid=1, opp0_apr=1.0)
    for row in (1, 3):  # too wide, already held, then the first good one
        put(row, opp0_valid=1, opp0_apr=5.0, opp0_half_spreads_pct=0.5)
        put(row, opp1_valid=1, opp1_apr=0.6, opp1_half_spreads_pct=0.05, opp1_symbol_held=1)
        put(row, opp2_valid=1, opp2_apr=0.3, opp2_half_spreads_pct=0.05)
    put(2, opp0_valid=1, opp0_apr=0.1)  # below min_apr
    masks[3, 3] = False  # the env forbids opp2 (e.g. no free slot)
    actions = greedy(CFG, RULE)(obs, masks)
    k = CFG.top_k
    assert actions.tolist() == [1 + k + 1, 1 + 2, HOLD, HOLD]
    assert action_kinds(actions, k).tolist() == [2, 1, 0, 0] and ACTION_KINDS[2] == "EXIT"
    assert never_trade()(obs, masks).tolist() == [HOLD] * 4
    assert set(funding_baselines(CFG, RULE)) == {"never_trade", "greedy", "random_valid"}


def test_greedy_takes_only_valid_actions_under_random_configs(planted: FundingDays) -> None:
    env = FundingVecEnv(planted, CFG, DEFAULT, n_envs=16, seed=4)  # sampled configs, auto-reset
    policy = greedy(CFG, RULE)
    obs = env.reset()
    kinds = np.zeros(3, dtype=np.int64)
    for _ in range(3 * CFG.episode_hours):
        masks = env.action_masks()
        actions = policy(obs, masks)
        assert masks[np.arange(16), actions].all()
        kinds += np.bincount(action_kinds(actions, CFG.top_k), minlength=3)
        obs, *_ = env.step(actions)
    assert kinds[1] > 0 and kinds[2] > 0  # it both enters and exits


def test_greedy_enters_the_planted_spread_never_the_anomaly(greedy_planted: FundingEvalResult) -> None:
    eps = greedy_planted.episodes
    assert all("SYM0USDT" in ep.symbol_entries for ep in eps)
    assert not any(sym.startswith("ANOM") for ep in eps for sym in ep.symbol_entries)
    by_symbol = {r["symbol"]: r for r in symbol_breakdown(greedy_planted)}
    assert by_symbol["SYM0USDT"]["net_pnl"] > 0
    assert reward_pnl_alignment(greedy_planted)["passed"]
    assert flat_collapse(greedy_planted)["passed"]


def test_never_trade_makes_nothing_and_is_a_flat_collapse(v2_chase: dict[str, FundingEvalResult]) -> None:
    flat = v2_chase["never_trade"]
    assert not flat.net_pnl.any() and not flat.total_reward.any()
    m = funding_metrics(flat)
    assert m["round_trips"] == 0 and m["action_HOLD"] == 1.0 and m["invested_share"] == 0.0
    assert not flat_collapse(flat)["passed"]
    concentration = symbol_concentration(flat)
    assert concentration["passed"] and "too few" in concentration["detail"]


# --------------------------------------------------------------------------------------------------- evaluation
def test_evaluation_starts_and_configs() -> None:
    starts = evaluation_starts(240, 48, 24)
    assert starts.tolist() == list(range(0, 192, 24)) and starts[-1] + 48 <= 239
    assert evaluation_starts(49, 48, 24).tolist() == [0]
    with pytest.raises(ValueError, match="no complete"):
        evaluation_starts(48, 48)
    with pytest.raises(ValueError, match="stride_hours"):
        evaluation_starts(240, 48, 0)
    base = TradingConfig(taker_fee_bps=2.0, initial_equity=5_000.0)
    configs = evaluation_configs(base)
    assert list(configs) == ["default", "conservative", "aggressive"] and configs["default"] is base
    cons, aggr = configs["conservative"], configs["aggressive"]
    assert (cons.leverage, cons.target_utilization, cons.max_positions) == (2.0, 0.4, 2)
    assert (aggr.leverage, aggr.target_utilization, aggr.max_positions) == (5.0, 0.7, 5)
    assert {c.taker_fee_bps for c in configs.values()} == {2.0} and aggr.initial_equity == 5_000.0


def test_every_start_and_config_once_and_equal_to_the_single_env(
    planted: FundingDays, greedy_planted: FundingEvalResult
) -> None:
    configs = evaluation_configs(CFG.trading)
    starts = evaluation_starts(planted.n_hours, CFG.episode_hours, 24)
    eps = greedy_planted.episodes
    keys = [(ep.start_time, ep.config_name) for ep in eps]
    expected = [(str(planted.timeline[s])[:19], c) for c in configs for s in starts]
    assert keys == expected and len(set(keys)) == len(eps)
    assert all(ep.steps == CFG.episode_hours and ep.done_reason == "end_of_episode" for ep in eps)
    policy = greedy(CFG, RULE)
    for ep, (s, c) in zip(eps, [(s, c) for c in configs for s in starts], strict=True):
        env = FundingEnv(planted, CFG, DEFAULT)
        obs, info = env.reset(seed=0, options={"start": int(s), "trading": configs[c]})
        assert info["trading"] == configs[c].to_dict()
        total, done, path = 0.0, False, []
        while not done:
            action = int(policy(obs[None], env.action_masks()[None])[0])
            obs, reward, done, _, step_info = env.step(action)
            total += reward
            path.append(step_info["net_pnl"])
        assert ep.net_pnl == pytest.approx(step_info["net_pnl"], rel=1e-12, abs=1e-9)
        assert ep.total_reward == pytest.approx(total, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(ep.equity, path, rtol=1e-12, atol=1e-9)
        assert ep.round_trips == step_info["round_trips"] and ep.wins == step_info["wins"]
    # Each episode's parts add up: reward components, money, trips and decisions.
    for ep in eps:
        assert sum(ep.reward_parts.values()) == pytest.approx(ep.total_reward, abs=1e-9)
        assert set(ep.reward_parts) == {c for c, _ in DEFAULT.coefficients}
        assert ep.gross + ep.fees == pytest.approx(ep.net_pnl, abs=1e-9)
        assert sum(ep.symbol_pnl.values()) == pytest.approx(ep.net_pnl, abs=1e-6)
        assert len(ep.hold_hours) == ep.round_trips == sum(ep.symbol_entries.values()) == ep.action_counts[1]
        assert sum(ep.action_counts) == ep.steps and ep.fees <= ep.spread <= 0
        assert ep.pnl_pct == pytest.approx(ep.net_pnl / CFG.trading.initial_equity * 100)
    # The configs really differ: the aggressive account trades bigger positions than the conservative one.
    fees = {c: -sum(ep.fees for ep in greedy_planted.for_config(c).episodes) for c in configs}
    assert fees["aggressive"] > fees["default"] > fees["conservative"] > 0


def test_invested_hours_count_the_hours_a_position_is_held(planted: FundingDays) -> None:
    """Enter at the first decision, hold to the end: invested every hour, one trip of exactly episode_hours."""
    active = observation_names(CFG).index("slot0_active")

    def enter_and_hold(obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return np.where((obs[:, active] == 0) & masks[:, 1], 1, HOLD)

    result = evaluate_funding_policy(enter_and_hold, planted, CFG, DEFAULT, "hold", {"default": CFG.trading}, 48)
    for ep in result.episodes:
        assert ep.action_counts == (CFG.episode_hours - 1, 1, 0) and ep.invested_hours == CFG.episode_hours
        assert ep.hold_hours == (float(CFG.episode_hours),) and ep.round_trips == 1
    assert flat_collapse(result)["value"] == 0.0


def test_episodes_that_end_early_keep_their_own_records(chase_days: FundingDays) -> None:
    """Wipe-outs end envs at different hours; the rest keep stepping alone and nothing leaks between them."""
    cfg = dataclasses.replace(CFG, wipeout_fraction=0.88)
    configs = evaluation_configs(cfg.trading)
    policy = _apr_chaser(cfg)
    result = evaluate_funding_policy(policy, chase_days, cfg, DEFAULT, "agent", configs)
    assert len({ep.steps for ep in result.episodes}) > 3 and {ep.done_reason for ep in result.episodes} >= {"wipeout"}
    starts = evaluation_starts(chase_days.n_hours, cfg.episode_hours)
    for ep, (s, c) in zip(result.episodes, [(s, c) for c in configs for s in starts], strict=True):
        env = FundingEnv(chase_days, cfg, DEFAULT)
        obs, _ = env.reset(options={"start": int(s), "trading": configs[c]})
        steps, done = 0, False
        while not done:
            obs, _, done, _, info = env.step(int(policy(obs[None], env.action_masks()[None])[0]))
            steps += 1
        assert (ep.steps, ep.done_reason) == (steps, info["done_reason"]) and len(ep.equity) == steps
        assert ep.net_pnl == pytest.approx(info["net_pnl"], rel=1e-12, abs=1e-9)
        assert sum(ep.symbol_pnl.values()) == pytest.approx(ep.net_pnl, abs=1e-6)
        assert len(ep.hold_hours) == ep.round_trips == sum(ep.symbol_entries.values())


def test_a_masked_action_or_a_wrong_shape_raises(planted: FundingDays) -> None:
    configs = {"default": CFG.trading}
    exit_empty = lambda obs, masks: np.full(len(masks), 1 + CFG.top_k)  # noqa: E731
    with pytest.raises(ValueError, match="masked action"):
        evaluate_funding_policy(exit_empty, planted, CFG, DEFAULT, "bad", configs)
    with pytest.raises(ValueError, match="actions for"):
        evaluate_funding_policy(lambda obs, masks: np.zeros(2), planted, CFG, DEFAULT, "bad", configs)
    with pytest.raises(ValueError, match="at least one"):
        evaluate_funding_policy(never_trade(), planted, CFG, DEFAULT, "flat", {})


def test_configs_with_more_positions_than_slots_are_played_with_the_slots(planted: FundingDays) -> None:
    cfg = dataclasses.replace(CFG, slots=3)
    names = observation_names(cfg)
    seen: list[float] = []
    inner = greedy(cfg, RULE)

    def policy(obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        seen.extend(obs[:, names.index("max_positions_div5")].tolist())
        return inner(obs, masks)

    result = evaluate_funding_policy(policy, planted, cfg, DEFAULT, "greedy", evaluation_configs(cfg.trading), 96)
    assert len(result.episodes) == 2 * 3 and set(result.config_names) == {"default", "conservative", "aggressive"}
    # The aggressive config's 5 positions do not fit 3 slots: the agent is shown (and plays) 3, not 5.
    assert max(seen) == pytest.approx(3 / 5) and min(seen) == pytest.approx(2 / 5)


# ------------------------------------------------------------------------------------------------------- checks
def test_v2_reward_on_an_apr_chaser_fails_alignment_and_concentration(
    chase_days: FundingDays, v2_chase: dict[str, FundingEvalResult]
) -> None:
    agent = v2_chase["agent"]
    assert agent.total_reward.sum() > 0 > agent.net_pnl.sum()  # seed 004: reward says win, money says loss
    checks = funding_run_checks(agent)
    assert list(checks) == ["reward_pnl_alignment", "symbol_concentration", "action_collapse"]
    alignment = checks["reward_pnl_alignment"]
    assert not alignment["passed"] and "quality_bonus +" in alignment["detail"]
    assert "reward says win, money says loss" in alignment["detail"]
    assert alignment["reward_parts"]["quality_bonus"] > alignment["total_reward"] > 0
    concentration = checks["symbol_concentration"]
    assert not concentration["passed"] and concentration["symbol"].startswith("ANOM")
    assert concentration["value"] > 0.6 and concentration["hhi"] > 0.5
    assert checks["action_collapse"]["passed"]
    m = funding_metrics(agent)
    assert m["top_symbol_share"] == concentration["value"] and m["reward_part_quality_bonus"] > 0
    # The same trades under the default reward: the reward follows the money, so alignment holds.
    honest = evaluate_funding_policy(
        _apr_chaser(CFG), chase_days, CFG, DEFAULT, "agent", evaluation_configs(CFG.trading)
    )
    np.testing.assert_allclose(honest.net_pnl, agent.net_pnl)
    assert reward_pnl_alignment(honest)["passed"] and honest.total_reward.sum() < 0


def test_alignment_fails_on_opposite_ranking_alone() -> None:
    from rl.families.funding.evaluate import FundingEpisode

    def ep(reward: float, pnl: float) -> FundingEpisode:
        return FundingEpisode(
            start_time="2025-10-22T00:00:00",
            config_name="default",
            total_reward=reward,
            reward_parts={"pnl": reward},
            net_pnl=pnl,
            pnl_pct=pnl / 100,
            gross=pnl,
            funding=0.0,
            fees=0.0,
            spread=0.0,
            liquidations=0,
            round_trips=0,
            wins=0,
            hold_hours=(),
            symbol_pnl={},
            symbol_entries={},
            action_counts=(1, 0, 0),
            invested_hours=0,
            done_reason="end_of_episode",
            steps=1,
            equity=np.zeros(1),
        )

    opposite = FundingEvalResult("x", tuple(ep(r, p) for r, p in [(-1, 3), (-2, 5), (-3, 9), (-0.5, 1)]))
    check = reward_pnl_alignment(opposite)
    assert not check["passed"] and check["value"] == pytest.approx(-1.0) and "says win" not in check["detail"]
    same = FundingEvalResult("x", tuple(ep(r, p) for r, p in [(1, 3), (2, 5), (3, 9)]))
    assert reward_pnl_alignment(same)["passed"]


def test_metrics_and_symbol_breakdown_add_up(greedy_planted: FundingEvalResult) -> None:
    m = funding_metrics(greedy_planted)
    rows = symbol_breakdown(greedy_planted)
    assert sum(r["entries"] for r in rows) == m["round_trips"]
    assert sum(r["net_pnl"] for r in rows) == pytest.approx(m["total_pnl"], abs=1e-6)
    assert sum(r["entry_share"] for r in rows) == pytest.approx(1.0)
    assert [abs(r["net_pnl"]) for r in rows] == sorted((abs(r["net_pnl"]) for r in rows), reverse=True)
    assert m["action_HOLD"] + m["action_ENTER"] + m["action_EXIT"] == pytest.approx(1.0)
    assert m["fees"] <= m["spread"] <= 0 and m["episodes"] == len(greedy_planted.episodes)
    assert 0 < m["invested_share"] <= 1 and m["avg_hold_hours"] >= 1
    assert flat_collapse(greedy_planted)["value"] == pytest.approx(1 - m["invested_share"])
    both = FundingEvalResult.concat("greedy", [greedy_planted, greedy_planted])
    assert funding_metrics(both)["total_pnl"] == pytest.approx(2 * m["total_pnl"])


# ------------------------------------------------------------------------------------------ warehouse and report
def test_rows_fit_the_warehouse_episode_table(planted: FundingDays, greedy_planted: FundingEvalResult) -> None:
    from warehouse.db import connect
    from warehouse.runs import get_episodes, record_evaluation

    rows = greedy_planted.to_rows("s0", "ckpt", agent="agent")
    assert all(set(r) == ROW_KEYS for r in rows)
    assert {r["policy_kind"] for r in rows} == {"baseline"} and {r["checkpoint_id"] for r in rows} == {None}
    assert rows[0]["symbol"] == "*@default" and rows[0]["action_counts_json"].keys() == {"HOLD", "ENTER", "EXIT"}
    for r in rows:
        assert r["net_pnl"] == pytest.approx(r["gross_pnl"] + r["commission"] + r["spread_cost"], abs=1e-9)
    half_day = evaluate_funding_policy(
        never_trade(), planted, CFG, DEFAULT, "agent", evaluation_configs(CFG.trading), stride_hours=12
    )
    agent_rows = half_day.to_rows("s0", "ckpt", agent="agent")
    assert {r["checkpoint_id"] for r in agent_rows} == {"ckpt"} and "*@aggressive@12h" in {
        r["symbol"] for r in agent_rows
    }
    con = connect(":memory:")
    try:
        run = {"run_id": "funding-eval-1", "family": "funding"}
        counts = record_evaluation(con, {"run": run, "episodes": rows + agent_rows})
        assert counts["evaluation_episodes"] == len(rows) + len(agent_rows)
        stored = get_episodes(con, "funding-eval-1")
        assert stored["net_pnl"].sum() == pytest.approx(greedy_planted.net_pnl.sum())
    finally:
        con.close()


def test_report_makes_the_v2_failure_visible(tmp_path: Path, v2_chase: dict[str, FundingEvalResult]) -> None:
    checks = funding_run_checks(v2_chase["agent"])
    ctx = ReportContext(
        family="funding",
        run_id="funding-eval-x",
        policy_run_id="funding-train-x",
        checkpoint_ids={"s0": "ckpt-s0"},
        reward_name=V2.name,
        reward_sha256=V2.sha256,
        data_version="d" * 12,
        code_version="c0de",
    )
    half = len(v2_chase["agent"].episodes) // 2
    split = {  # two "slices" to exercise the per-slice tables
        "s0": {p: FundingEvalResult(p, r.episodes[:half]) for p, r in v2_chase.items()},
        "s1": {p: FundingEvalResult(p, r.episodes[half:]) for p, r in v2_chase.items()},
    }
    md = build_funding_report(ctx, split, checks, tmp_path / "rep")
    assert (tmp_path / "rep" / REPORT_FILE).read_text() == md
    assert (tmp_path / "rep" / "equity.png").stat().st_size > 0 and (tmp_path / "rep" / "reward_vs_pnl.png").exists()
    for name in ("reward_pnl_alignment", "symbol_concentration", "action_collapse", V2.sha256, "ckpt-s0"):
        assert name in md
    assert "| reward_pnl_alignment | **FAIL** |" in md and "| symbol_concentration | **FAIL** |" in md
    assert "Reward says win, money says loss" in md and "reward: quality_bonus" in md
    assert "ANOM0USDT" in md and "### s0" in md and "### s1" in md
    for config in ("default", "conservative", "aggressive"):
        assert f"| {config} | agent |" in md
    with pytest.raises(ValueError, match="missing"):
        build_funding_report(ctx, split, checks, tmp_path / "rep2", agent="nobody")


def test_the_funding_family_runs_evaluation_checks_rows_and_report(tmp_path: Path) -> None:
    """The shared workflow reaches this module only through rl.families.FundingFamily: wire it end to end."""
    from rl.core.family import load_family
    from rl.core.policies import random_valid
    from rl.families.funding.family import FundingFamily

    cfg = load_family(CONFIGS / "funding.yaml")
    family = FundingFamily()
    days = random_funding_days(24 * 6, 8, seed=2, planted_spread_apr=1.0, anomalous=1)
    results = family.evaluate(random_valid(7), days, cfg, DEFAULT, "agent")
    starts = evaluation_starts(days.n_hours, cfg.env.episode_hours, cfg.evaluation.stride_hours)
    assert list(results) == ["agent", "never_trade", "greedy", "random_valid"]
    assert all(len(r.episodes) == 3 * len(starts) for r in results.values())
    checks = family.run_checks(results, cfg, "agent")
    assert set(checks) == set(family.checks)
    metrics = family.metrics(results["agent"])
    assert all(key in metrics for key in family.summary_keys)
    rows = family.episode_rows(results["greedy"], "s0", "ckpt", "agent")
    assert len(rows) == len(results["greedy"].episodes) and all(set(r) == ROW_KEYS for r in rows)
    ctx = ReportContext("funding", "e", "t", {"s0": "ckpt"}, DEFAULT.name, DEFAULT.sha256, "d", "c")
    md = family.report(ctx, {"s0": results}, checks, tmp_path, "agent", (), cfg)
    assert "## Reward decomposition" in md and "| greedy |" in md
