"""Evaluation on held-out days: each day exactly once, dollars from the env's ledger, baselines and report."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from rl.core.data import MarketDays
from rl.core.policies import agent, random_valid
from rl.core.reward import load_reward
from rl.families.intraday import FAMILY
from rl.families.intraday.accounting import COMPONENTS
from rl.families.intraday.baselines import BUY, CLOSE, HOLD, SELL, baseline_policies, buy_and_hold, flat
from rl.families.intraday.baselines import sma_crossover as sma_policy
from rl.families.intraday.config import EnvConfig
from rl.families.intraday.evaluate import EvalResult, evaluate_policy_on_days, evaluate_with_baselines
from rl.families.intraday.metrics import policy_metrics, run_checks
from tests import ROOT  # noqa: E402

NO_STOPS = EnvConfig(loss_cut=None, profit_lock=None)


def make_days(n_sessions: int, seed: int = 0, symbols: tuple[str, ...] = ("SPY", "QQQ")) -> MarketDays:
    """Random walk around $470, 1-cent spread, 390 minutes; features ret_1m, imbalance_1m, sma_5_20."""
    rng = np.random.default_rng(seed)
    d, n_minutes = n_sessions * len(symbols), 390
    sessions = np.busday_offset(np.datetime64("2024-02-01", "D"), np.arange(n_sessions), roll="forward")
    day_open = np.round(470.0 * np.exp(rng.standard_normal(d) * 0.01), 2)
    close = np.round(day_open[:, None] * np.exp(np.cumsum(rng.standard_normal((d, n_minutes)) * 6e-4, axis=1)), 2)
    open_ = np.concatenate([day_open[:, None], close[:, :-1]], axis=1)
    ret_1m = np.zeros_like(close)
    ret_1m[:, 1:] = np.diff(np.log(close), axis=1) * 100.0
    kernel5, kernel20 = np.ones(5) / 5, np.ones(20) / 20
    sma5 = np.array([np.convolve(c, kernel5)[:n_minutes] for c in close])
    sma20 = np.array([np.convolve(c, kernel20)[:n_minutes] for c in close])
    sma_5_20 = np.where(np.arange(n_minutes) >= 19, np.log(np.maximum(sma5, 1e-9) / np.maximum(sma20, 1e-9)), 0.0)
    features = np.stack([ret_1m, rng.uniform(-1, 1, (d, n_minutes)), sma_5_20 * 100], axis=-1)
    return MarketDays(
        symbols=np.tile(np.array(symbols), n_sessions),
        dates=np.repeat(sessions, len(symbols)).astype("datetime64[D]"),
        features=features.astype(np.float32),
        open=open_,
        close=close,
        spread=np.full((d, n_minutes), 0.01),
        length=np.full(d, n_minutes, dtype=np.int32),
        feature_names=("ret_1m", "imbalance_1m", "sma_5_20"),
    )


@pytest.fixture(scope="module")
def reward():
    return load_reward(ROOT / "configs" / "rewards" / "intraday.yaml", COMPONENTS)


@pytest.fixture(scope="module")
def days() -> MarketDays:
    return make_days(5, seed=2)


def _check_ledger_identities(result: EvalResult, days: MarketDays) -> None:
    assert [(ep.symbol, np.datetime64(ep.date, "D")) for ep in result.episodes] == list(
        zip(days.symbols.tolist(), days.dates, strict=True)
    ), "every day exactly once, in order"
    for ep in result.episodes:
        assert ep.net_pnl == pytest.approx(ep.gross_pnl + ep.commission + ep.spread_cost, abs=1e-9)
        assert ep.commission <= 0 and ep.spread_cost <= 0
        assert ep.steps == len(ep.equity) == sum(ep.action_counts) == sum(ep.position_counts) > 0
        assert ep.equity[-1] == pytest.approx(ep.net_pnl)
        assert ep.done_reason in {"loss_cut", "profit_lock", "end_of_data"}
        assert 0 <= ep.wins <= ep.round_trips


def test_flat_plays_every_day_to_the_end(days, reward):
    result = evaluate_policy_on_days(flat(), days, EnvConfig(), reward, name="flat")
    _check_ledger_identities(result, days)
    decisions = 390 - EnvConfig().warmup_minutes - 1
    assert all(ep.steps == decisions and ep.done_reason == "end_of_data" for ep in result.episodes)
    assert all(ep.net_pnl == 0 and ep.total_reward == 0 and ep.round_trips == 0 for ep in result.episodes)


def test_buy_and_hold_pnl_matches_a_hand_calculation(days, reward):
    result = evaluate_policy_on_days(buy_and_hold(), days, NO_STOPS, reward, name="bh")
    _check_ledger_identities(result, days)
    warm, shares = NO_STOPS.warmup_minutes, NO_STOPS.shares
    for i, ep in enumerate(result.episodes):
        entry, exit_ = days.open[i, warm + 1], days.close[i, 389]
        assert ep.gross_pnl == pytest.approx(shares * (exit_ - entry))
        assert ep.commission == pytest.approx(-2 * NO_STOPS.min_commission)
        assert ep.spread_cost == pytest.approx(-shares * 0.01)  # half a cent in and out
        assert ep.round_trips == 1 and ep.wins == int(ep.net_pnl > 0)
        assert ep.action_counts[BUY] == 1 and ep.action_counts[HOLD] == ep.steps - 1
        assert ep.position_counts == (0, 0, ep.steps)


@pytest.mark.parametrize("cfg", [EnvConfig(), NO_STOPS], ids=["stops", "no_stops"])
def test_batched_evaluation_matches_the_single_env(days, reward, cfg):
    from rl.families.intraday.env import IntradayEnv

    result = evaluate_policy_on_days(random_valid(seed=11), days, cfg, reward, name="rv")
    _check_ledger_identities(result, days)
    # Replay the same actions one day at a time through the single env: same reward, P&L and end.
    replay = random_valid(seed=11)
    actions_per_step: list[np.ndarray] = []

    def recording(obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        actions_per_step.append(replay(obs, masks))
        return actions_per_step[-1]

    env_result = evaluate_policy_on_days(recording, days, cfg, reward, name="rv2")
    for i, ep in enumerate(env_result.episodes):
        env = IntradayEnv(days, cfg, reward, day_index=i)
        env.reset(seed=0)
        total, done, k = 0.0, False, 0
        while not done:
            _, r, terminated, truncated, info = env.step(int(actions_per_step[k][i]))
            total, done, k = total + r, terminated or truncated, k + 1
        assert total == pytest.approx(ep.total_reward) and info["net_pnl"] == pytest.approx(ep.net_pnl)
        assert info["done_reason"] == ep.done_reason and k == ep.steps
        assert ep.net_pnl == pytest.approx(result.episodes[i].net_pnl)


def test_random_valid_is_seeded_and_masked_actions_are_refused(days, reward):
    a = evaluate_policy_on_days(random_valid(seed=3), days, EnvConfig(), reward, name="a")
    b = evaluate_policy_on_days(random_valid(seed=3), days, EnvConfig(), reward, name="b")
    c = evaluate_policy_on_days(random_valid(seed=4), days, EnvConfig(), reward, name="c")
    np.testing.assert_array_equal(a.net_pnl, b.net_pnl)
    assert not np.array_equal(a.net_pnl, c.net_pnl)

    def always_buy(obs, masks):
        return np.full(len(masks), BUY)

    with pytest.raises(ValueError, match="masked action"):
        evaluate_policy_on_days(always_buy, days, EnvConfig(), reward, name="always_buy")
    with pytest.raises(ValueError, match="actions for"):
        evaluate_policy_on_days(lambda o, m: np.zeros(1, dtype=int), days, EnvConfig(), reward, name="short")


def test_baseline_rules_on_constructed_observations():
    names = ("ret_1m", "imbalance_1m", "sma_5_20")
    obs = np.zeros((4, 7), dtype=np.float32)
    obs[:, 2] = [0.5, -0.5, 0.5, 0.0]
    masks = np.array(
        [
            [True, True, True, False],  # flat: everything but CLOSE
            [True, True, True, False],
            [True, False, True, True],  # already long: BUY invalid
            [True, True, True, False],
        ]
    )
    np.testing.assert_array_equal(sma_policy(names)(obs, masks), [BUY, SELL, HOLD, HOLD])
    np.testing.assert_array_equal(buy_and_hold()(obs, masks), [BUY, BUY, HOLD, BUY])
    np.testing.assert_array_equal(flat()(obs, masks), [HOLD] * 4)
    late = np.array([[True, False, False, True]] * 4)  # last minutes: only HOLD/CLOSE
    np.testing.assert_array_equal(sma_policy(names)(obs, late), [HOLD] * 4)
    rv = random_valid(seed=0)
    picks = np.concatenate([rv(obs, late) for _ in range(50)])
    assert set(picks.tolist()) == {HOLD, CLOSE}
    with pytest.raises(ValueError, match="sma_5_20"):
        sma_policy(("ret_1m",))
    assert set(baseline_policies(names)) == {"flat", "buy_and_hold", "random_valid", "sma_crossover"}


def test_agent_wrapper_is_deterministic_and_respects_masks(days, reward):
    from rl.core.train import PPOConfig, build_model, torch_threads

    model = build_model(
        FAMILY.env_factory(days, EnvConfig(), reward), PPOConfig(n_envs=8, n_steps=16, batch_size=32, seed=1)
    )
    with torch_threads(1):
        one = evaluate_policy_on_days(agent(model), days, EnvConfig(), reward, name="agent")
        two = evaluate_policy_on_days(agent(model), days, EnvConfig(), reward, name="agent")
    _check_ledger_identities(one, days)
    np.testing.assert_array_equal(one.net_pnl, two.net_pnl)
    np.testing.assert_array_equal(one.action_counts, two.action_counts)


def test_report_names_its_inputs_and_embeds_small_plots(tmp_path, days, reward):
    from rl.core.report import ReportContext
    from rl.core.walkforward import WalkForwardConfig, walk_forward_slices
    from rl.families.intraday.report import build_report

    slices = walk_forward_slices(days.dates, WalkForwardConfig(train_days=1, test_days=2, slices=2))
    results = {}
    for s in slices:
        held_out = days.select_dates(s.test_dates)
        results[s.name] = evaluate_with_baselines(sma_policy(days.feature_names), held_out, EnvConfig(), reward)
    agent_all = EvalResult.concat("agent", [r["agent"] for r in results.values()])
    assert len(agent_all.episodes) == 8
    checks = run_checks(agent_all)
    checks["forced_failure"] = {"passed": False, "value": -0.5, "threshold": 0.0, "detail": "constructed"}
    ctx = ReportContext(
        family="intraday",
        run_id="eval-123",
        policy_run_id="train-456",
        checkpoint_ids={s.name: f"ckpt-{s.name}" for s in slices},
        reward_name=reward.name,
        reward_sha256=reward.sha256,
        data_version=days.content_hash(),
        code_version="src-abc",
    )
    out = tmp_path / "report"
    text = build_report(ctx, results, checks, out, slices=slices)
    assert (out / "report.md").read_text() == text
    for needle in (
        "eval-123",
        "train-456",
        reward.sha256,
        days.content_hash(),
        "src-abc",
        "**FAIL**",
        "PASS",
    ):
        assert needle in text
    for s in slices:
        assert f"ckpt-{s.name}" in text and f"### {s.name}" in text
    for name in ("agent", "flat", "buy_and_hold", "random_valid", "sma_crossover"):
        assert f"| {name} |" in text or f"| **{name}** |" in text
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)
    assert len(images) == 3
    for data in images:
        png = base64.b64decode(data)
        assert png.startswith(b"\x89PNG") and len(png) < 60_000
    assert sorted(p.name for p in out.iterdir()) == ["actions.png", "drawdown.png", "equity.png", "report.md"]
    total = policy_metrics(agent_all)["total_pnl"]
    assert total == pytest.approx(sum(policy_metrics(r["agent"])["total_pnl"] for r in results.values()))


def test_evaluate_checkpoint_refuses_days_it_was_trained_on(tmp_path, days, reward):
    from rl.core.train import PPOConfig, train_policy
    from rl.families.intraday.evaluate import evaluate_checkpoint

    sessions = np.unique(days.dates)
    train, test = days.select_dates(sessions[:3]), days.select_dates(sessions[3:])
    tiny = PPOConfig(total_timesteps=128, n_envs=4, n_steps=32, batch_size=64, n_epochs=1)
    ckpt = train_policy(
        train, EnvConfig(), reward, tiny, tmp_path / "ckpt", FAMILY.env_factory(train, EnvConfig(), reward)
    ).checkpoint_dir
    results = evaluate_checkpoint(ckpt, test, EnvConfig(), reward)
    assert list(results) == ["agent", "flat", "buy_and_hold", "random_valid", "sma_crossover"]
    _check_ledger_identities(results["agent"], test)
    with pytest.raises(ValueError, match="strictly later"):
        evaluate_checkpoint(ckpt, days.select_dates(sessions[2:]), EnvConfig(), reward)
