"""The prop-firm config: the rule book is resolved from its file into the versioned settings, bad values are refused,
and the gated phase must be declared with validation days the training window can spare."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rl.core.family import TRAINING_SECTIONS, load_family
from rl.families.propfirm.config import EnvConfig, EvaluationConfig
from tests import ROOT
from tests.families.propfirm.test_rules import EOD, INTRADAY


def _write(tmp_path: Path, edit) -> Path:
    folder = tmp_path / "configs"
    (folder / "rulebooks").mkdir(parents=True)
    for name in ("apex_50k_intraday.yaml", "apex_50k_eod.yaml"):
        (folder / "rulebooks" / name).write_text((ROOT / "configs" / "rulebooks" / name).read_text())
    raw = yaml.safe_load((ROOT / "configs" / "propfirm.yaml").read_text())
    edit(raw)
    (folder / "propfirm.yaml").write_text(yaml.safe_dump(raw))
    return folder / "propfirm.yaml"


def test_the_rule_book_file_is_resolved_and_its_values_version_the_training(tmp_path) -> None:
    path = _write(tmp_path, lambda raw: None)
    cfg = load_family(path)
    assert cfg.env.rulebook == INTRADAY and cfg.env.rulebook_file == "rulebooks/apex_50k_intraday.yaml"
    before = cfg.version(TRAINING_SECTIONS)
    book = path.parent / "rulebooks" / "apex_50k_intraday.yaml"
    book.write_text(book.read_text().replace("profit_target: 3000", "profit_target: 3500"))
    edited = load_family(path).version(TRAINING_SECTIONS)
    assert edited != before  # an edit of the book retrains
    book.write_text(book.read_text() + "\n# a comment\n")
    assert load_family(path).version(TRAINING_SECTIONS) == edited  # a comment does not
    swapped = _write(tmp_path / "b", lambda raw: raw["env"].update(rulebook="rulebooks/apex_50k_eod.yaml"))
    assert load_family(swapped).env.rulebook == EOD
    phase = load_family(path).training_phases()[0][2]  # a phase's settings carry the resolved book too
    assert phase.episode_days == 1 and not phase.enforce_drawdown and phase.rulebook.profit_target == 3500


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r["env"].update(rulebook="rulebooks/missing.yaml"), "rulebooks/missing.yaml not found"),
        (lambda r: r["env"].update(rulebook="../secrets.yaml"), "relative .yaml path inside the configs folder"),
        (lambda r: r["env"].pop("rulebook"), "env: rulebook is required"),
        (lambda r: r["env"].update(max_contracts=0), "max_contracts must be a positive integer"),
        (lambda r: r["env"].update(trade_from="16:45"), "trade_from .* must be before the entry cutoff"),
        (lambda r: r["env"].update(episode_bars=[30, 20]), "episode_bars must be"),
        (lambda r: r["phases"][0].update(validation_days=0), "phases.entries.validation_days must be between 1"),
        (lambda r: r["phases"][0].update(name="warmup"), "gates its phase 'entries'"),
        (lambda r: r["evaluation"].update(confidence=1.5), "evaluation.confidence must be in"),
    ],
)
def test_bad_values_fail_at_load_naming_the_key(tmp_path, edit, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_family(_write(tmp_path, edit))


def test_a_resolved_config_round_trips_without_its_folder() -> None:
    cfg = EnvConfig(rulebook=INTRADAY, max_contracts=3)
    again = EnvConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.rulebook.sha256 == INTRADAY.sha256
    with pytest.raises(ValueError, match="only a config loaded from its folder"):
        EnvConfig.from_dict({"rulebook": "rulebooks/apex_50k_intraday.yaml"})
    assert EvaluationConfig.from_dict(EvaluationConfig().to_dict()) == EvaluationConfig()
