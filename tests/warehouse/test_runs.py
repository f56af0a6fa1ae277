"""Insert-only ml.* run records: write once, read back, refuse a reused run_id without changing anything."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import polars as pl
import pytest

from warehouse.db import connect
from warehouse.runs import (
    EvaluationRecord,
    RunExistsError,
    get_episodes,
    get_metrics,
    get_run,
    get_training_slices,
    list_runs,
    metric_rows,
    new_run_id,
    record_dataset,
    record_evaluation,
    record_training_run,
)


@pytest.fixture
def con():
    c = connect(":memory:")
    yield c
    c.close()


def _episodes(run_id: str | None = None) -> list[dict]:
    rows = []
    for policy, ckpt in (("agent", "ckpt-s0"), ("flat", None), ("sma_crossover", None)):
        for i, d in enumerate((date(2024, 1, 9), np.datetime64("2024-01-10"))):
            row = {
                "slice": "s0",
                "checkpoint_id": ckpt,
                "policy": policy,
                "symbol": "SPY",
                "session_date": d,
                "reward": np.float64(0.5 * i),
                "net_pnl": 12.5 - i,
                "gross_pnl": 15.0,
                "commission": -2.0,
                "spread_cost": -0.5 - i,
                "n_trades": np.int64(3),
                "wins": 2,
                "n_steps": 359,
                "done_reason": "end_of_data",
                "action_counts": {"HOLD": 350, "BUY": 3, "SELL": 3, "CLOSE": 3},
            }
            if run_id:
                row["run_id"] = run_id
            rows.append(row)
    return rows


def _evaluation(run_id: str) -> EvaluationRecord:
    run = {
        "run_id": run_id,
        "family": "intraday",
        "training_run_id": "train-1",
        "data_version": "abc",
        "reward_name": "intraday",
        "reward_sha256": "f" * 64,
        "code_version": "c0de",
        "report_path": "reports/intraday/x/report.md",
        "summary": {"sharpe": 1.2, "dates": [date(2024, 1, 9)], "sortino": float("nan")},
        "config": {"ppo": {"n_steps": 64}},
    }
    metrics = metric_rows("s0", "agent", {"sharpe": 1.2, "win_rate": 0.6}) + metric_rows(
        "s0", "flat", {"sharpe": 0.0, "win_rate": 0.0}
    )
    return EvaluationRecord(run=run, episodes=_episodes(), metrics=metrics)


def test_an_evaluation_run_round_trips(con) -> None:
    run_id = new_run_id("intraday")
    counts = record_evaluation(con, _evaluation(run_id))
    assert counts == {"evaluation_runs": 1, "evaluation_episodes": 6, "evaluation_metrics": 4}
    run = get_run(con, run_id)
    assert run["summary_json"] == {"sharpe": 1.2, "dates": ["2024-01-09"], "sortino": None}
    assert run["family"] == "intraday" and run["config_json"] == {"ppo": {"n_steps": 64}}
    assert isinstance(run["created_at"], datetime)
    episodes = get_episodes(con, run_id)
    assert episodes.height == 6 and set(episodes["policy"]) == {"agent", "flat", "sma_crossover"}
    agent = episodes.filter(pl.col("policy") == "agent")
    assert set(agent["policy_kind"]) == {"agent"} and set(agent["checkpoint_id"]) == {"ckpt-s0"}
    assert set(episodes.filter(pl.col("policy") == "flat")["policy_kind"]) == {"baseline"}
    assert episodes["session_date"].dtype == pl.Date and episodes["net_pnl"].sum() == pytest.approx(72.0)
    assert sorted(set(episodes["session_date"])) == [date(2024, 1, 9), date(2024, 1, 10)]
    assert episodes["action_counts_json"][0] == '{"BUY": 3, "CLOSE": 3, "HOLD": 350, "SELL": 3}'
    wide = get_metrics(con, run_id, wide=True)
    assert wide.columns == ["slice", "policy", "sharpe", "win_rate"] and wide.height == 2
    assert get_metrics(con, run_id).height == 4


def test_reusing_a_run_id_raises_and_changes_nothing(con) -> None:
    run_id = "intraday-fixed"
    record_evaluation(con, _evaluation(run_id))
    again = _evaluation(run_id)
    changed = EvaluationRecord({**again.run, "family": "other"}, again.episodes[:1], [])
    with pytest.raises(RunExistsError, match="insert-only"):
        record_evaluation(con, changed)
    assert get_run(con, run_id)["family"] == "intraday"
    assert get_episodes(con, run_id).height == 6
    assert con.execute("SELECT count(*) FROM ml.evaluation_runs").fetchone()[0] == 1


def test_a_bad_episode_rolls_back_the_whole_evaluation(con) -> None:
    record = _evaluation("eval-2")
    broken = [*record.episodes, {"slice": "s0", "policy": "agent", "symbol": "SPY"}]  # no session_date
    with pytest.raises(ValueError, match="session_date"):
        record_evaluation(con, EvaluationRecord(record.run, broken, record.metrics))
    typo = [{**record.episodes[0], "net_pl": 1.0}]
    with pytest.raises(ValueError, match="unknown column 'net_pl'"):
        record_evaluation(con, EvaluationRecord(record.run, typo, []))
    dup = [record.episodes[0], record.episodes[0]]  # same (slice, policy, symbol, date) twice
    with pytest.raises(Exception, match="(?i)constraint|duplicate"):
        record_evaluation(con, EvaluationRecord(record.run, dup, []))
    assert list_runs(con).height == 0 and get_episodes(con, "eval-2").height == 0
    record_evaluation(con, {"run": record.run, "episodes": pl.DataFrame(record.episodes[::2]), "metrics": []})
    assert get_episodes(con, "eval-2").height == 3


def test_training_runs_and_datasets_are_insert_only_and_listed_newest_first(con) -> None:
    slices = [
        {
            "run_id": "train-1",
            "slice": f"s{i}",
            "family": "intraday",
            "checkpoint_id": f"train-1/s{i}",
            "timesteps": 2048,
            "stats": {"steps_per_s": 9000.0},
            "config": {"seed": i},
            "created_at": datetime(2024, 2, 1, 12, i),
        }
        for i in range(2)
    ]
    assert record_training_run(con, slices) == 2
    with pytest.raises(RunExistsError):
        record_training_run(con, slices[:1])
    with pytest.raises(ValueError, match="one run_id"):
        record_training_run(con, [slices[0], {**slices[1], "run_id": "other"}])
    later = [{**s, "run_id": "train-2", "family": "other", "created_at": datetime(2024, 3, 1)} for s in slices]
    record_training_run(con, later)
    assert get_training_slices(con, "train-1")["slice"].to_list() == ["s0", "s1"]
    assert list_runs(con, "training")["run_id"].to_list()[:1] == ["train-2"]
    assert set(list_runs(con, "training", family="intraday")["run_id"]) == {"train-1"}
    assert get_run(con, "train-1", "training")["stats_json"] == {"steps_per_s": 9000.0}

    dataset = {
        "run_id": "ds-1",
        "family": "intraday",
        "data_version": "sha",
        "start_date": "2024-01-02",
        "end_date": date(2024, 1, 10),
        "symbols": ["SPY"],
        "feature_names": ["ret_1m"],
        "n_rows": 1000,
    }
    record_dataset(con, dataset)
    with pytest.raises(RunExistsError):
        record_dataset(con, dataset)
    stored = get_run(con, "ds-1", "dataset")
    assert stored["start_date"] == date(2024, 1, 2) and stored["symbols_json"] == ["SPY"]
    with pytest.raises(KeyError):
        get_run(con, "missing")
    with pytest.raises(ValueError, match="unknown run kind"):
        list_runs(con, "nope")


def test_new_run_ids_are_unique() -> None:
    ids = {new_run_id("intraday") for _ in range(50)}
    assert len(ids) == 50 and all(i.startswith("intraday-") for i in ids)
