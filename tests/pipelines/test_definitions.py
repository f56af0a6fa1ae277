"""The code location loads, its names are stable, and the pure-Python packages stay free of Dagster."""

from __future__ import annotations

import ast
from datetime import date, datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from assets.partitions import SESSIONS
from pipelines.definitions import build_definitions
from tests import ROOT  # noqa: E402

EXPECTED_ASSETS = {
    "raw_ticks",
    "bars_1m",
    "features_1m",
    "options_chain_1m",
    "intraday_reward_config",
    "intraday_data_config",
    "intraday_training_config",
    "intraday_evaluation_config",
    "intraday_dataset",
    "intraday_reward_audit",
    "intraday_policy",
    "intraday_evaluation",
    "raw_funding_rates",
    "raw_mark_prices",
    "funding_opportunities",
    "funding_reward_config",
    "funding_data_config",
    "funding_training_config",
    "funding_evaluation_config",
    "funding_dataset",
    "funding_reward_audit",
    "funding_policy",
    "funding_evaluation",
    "propfirm_reward_config",
    "propfirm_data_config",
    "propfirm_training_config",
    "propfirm_evaluation_config",
    "propfirm_dataset",
    "propfirm_reward_audit",
    "propfirm_entries_policy",
    "propfirm_policy",
    "propfirm_evaluation",
    "zerodte_reward_config",
    "zerodte_data_config",
    "zerodte_training_config",
    "zerodte_evaluation_config",
    "zerodte_dataset",
    "zerodte_reward_audit",
    "zerodte_policy",
    "zerodte_evaluation",
    "intraday_hpo",
    "funding_hpo",
    "propfirm_hpo",
    "zerodte_hpo",
    *(
        f"{kind}_{suffix}"
        for kind in ("intraday", "funding", "propfirm", "zerodte")
        for suffix in ("promoted_policy", "signals")
    ),
}
EXPECTED_CHECKS = {
    ("raw_ticks", "quarantine_report"),
    ("raw_ticks", "session_coverage"),
    ("bars_1m", "vendor_bar_agreement"),
    ("bars_1m", "bar_integrity"),
    ("bars_1m", "quote_coverage"),
    ("bars_1m", "extreme_bar_returns"),
    ("features_1m", "features_finite"),
    ("features_1m", "features_truncation_invariant"),
    ("options_chain_1m", "chain_quote_rules"),
    ("intraday_reward_audit", "reward_scale_sane"),
    ("intraday_evaluation", "action_collapse"),
    ("intraday_evaluation", "reward_pnl_alignment"),
    ("intraday_evaluation", "train_eval_mismatch"),
    ("raw_funding_rates", "funding_quarantine"),
    ("raw_funding_rates", "funding_duplicates"),
    ("raw_funding_rates", "funding_gaps"),
    ("raw_funding_rates", "funding_bounds"),
    ("funding_reward_audit", "reward_scale_sane"),
    ("funding_evaluation", "reward_pnl_alignment"),
    ("funding_evaluation", "action_collapse"),
    ("funding_evaluation", "symbol_concentration"),
    ("funding_evaluation", "train_eval_mismatch"),
    ("propfirm_reward_audit", "reward_scale_sane"),
    ("propfirm_entries_policy", "entries_gate"),
    ("propfirm_evaluation", "pass_rate_beats_baselines"),
    ("propfirm_evaluation", "action_mix"),
    ("propfirm_evaluation", "train_eval_mismatch"),
    ("zerodte_reward_audit", "reward_scale_sane"),
    ("zerodte_evaluation", "hold_collapse"),
    ("zerodte_evaluation", "reward_pnl_alignment"),
    ("zerodte_evaluation", "stop_reliability"),
    ("zerodte_evaluation", "train_eval_mismatch"),
    *((f"{kind}_evaluation", "beats_baselines") for kind in ("intraday", "funding", "propfirm", "zerodte")),
    *((f"{kind}_promoted_policy", "promoted") for kind in ("intraday", "funding", "propfirm", "zerodte")),
    *(
        (policy, check)
        for policy in (
            "intraday_policy",
            "funding_policy",
            "propfirm_entries_policy",
            "propfirm_policy",
            "zerodte_policy",
        )
        for check in (
            "entropy_not_collapsed",
            "entropy_left_uniform",
            "approx_kl_bounded",
            "clip_fraction_in_range",
            "value_loss_stable",
            "explained_variance_positive",
        )
    ),
}


def test_definitions_load_with_the_expected_names(tf_env) -> None:
    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == EXPECTED_ASSETS
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert checks == EXPECTED_CHECKS
    for key in ("intraday_policy", "propfirm_entries_policy", "propfirm_policy"):  # a failed training resumes once
        assert graph.get(dg.AssetKey(key)).assets_def.op.retry_policy.max_retries == 1
    market = defs.resolve_job_def("market_data_job")
    assert {k.to_user_string() for k in market.asset_layer.executable_asset_keys} == {
        "raw_ticks",
        "bars_1m",
        "features_1m",
        "options_chain_1m",
    }
    assert defs.get_schedule_def("market_data_nightly_schedule").job_name == "market_data_job"
    assert defs.get_schedule_def("funding_data_nightly_schedule").job_name == "funding_data_job"
    funding = defs.resolve_job_def("funding_data_job")
    assert {k.to_user_string() for k in funding.asset_layer.executable_asset_keys} == {
        "raw_funding_rates",
        "raw_mark_prices",
        "funding_opportunities",
    }
    assert {s.name for s in defs.sensors} == {
        "model_automation_sensor",
        "config_observation_sensor",
        "stale_models_sensor",
        "dead_runs_sensor",
    }


def test_every_asset_check_schedule_and_sensor_has_a_one_sentence_description(tf_env) -> None:
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    described = {}
    for key in graph.get_all_asset_keys():
        described[f"asset {key.to_user_string()}"] = graph.get(key).description
    for check_key in graph.asset_check_keys:
        check = graph.get_check_spec(check_key)
        described[f"check {check_key.asset_key.to_user_string()}.{check_key.name}"] = check.description
    for schedule in defs.schedules:
        described[f"schedule {schedule.name}"] = schedule.description
    for sensor in defs.sensors:
        described[f"sensor {sensor.name}"] = sensor.description
    for job in defs.jobs:
        described[f"job {job.name}"] = job.description
    missing = sorted(name for name, text in described.items() if not text or not text.strip())
    assert not missing
    assert len(described) > 40


@pytest.mark.parametrize("package", ["rl", "warehouse", "market"])
def test_pure_packages_never_import_dagster(package: str) -> None:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0].startswith("dagster")]
    assert not offenders


def test_partitions_follow_the_configured_exchanges() -> None:
    """market.yaml trades NYSE symbols and the CME roots ES and NQ: a partition is a trading day of either."""
    keys = SESSIONS.get_partition_keys_in_range(dg.PartitionKeyRange("2024-07-01", "2024-07-10"))
    assert keys == [
        "2024-07-01",
        "2024-07-02",
        "2024-07-03",
        "2024-07-04",  # NYSE shut; CME Globex trades, closing early
        "2024-07-05",
        "2024-07-08",
        "2024-07-09",
        "2024-07-10",
    ]
    assert SESSIONS.has_partition_key("2024-11-29")  # early close is still a session
    assert not SESSIONS.has_partition_key("2024-12-25")
    assert SESSIONS.has_partition_key("2024-01-15")  # MLK Day: NYSE shut, the futures trade
    assert not SESSIONS.has_partition_key("2024-03-29")  # Good Friday: both shut


def test_history_reaches_back_to_2000_and_futures_add_their_exchange_days(tmp_path) -> None:
    from assets.partitions import check_partition_keys, history_start, market_settings, sessions_partitions
    from market.calendar import CME_EQUITY, NYSE

    assert SESSIONS.has_partition_key("2013-06-03") and SESSIONS.get_first_partition_key() == "2000-01-03"
    market = tmp_path / "market.yaml"
    market.write_text("symbols: [SPY, ESU24]\nhistory_start: 2009-05-22\n")
    start, rules = market_settings(market)
    assert start == date(2009, 5, 22) and rules == (NYSE, CME_EQUITY)
    both = sessions_partitions(start, rules)
    assert both.has_partition_key("2024-01-15") and not both.has_partition_key("2024-12-25")
    assert not both.has_partition_key("2009-05-21")
    with pytest.raises(ValueError, match=r"1999-12-31 is not a session partition: partitions run from 2000-01-03 "):
        check_partition_keys(["1999-12-31", "2013-06-03"])
    for value, match in (("1999-01-04", "must be between 2000-01-01 and today"), ("May 2009", "must be a date")):
        with pytest.raises(ValueError, match=f"market.yaml: history_start {match}"):
            history_start({"history_start": value})


def _tick(when: str) -> dg.RunRequest | dg.SkipReason:
    from pipelines.schedules import market_data_nightly_schedule

    t = datetime.fromisoformat(when).replace(tzinfo=ZoneInfo("America/New_York"))
    ctx = dg.build_schedule_context(scheduled_execution_time=t)
    return market_data_nightly_schedule()(ctx)


def test_nightly_schedule_refreshes_the_latest_closed_session_and_never_one_still_trading() -> None:
    request = _tick("2024-07-05T18:30")
    assert isinstance(request, dg.RunRequest) and request.partition_key == "2024-07-05"
    assert request.run_key == "nightly-2024-07-05"
    for when, session in (
        ("2024-07-04T18:30", "2024-07-03"),  # a holiday: the early-closed session before, under its own run key
        ("2024-12-25T18:30", "2024-12-24"),
        ("2024-07-06T18:30", "2024-07-05"),  # a Saturday (a cron moved to every day)
        ("2024-07-05T12:00", "2024-07-03"),  # before the close: that session is still trading
        ("2024-07-03T13:05", "2024-07-03"),  # after an early close
    ):
        request = _tick(when)
        assert (request.partition_key, request.run_key) == (session, f"nightly-{session}"), when


def test_metadata_rounds_floats_to_what_matters() -> None:
    from assets.common import metadata

    shown = metadata(
        {"pnl": 2495.188093497481, "loss": 1.9123456789e13, "kl": 0.00721234567, "n": 7, "nested": [0.1234567891]}
    )
    assert shown["pnl"] == 2495.19 and shown["loss"] == 1.91235e13 and shown["kl"] == 0.00721235 and shown["n"] == 7
    assert shown["nested"].value == [0.123457]


@pytest.mark.parametrize(
    ("file", "edit", "match"),
    [
        ("market.yaml", lambda m: m["embedded"].update(egde=0), r"market.yaml: embedded: unknown keys \['egde'\]"),
        ("market.yaml", lambda m: m["embedded"].update(seed="abc"), "market.yaml: embedded: .*seed must be an int"),
        ("market.yaml", lambda m: m.update(symbols="SPY"), "market.yaml: symbols must be a non-empty list"),
        ("market.yaml", lambda m: m["funding"].update(embedded={"sede": 1}), "market.yaml: funding.embedded"),
        (
            "market.yaml",
            lambda m: m.update(symbols=["SPY", "AAPL"]),
            r"market.yaml: unknown symbol 'AAPL' in symbols; known instruments: SPY, QQQ, SPX, ES, MES, NQ, MNQ",
        ),
        (
            "market.yaml",
            lambda m: m.update(symbols=["SPYC"], instruments={"SPYC": {"kind": "option", "point_value": 100}}),
            "'SPYC' is an option; the embedded market generates equities, ETFs, indexes and CME",
        ),
        (
            "market.yaml",
            lambda m: m.update(instruments={"AAPL": {"kind": "equity", "tick_size": 0}}),
            r"market.yaml: instruments.AAPL: instrument 'AAPL': tick must be a number > 0",
        ),
        (
            "market.yaml",
            lambda m: m.update(instruments={"AAPL": {"kind": "equity", "lot": 100}}),
            r"instruments.AAPL: unknown keys \['lot'\]",
        ),
        ("intraday.yaml", lambda f: f["ppo"].update(learning_rate=-0.1), "intraday.yaml: ppo.learning_rate"),
        ("funding.yaml", lambda f: f["ppo"].update(gamma=1.5), r"funding.yaml: ppo.gamma must be in \(0, 1\]"),
        ("intraday.yaml", lambda f: f["env"].update(shares=0), "intraday.yaml: EnvConfig.shares"),
        ("intraday.yaml", lambda f: f.update(phases=[{"name": "a", "timesteps": 0}]), "phases.a.timesteps"),
        (
            "intraday.yaml",
            lambda f: f["data"].update(start="1999-06-01"),
            r"intraday.yaml: data: date 1999-06-01 outside the supported calendar range 2000-01-01",
        ),
        (
            "rewards/intraday.yaml",
            lambda r: r["components"]["pnl"].update(weight="abc"),
            "intraday.yaml: reward 'intraday_.*pnl.weight must be a number",
        ),
    ],
)
def test_every_config_file_is_validated_when_the_definitions_load(tf_env, file: str, edit, match: str) -> None:
    tf_env.edit_yaml(tf_env.configs / file, edit)
    with pytest.raises(ValueError, match=match):
        build_definitions()


def test_a_data_range_before_the_first_partition_is_refused_naming_the_setting(tf_env) -> None:
    from assets.family import check_data_range
    from rl.core.family import load_family
    from rl.core.registry import get_family

    cfg = load_family(tf_env.configs / "intraday.yaml")  # data from 2024-01-02
    family = get_family("intraday")
    check_data_range("intraday.yaml", family, cfg, date(2024, 1, 2))
    late = r"intraday.yaml: data.start needs partitions from 2024-01-02, but they start at 2024-01-03 \(history_start"
    with pytest.raises(ValueError, match=late):
        check_data_range("intraday.yaml", family, cfg, date(2024, 1, 3))


def test_instruments_declared_in_market_yaml_are_known_to_the_whole_code_location(tf_env) -> None:
    from market.symbols import declare, get_symbol

    declared = {
        "AAPL": {"kind": "equity", "start_price": 190.0, "description": "Apple"},
        "RTY": {
            "kind": "future",
            "calendar": "CMES",
            "timezone": "America/Chicago",
            "session_close": "16:00",
            "tick_size": 0.1,
            "point_value": 50,
            "commission": 2.25,
            "contract_months": "HMUZ",
            "expiry_rule": "third_friday",
        },
    }
    tf_env.edit_yaml(tf_env.configs / "market.yaml", lambda m: m.update(symbols=["SPY", "AAPL"], instruments=declared))
    try:
        build_definitions()
        aapl, rty = get_symbol("AAPL"), get_symbol("RTYZ24")
        assert (aapl.kind, aapl.tick, aapl.commission, aapl.session_rule.calendar) == ("equity", 0.01, 0.005, "XNYS")
        assert (rty.root, rty.point_value, rty.tick, rty.expiry) == ("RTY", 50.0, 0.1, date(2024, 12, 20))
    finally:
        declare({})
    with pytest.raises(ValueError, match="unknown symbol 'AAPL'"):
        get_symbol("AAPL")


def test_the_gated_curriculum_sits_between_the_audit_and_the_policy(tf_env) -> None:
    """propfirm: audit -> entries stage (its blocking gate) -> policy -> evaluation; the training job and the model
    sensors cover the stage, so a reward or config edit retrains both phases."""
    from pipelines.sensors import model_keys

    defs = build_definitions()
    graph = defs.resolve_asset_graph()

    def parents(name: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(dg.AssetKey(name)).parent_keys}

    assert parents("propfirm_entries_policy") == {"propfirm_dataset", "propfirm_reward_audit"}
    assert parents("propfirm_policy") == {"propfirm_dataset", "propfirm_reward_audit", "propfirm_entries_policy"}
    gate = next(k for k in graph.asset_check_keys if k.name == "entries_gate")
    assert graph.get_check_spec(gate).blocking
    job = defs.resolve_job_def("propfirm_training_job")
    assert "propfirm_entries_policy" in {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert dg.AssetKey("propfirm_entries_policy") in model_keys("propfirm")
    assert parents("intraday_policy") == {"intraday_dataset", "intraday_reward_audit"}  # no gate, no stage


def test_a_nightly_cron_can_be_moved_by_its_variable_and_a_malformed_one_is_refused(monkeypatch) -> None:
    from pipelines.schedules import funding_data_nightly_schedule, market_data_nightly_schedule

    assert market_data_nightly_schedule().cron_schedule == "30 18 * * 1-5"
    monkeypatch.setenv("TRADEFLOW_MARKET_DATA_CRON", "15 21 * * 1-5")
    moved = market_data_nightly_schedule()
    assert moved.cron_schedule == "15 21 * * 1-5" and "TRADEFLOW_MARKET_DATA_CRON" in moved.description
    monkeypatch.setenv("TRADEFLOW_FUNDING_CRON", "at midnight")
    with pytest.raises(ValueError, match="TRADEFLOW_FUNDING_CRON='at midnight' is not a cron schedule"):
        funding_data_nightly_schedule()
