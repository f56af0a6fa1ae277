"""The contract every registered family meets, checked through the core only: a new family gets these for free.

Each case runs on the family's own small synthetic data (`synthetic_days`), its shipped config shrunk to a tiny
PPO run, and its shipped reward; the test family of tests/families/toy runs through the same cases.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rl.core.audit import audit_target, random_valid_actions
from rl.core.family import FamilyConfig, load_family
from rl.core.policies import random_valid
from rl.core.registry import FAMILY_MODULES, get_family, registered
from rl.core.reward import RewardSpec, load_reward
from rl.core.train import PPOConfig, train_policy
from tests import ROOT
from tests.families import toy

TINY_PPO = PPOConfig(total_timesteps=256, n_envs=4, n_steps=32, batch_size=64, n_epochs=1, net_arch=(32,))
KINDS = [*FAMILY_MODULES, "toy"]


@dataclasses.dataclass
class Case:
    family: object
    cfg: FamilyConfig
    reward: RewardSpec
    days: object


def _episode_columns() -> set[str]:
    """The columns of ml.evaluation_episodes an episode row may fill (all but the run id), from the schema itself."""
    from warehouse.db import connect

    con = connect(":memory:")
    try:
        rows = con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'ml' AND table_name = 'evaluation_episodes'"
        ).fetchall()
    finally:
        con.close()
    return {name for (name,) in rows} - {"run_id"}


def _config(kind: str) -> tuple[FamilyConfig, RewardSpec]:
    if kind == "toy":
        raw = {
            "name": "toy",
            "kind": "toy",
            "data": {"start": "2024-01-02", "end": "2024-01-05", "symbols": ["SPY"]},
            "reward": "rewards/toy.yaml",
        }
        reward = RewardSpec.from_dict({"name": "toy", "components": {"pnl": {"weight": 1, "scale": 0.1}}}, ["pnl"])
        return dataclasses.replace(FamilyConfig.from_dict(raw), ppo=TINY_PPO), reward
    cfg = dataclasses.replace(load_family(ROOT / "configs" / f"{kind}.yaml"), ppo=TINY_PPO)
    return cfg, load_reward(ROOT / "configs" / cfg.reward, get_family(kind).reward_components)


@pytest.fixture(params=KINDS)
def case(request) -> Iterator[Case]:
    kind = request.param
    if kind == "toy":
        with registered(toy.FAMILY):
            cfg, reward = _config(kind)
            yield Case(toy.FAMILY, cfg, reward, toy.FAMILY.synthetic_days(0))
        return
    family = get_family(kind)
    cfg, reward = _config(kind)
    yield Case(family, cfg, reward, family.synthetic_days(0))


def _play(env, actions_rng: np.random.Generator, steps: int) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """(t of env 0, obs, rewards, dones) for `steps` steps of random valid actions."""
    obs = env.reset()
    out = []
    for _ in range(steps):
        t = env.get_attr("t", [0])[0]
        actions = random_valid_actions(env.action_masks(), actions_rng)
        next_obs, rewards, dones, _ = env.step(actions)
        out.append((t, obs.copy(), rewards.copy(), dones.copy()))
        obs = next_obs
    return out


def test_single_env_passes_gymnasium_check_env(case: Case) -> None:
    env = case.family.single_env(case.days, case.cfg.env, case.reward)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=3)
    masks = env.action_masks()
    assert masks.dtype == bool and masks.shape == (env.action_space.n,) and masks.any()
    assert env.observation_space.contains(obs)


def test_batched_env_i_plays_exactly_the_single_env_seeded_seed_plus_i(case: Case) -> None:
    single = case.family.single_env(case.days, case.cfg.env, case.reward)
    for i in (0, 2):
        batched = case.family.env_factory(case.days, case.cfg.env, case.reward)(3, 11)
        batch_obs = batched.reset()
        obs, _ = single.reset(seed=11 + i)
        rng = np.random.default_rng(i)
        for _ in range(400):
            np.testing.assert_allclose(batch_obs[i], obs, rtol=0, atol=1e-6)
            action = int(random_valid_actions(single.action_masks()[None, :], rng)[0])
            np.testing.assert_array_equal(batched.action_masks()[i], single.action_masks())
            actions = random_valid_actions(batched.action_masks(), np.random.default_rng(0))
            actions[i] = action
            batch_obs, rewards, dones, _ = batched.step(actions)
            obs, reward, terminated, truncated, _ = single.step(action)
            assert rewards[i] == pytest.approx(reward, abs=1e-9)
            assert bool(dones[i]) == (terminated or truncated)
            if dones[i]:
                break
        else:
            pytest.fail("episode did not end within 400 steps")


def test_masks_are_fresh_copies(case: Case) -> None:
    env = case.family.env_factory(case.days, case.cfg.env, case.reward)(4, 0)
    env.reset()
    first = env.action_masks()
    kept = first.copy()
    first[:] = False  # the caller scribbling on its copy must not change the env
    assert env.action_masks().any(axis=1).all()
    second = env.action_masks()
    assert second is not first and not np.shares_memory(first, second)
    env.step(random_valid_actions(second, np.random.default_rng(0)))
    np.testing.assert_array_equal(second, kept)  # what MaskablePPO stored before the step is unchanged


def test_no_look_ahead_observations_up_to_t_ignore_data_after_t(case: Case) -> None:
    t_cut = (
        int(
            _play(case.family.env_factory(case.days, case.cfg.env, case.reward)(1, 5), np.random.default_rng(1), 1)[0][
                0
            ]
        )
        + 6
    )
    changed = case.family.perturb_after(case.days, t_cut)
    runs = []
    for days in (case.days, changed):
        env = case.family.env_factory(days, case.cfg.env, case.reward)(1, 5)
        runs.append(_play(env, np.random.default_rng(1), 12))
    compared = 0
    for (t, obs, _, _), (t2, obs2, _, _) in zip(*runs, strict=True):
        if t > t_cut:
            break
        assert t == t2
        np.testing.assert_array_equal(obs, obs2, err_msg=f"observation at t={t} saw data after t={t_cut}")
        compared += 1
    assert compared >= 5
    later = [obs for (t, obs, _, _) in runs[1] if t > t_cut]
    assert later and not all(
        np.array_equal(a, b) for a, (t, b, _, _) in zip(later, runs[0][-len(later) :], strict=True)
    )


def test_same_seed_same_episodes(case: Case) -> None:
    runs = [
        _play(case.family.env_factory(case.days, case.cfg.env, case.reward)(4, 9), np.random.default_rng(2), 60)
        for _ in range(2)
    ]
    for (t, obs, rew, done), (t2, obs2, rew2, done2) in zip(*runs, strict=True):
        assert t == t2
        np.testing.assert_array_equal(obs, obs2)
        np.testing.assert_array_equal(rew, rew2)
        np.testing.assert_array_equal(done, done2)


def test_reward_audit_runs_on_the_family_target(case: Case) -> None:
    target = case.family.audit_target(case.days, case.cfg, case.reward)
    audit = audit_target(target, case.reward, n_episodes=4, seed=0)
    assert set(audit.per_policy) == set(target.policies)
    assert audit.total.finite and set(audit.components) == set(case.reward.components)
    assert audit.to_dict()["passed"] == (not audit.problems())


def test_a_few_hundred_steps_of_training_give_a_checkpoint(case: Case, tmp_path) -> None:
    make_env = case.family.env_factory(case.days, case.cfg.env, case.reward)
    result = train_policy(
        case.days, case.cfg.env, case.reward, case.cfg.ppo, tmp_path / "ckpt", make_env, {"run_id": "contract"}
    )
    assert result.stats.timesteps >= case.cfg.ppo.total_timesteps
    assert (result.checkpoint_dir / "model.zip").is_file()
    assert result.meta["data"]["version"] == case.days.content_hash()


def test_evaluation_rows_and_report(case: Case, tmp_path) -> None:
    from rl.core.report import ReportContext

    results = case.family.evaluate(random_valid(0), case.days, case.cfg, case.reward, "agent")
    assert "agent" in results and len(results) >= 2
    rows = [row for r in results.values() for row in case.family.episode_rows(r, "slice0", "ckpt", "agent")]
    assert rows and all(set(row) <= _episode_columns() for row in rows)
    assert all({"slice", "policy", "policy_kind", "symbol", "session_date"} <= set(row) for row in rows)
    metrics = {name: case.family.metrics(r) for name, r in results.items()}
    assert all(np.isfinite(m["total_pnl"]) for m in metrics.values())
    checks = case.family.run_checks(results, case.cfg, "agent")
    assert set(checks) == set(case.family.checks) == set(case.family.check_descriptions)
    ctx = ReportContext("f", "eval-1", "train-1", {"slice0": "ckpt"}, case.reward.name, case.reward.sha256, "d", "c")
    text = case.family.report(ctx, {"slice0": results}, checks, tmp_path / "report", "agent", (), case.cfg)
    assert (tmp_path / "report" / "report.md").read_text() == text and "eval-1" in text


def test_shadow_play_records_every_decision_with_its_distribution(case: Case) -> None:
    """The family's shadow env through the core's recorder: probabilities over the valid actions only, the most
    probable one played, positions chained step to step, and the step P&L adding up to the account's."""
    from sb3_contrib import MaskablePPO

    from market.calendar import is_session
    from rl.core import shadow

    days = case.days
    if case.family.data_job == "market_data_job":  # bars are timed by the sessions' minutes: real sessions only
        days = days.select_dates([d for d in np.asarray(days.dates).astype("datetime64[D]").tolist() if is_session(d)])
    train_env = case.family.env_factory(days, case.cfg.env, case.reward)(2, 0)
    model = MaskablePPO("MlpPolicy", train_env, n_steps=8, batch_size=8, seed=0, device="cpu")
    play = case.family.shadow(days, case.cfg, case.reward)
    frame = shadow.play(model, play, "slice_0")
    assert frame.height > 0 and set(frame.get_column("checkpoint")) == {"slice_0"}
    for probs, mask, action in frame.select("probabilities", "mask", "action").iter_rows():
        assert sum(probs) == pytest.approx(1.0) and mask[action] and probs[action] == max(probs)
        assert all(p == 0 for p, valid in zip(probs, mask, strict=True) if not valid)
        assert len(probs) == len(play.action_names)
    for (_,), rows in frame.sort("episode", "step").group_by(["episode"], maintain_order=True):
        assert rows.get_column("step").diff().drop_nulls().to_list() == [1] * (rows.height - 1)
        assert (np.diff(rows.get_column("bar_ts").to_numpy()) > np.timedelta64(0)).all()
        before, after = rows.get_column("position_before"), rows.get_column("position_after")
        assert before.slice(1).to_list() == after.slice(0, rows.height - 1).to_list()
        net = rows.get_column("net_pnl").to_numpy()
        step = rows.get_column("step_pnl").to_numpy()
        np.testing.assert_allclose(step[1:], np.diff(net), atol=1e-6)
    fills = frame.get_column("fill_price").drop_nulls()
    assert fills.is_finite().all() and (fills > 0).all()
    assert shadow.summary(frame)["decisions"] == frame.height
