#!/usr/bin/env bash
# Every benchmark, one after the other (each prints its figures and the ratio to its goal), then the wall
# time of the main command on a fresh home. Run on a quiet machine: timings move 2-3x under load.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
for b in bench_market bench_data bench_ingest bench_sources bench_env bench_train bench_funding_env bench_funding_train bench_propfirm bench_options bench_zerodte bench_resume; do
  echo "=== $b"
  "$PY" "benchmarks/$b.py"
done
echo "=== main command (pipelines.demo) on a fresh home"
home="$(mktemp -d)"
start=$(date +%s)
TRADEFLOW_HOME="$home" "$PY" -m pipelines.demo | tail -4
echo "main command wall time: $(( $(date +%s) - start )) s (goal < 600 s)"
rm -rf "$home"
