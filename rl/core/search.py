"""Hyperparameter search for every family: Optuna's TPE sampler and median pruner, on validation days only.

Seed 000 planned Optuna as its stage 2. The RL-Zoo pattern: `TPESampler(multivariate=True)` proposes PPO
settings from the family config's `hpo.space`, each trial trains on every walk-forward slice's training window
(less any slice's test days) without its last `validation_days`, and is played `evals_per_trial` times on those
validation days against the family's baselines; the mean net P&L per validation day over the slices is reported
after each evaluation, and `MedianPruner` stops a trial that trails the median of earlier trials at the same
step. No test day is ever read: the held-out evaluation stays untouched by the search. The best parameters become
a preset (a YAML named by its sha256) that the policy can train with (`hpo.use`).

Studies live in any SQLAlchemy URL (`hpo.storage`, e.g. Postgres, so several workers can share one); SQLite in
the tradeflow home by default. Optuna is imported only here.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from rl.core.config import is_int, is_number, known_keys

Log = Callable[[str], None]


@dataclass(frozen=True)
class ParamSpace:
    """One searched PPO setting: a float or integer range (optionally log-scaled), or a list of choices."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        from rl.core.train import PPOConfig

        if self.name not in {f.name for f in fields(PPOConfig)} or self.name in ("seed", "device", "save_every"):
            raise ValueError(f"hpo.space: {self.name!r} is not a searchable ppo setting")
        if self.choices:
            object.__setattr__(self, "choices", tuple(self.choices))
            return
        if not (is_number(self.low) and is_number(self.high)) or not self.low < self.high:
            raise ValueError(f"hpo.space.{self.name}: needs low < high, or choices, got {self.low!r}, {self.high!r}")
        if self.log and self.low <= 0:
            raise ValueError(f"hpo.space.{self.name}: a log range needs low > 0, got {self.low!r}")

    def suggest(self, trial: Any) -> Any:
        """This setting's value for an Optuna trial; an integer setting draws integers."""
        if self.choices:
            return trial.suggest_categorical(self.name, list(self.choices))
        if is_int(self.low) and is_int(self.high) and not self.log:
            return trial.suggest_int(self.name, int(self.low), int(self.high))
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)


@dataclass(frozen=True)
class HpoConfig:
    """A family config's `hpo:` section: budgets, validation days, storage, the space, and whether to use it."""

    trials: int = 8
    steps_per_trial: int = 65_536  # env steps a trial trains on each slice
    evals_per_trial: int = 4  # validation plays per trial (the pruner's intermediate values)
    timeout_s: float = 3600.0  # wall-time budget of one search
    validation_days: int = 10  # the last days of each training window a trial is judged on (never the test days)
    storage: str | None = None  # SQLAlchemy URL, or env:NAME (a URL with credentials); None = SQLite in the home
    heartbeat_s: int = 30  # a running trial's heartbeat; one silent for twice this is failed, then retried once
    seed: int = 0  # the sampler's seed
    use: bool = False  # the policy trains with the latest search's best parameters
    space: tuple[ParamSpace, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for name in ("trials", "steps_per_trial", "evals_per_trial", "validation_days", "heartbeat_s"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                raise ValueError(f"hpo.{name} must be a positive integer, got {value!r}")
        if not is_number(self.timeout_s) or self.timeout_s <= 0:
            raise ValueError(f"hpo.timeout_s must be a number > 0, got {self.timeout_s!r}")
        if not is_int(self.seed) or self.seed < 0:
            raise ValueError(f"hpo.seed must be a non-negative integer, got {self.seed!r}")
        if self.storage is not None and (
            not isinstance(self.storage, str) or ("://" not in self.storage and not self.storage.startswith("env:"))
        ):
            raise ValueError(
                f"hpo.storage must be a SQLAlchemy URL such as sqlite:///x.db, or env:NAME, got {self.storage!r}"
            )
        if not isinstance(self.use, bool):
            raise ValueError(f"hpo.use must be true or false, got {self.use!r}")
        if self.use and not self.space:
            raise ValueError("hpo.use needs an hpo.space to search")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> HpoConfig:
        values = known_keys(cls, raw, where="hpo")
        space = values.pop("space", None) or {}
        if not isinstance(space, Mapping):
            raise ValueError(f"hpo.space must map ppo settings to ranges, got {type(space).__name__}")
        params = []
        for name, spec in space.items():
            if isinstance(spec, list):
                spec = {"choices": spec}
            if not isinstance(spec, Mapping):
                raise ValueError(f"hpo.space.{name}: expected {{low, high[, log]}} or a list of choices, got {spec!r}")
            params.append(ParamSpace(name=name, **known_keys(ParamSpace, spec, where=f"hpo.space.{name}")))
        return cls(**values, space=tuple(params))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["space"] = {p.name: {k: v for k, v in asdict(p).items() if k != "name" and v not in ((), None)}
                        for p in self.space}  # fmt: skip
        return out

    def storage_url(self, home: Path) -> str:
        """Where the studies live: the configured URL (or the one the env:NAME variable holds, so a password never
        sits in a config file), or SQLite in the home folder. A bare postgresql:// URL uses psycopg2."""
        url = self.storage or f"sqlite:///{Path(home) / 'optuna.db'}"
        if url.startswith("env:"):
            url = os.environ.get(url[4:], "")
            if "://" not in url:
                raise ValueError(f"hpo.storage is {self.storage}, but {self.storage[4:]} holds no URL")
        return "postgresql+psycopg2://" + url[len("postgresql://") :] if url.startswith("postgresql://") else url


@dataclass(frozen=True)
class SearchResult:
    """A finished search: the best trial's parameters as a versioned preset, and every trial's outcome."""

    family: str
    study: str
    storage: str  # without credentials
    best_params: dict[str, Any]
    best_value: float
    preset_path: str
    preset_sha256: str
    trials: tuple[dict[str, Any], ...]
    wall_s: float

    def summary(self) -> dict[str, Any]:
        states = [t["state"] for t in self.trials]
        return {
            "study": self.study,
            "storage": self.storage,
            "best_value_per_day": self.best_value,
            "best_params": self.best_params,
            "preset": self.preset_path,
            "preset_sha256": self.preset_sha256,
            "trials": len(self.trials),
            "complete": states.count("COMPLETE"),
            "pruned": states.count("PRUNED"),
            "failed": states.count("FAIL"),
            "wall_s": self.wall_s,
        }


def redact(url: str) -> str:
    """A storage URL without its password (it may reach logs and metadata)."""
    head, sep, tail = url.partition("://")
    if "@" not in tail:
        return url
    auth, _, host = tail.rpartition("@")
    user = auth.split(":", 1)[0]
    return f"{head}{sep}{user}:***@{host}"


def validation_windows(slices: Sequence[Any], days: int) -> list[tuple[str, list[Any], list[Any]]]:
    """(slice, training dates, validation dates) per slice: its training window without any slice's test days
    (a later slice's window holds an earlier slice's test days), whose last `days` are for judging only."""
    tested = {d for s in slices for d in s.test_dates}
    out = []
    for s in slices:
        window = [d for d in s.train_dates if d not in tested]
        if days >= len(window):
            raise ValueError(
                f"hpo.validation_days ({days}) must be below the {len(window)} days of slice {s.name}'s training "
                "window that are no slice's test days"
            )
        out.append((s.name, window[:-days], window[-days:]))
    return out


def run_search(
    family: Any,
    days: Any,
    cfg: Any,
    reward: Any,
    slices: Sequence[Any],
    home: Path,
    presets_dir: Path,
    log: Log = print,
    max_trials: int | None = None,
) -> SearchResult | None:
    """Run `cfg.hpo.trials` trials (or until `timeout_s`) of a study named after the family and its inputs, and
    write the best trial's preset. With `max_trials` > 0 run at most that many here and return None (a step of a
    fanned-out search); with 0 run none and gather the shared study's result."""
    import optuna

    hpo = cfg.hpo
    if not hpo.space:
        raise ValueError(f"{cfg.name}.yaml: hpo.space is empty: name the ppo settings to search")
    windows = validation_windows(slices, hpo.validation_days)
    evals = [max(1, round(hpo.steps_per_trial * (k + 1) / hpo.evals_per_trial)) for k in range(hpo.evals_per_trial)]
    url = hpo.storage_url(home)
    ident = json.dumps([cfg.name, cfg.to_dict()["ppo"], hpo.to_dict(), days.content_hash(), reward.sha256], default=str)
    study_name = f"{cfg.name}-{hashlib.sha256(ident.encode()).hexdigest()[:12]}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():  # the trial heartbeat has been "experimental" since Optuna 2.8
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(
            url,
            heartbeat_interval=hpo.heartbeat_s,
            grace_period=2 * hpo.heartbeat_s,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1),
        )
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(multivariate=True, seed=hpo.seed),
        pruner=optuna.pruners.MedianPruner(n_warmup_steps=hpo.evals_per_trial // 3),
    )
    start = time.perf_counter()

    def objective(trial: Any) -> float:
        params = {p.name: p.suggest(trial) for p in hpo.space}
        ppo = replace(cfg.ppo, **params)  # PPOConfig validates the combination (e.g. batch_size | rollout)
        value = _trial(trial, family, days, cfg, reward, ppo, windows, evals)
        log(f"trial {trial.number}: {params} -> {value:+,.2f} a validation day")
        return value

    counted = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len(study.get_trials(deepcopy=False, states=counted))
    remaining = max(0, hpo.trials - done)
    if max_trials is not None:
        remaining = min(remaining, max_trials)
    log(f"study {study_name} at {redact(url)}: {done} finished trial(s), running {remaining} more")
    # Workers sharing the study stop once it holds `trials` finished ones, whoever ran them (a trial killed with
    # its worker is failed by its silent heartbeat when a worker next starts or ends a trial, and retried once).
    enough = optuna.study.MaxTrialsCallback(hpo.trials, states=counted)
    if remaining:
        study.optimize(objective, n_trials=remaining, timeout=hpo.timeout_s, catch=(ValueError,), callbacks=[enough])
    if max_trials:
        return None
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise ValueError(f"study {study_name}: no trial completed (see the run log)")
    best = study.best_trial
    preset = {k: best.params[k] for k in sorted(best.params)}
    text = yaml.safe_dump({"ppo": preset}, sort_keys=True)
    sha = hashlib.sha256(text.encode()).hexdigest()
    path = Path(presets_dir) / f"{study_name}-{sha[:12]}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# Best trial {best.number} of study {study_name}: {best.value:+,.2f} a validation day\n" + text)
    trials = tuple(
        {"number": t.number, "state": t.state.name, "value": t.value, "params": dict(t.params)} for t in study.trials
    )
    return SearchResult(cfg.name, study_name, redact(url), preset, float(best.value), str(path), sha, trials,
                        time.perf_counter() - start)  # fmt: skip


def _trial(
    trial: Any,
    family: Any,
    days: Any,
    cfg: Any,
    reward: Any,
    ppo: Any,
    windows: Sequence[tuple[str, list[Any], list[Any]]],
    evals: Sequence[int],
) -> float:
    """Train on each slice's window without its validation days; report the mean validation P&L a day after each
    evaluation step, and let the pruner stop the trial."""
    import optuna

    from rl.core.intervals import day_score
    from rl.core.policies import agent
    from rl.core.train import build_model, torch_threads

    models = []
    with torch_threads(ppo.torch_threads):
        for _, train_dates, _ in windows:
            train = days.select_dates(train_dates)
            models.append(build_model(family.env_factory(train, cfg.env, reward), ppo))
        value = float("nan")
        for step, target in enumerate(evals):
            per_day = []
            for model, (_, _, validation_dates) in zip(models, windows, strict=True):
                model.learn(target - model.num_timesteps, reset_num_timesteps=False)
                validation = days.select_dates(validation_dates)
                played = family.evaluate(agent(model), validation, cfg, reward, "agent")
                per_day.append(day_score(family.metrics(played["agent"]), len(validation_dates)))
            value = float(sum(per_day) / len(per_day))
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
    if not math.isfinite(value):
        raise ValueError("the trial's validation P&L is not finite")
    return value


def load_preset(path: Path, sha256: str) -> dict[str, Any]:
    """A search's preset (its ppo settings), refused when the file is gone or no longer has the recorded sha256."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ValueError(f"the hyperparameter preset {Path(path).name} is gone; run the search again") from None
    body = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
    if hashlib.sha256(body.encode()).hexdigest() != sha256:
        raise ValueError(f"the hyperparameter preset {Path(path).name} was edited after its search; run it again")
    return dict(yaml.safe_load(body)["ppo"])
