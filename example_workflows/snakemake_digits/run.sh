#!/usr/bin/env bash
# Run the Snakemake digits pipeline with the yprov logger plugin, then show and validate the provenance.
# Usage (from anywhere): example_workflows/snakemake_digits/run.sh [extra snakemake args, e.g. --config epochs=1]
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
[ -x .venv/bin/snakemake ] || ./scripts/setup.sh dev
work="${WORK_DIR:-build/snakemake_digits}"
save="${SAVE_DIR:-$repo/prov}"
.venv/bin/snakemake -s example_workflows/snakemake_digits/Snakefile -d "$work" -c 2 \
    --logger yprov --logger-yprov-save-dir "$save" --logger-yprov-namespace https://example.org/digits/ "$@"
run_dir=$(ls -d "$save"/snakemake_digits/*/ | sort | tail -n 1)
.venv/bin/yprov-wf show "$run_dir"
.venv/bin/yprov-wf validate "$run_dir"
