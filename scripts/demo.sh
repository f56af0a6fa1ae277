#!/usr/bin/env bash
# The README's first command: set up, then materialize the whole asset graph on the embedded market.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pipelines.demo "$@"
