"""Resumable training: kill -9 mid-training, then the same training resumes from its last partial save and ends
like an uninterrupted one; a partial state can never be loaded as a finished checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from rl.core.checkpoint import FINISHED_FILE, load_checkpoint
from rl.core.resume import STATE_FILE, load_partial
from rl.core.reward import load_reward
from rl.core.train import PPOConfig, train_policy
from rl.families.intraday import FAMILY
from rl.families.intraday.accounting import COMPONENTS
from rl.families.intraday.config import EnvConfig
from tests import ROOT
from tests.core.test_train import make_days

PPO = PPOConfig(total_timesteps=8192, n_envs=16, n_steps=32, batch_size=256, n_epochs=1, seed=4, save_every=1024)
REWARD = ROOT / "configs" / "rewards" / "intraday.yaml"

# The killed child trains exactly what the parent resumes, with each env step slowed so the kill lands mid-way.
CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from rl.core.reward import load_reward
    from rl.families.intraday import FAMILY
    from rl.families.intraday.accounting import COMPONENTS
    from rl.families.intraday.config import EnvConfig
    from tests.core.test_resume import PPO, REWARD, slow
    from tests.core.test_train import make_days
    from rl.core.train import train_policy

    days = make_days(4, seed=2, symbols=("SPY", "QQQ"))
    reward = load_reward(REWARD, COMPONENTS)
    out, partial = Path(sys.argv[1]), Path(sys.argv[2])
    train_policy(days, EnvConfig(), reward, PPO, out, slow(FAMILY.env_factory(days, EnvConfig(), reward)),
                 partial_dir=partial)
    """
)


def slow(make_env):
    """An env factory whose envs sleep 20 ms a batched step (the killed child's only difference)."""

    def factory(n: int, seed: int):
        env = make_env(n, seed)
        step_wait = env.step_wait

        def waiting():
            time.sleep(0.02)
            return step_wait()

        env.step_wait = waiting
        return env

    return factory


def _train(tmp_path: Path, name: str, partial: Path | None, ppo: PPOConfig = PPO):
    days = make_days(4, seed=2, symbols=("SPY", "QQQ"))
    reward = load_reward(REWARD, COMPONENTS)
    env = FAMILY.env_factory(days, EnvConfig(), reward)
    return train_policy(days, EnvConfig(), reward, ppo, tmp_path / name, env, partial_dir=partial)


def test_a_training_killed_mid_way_resumes_from_its_last_save(tmp_path):
    partial = tmp_path / ".partial" / "run"
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(out), str(partial)], env=env, cwd=ROOT, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    try:
        while (state := load_partial(partial)) is None or state["phase_steps"] < 2048:
            assert child.poll() is None, child.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "the child never saved a partial state"
            time.sleep(0.02)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    assert not out.exists(), "a killed training left no checkpoint"
    saved = load_partial(partial)
    assert saved["phase_steps"] >= 2048 and saved["phase_steps"] % 512 == 0  # whole rollouts
    with pytest.raises(FileNotFoundError, match="not a checkpoint"):
        load_checkpoint(partial)

    resumed = _train(tmp_path, "killed", partial)
    plain = _train(tmp_path, "plain", None)
    meta = json.loads((resumed.checkpoint_dir / "meta.json").read_text())
    assert meta["resumed"]["from_steps"] >= saved["phase_steps"]  # a save may land between the poll and the kill
    assert resumed.stats["timesteps"] == plain.stats["timesteps"] == 8192
    (phase,), (plain_phase,) = resumed.phases, plain.phases
    assert (
        [u["update"] for u in phase["updates"]] == [u["update"] for u in plain_phase["updates"]] == list(range(1, 17))
    )
    assert [u["timesteps"] for u in phase["updates"]] == [512 * k for k in range(1, 17)]
    assert phase["timesteps"] == 8192
    assert (resumed.checkpoint_dir / FINISHED_FILE).is_file() and not partial.exists()
    load_checkpoint(resumed.checkpoint_dir)


def test_an_interrupted_training_keeps_the_updates_recorded_before_its_last_save(tmp_path, monkeypatch):
    """An interruption raised in-process after the 2nd save: the resumed run keeps the saved updates verbatim."""
    import rl.core.resume as resume

    partial = tmp_path / ".partial" / "run"
    real_save, saves = resume.save_partial, []

    def save_then_crash(model, state, folder):
        real_save(model, state, folder)
        saves.append(state["phase_steps"])
        if len(saves) == 2:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(resume, "save_partial", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path, "run", partial)
    monkeypatch.setattr(resume, "save_partial", real_save)
    state = json.loads((partial / STATE_FILE).read_text())
    assert state["phase_steps"] == saves[-1] == 2048 and len(state["updates"]) == 4
    result = _train(tmp_path, "run", partial)
    (phase,) = result.phases
    assert phase["updates"][:4] == state["updates"]
    assert len(phase["updates"]) == 16


def test_no_partial_state_is_written_when_saving_is_off_and_bad_values_are_refused(tmp_path):
    partial = tmp_path / ".partial" / "run"
    _train(tmp_path, "run", partial, replace(PPO, save_every=0))
    assert not partial.exists()
    with pytest.raises(ValueError, match="ppo.save_every"):
        PPOConfig(save_every=-1)


def test_a_checkpoint_without_its_finished_marker_is_refused(tmp_path):
    result = _train(tmp_path, "run", None, replace(PPO, total_timesteps=512))
    (result.checkpoint_dir / FINISHED_FILE).unlink()
    with pytest.raises(ValueError, match="did not complete"):
        load_checkpoint(result.checkpoint_dir)


def test_a_retry_of_the_same_training_finds_its_partial_state_and_a_changed_one_does_not(tmp_path):
    from rl.core.workflow import partial_dir

    ident = ("intraday", "all", "wf0/seed_1", 1, "cfg", "data", "reward", "code", None)
    same = partial_dir(tmp_path, "wf0/seed_1", ident)
    assert same == partial_dir(tmp_path, "wf0/seed_1", tuple(ident))
    assert same.parent.name == ".partial" and same.name.startswith("wf0-seed_1-")
    for i in range(len(ident)):
        changed = (*ident[:i], "other", *ident[i + 1 :])
        assert partial_dir(tmp_path, "wf0/seed_1", changed) != same, f"item {i} must key the partial state"
