"""tradeflow's tests, laid out like the code: core/, families/<kind>/, warehouse/, market/, pipelines/."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository root
