#!/usr/bin/env bash
# Set up .venv and run the main example end to end: the digits pipeline as a Prefect flow, each training
# a nested PyTorch ML run (params, per-step loss, validation accuracy, model versions, system and energy
# samples). Provenance goes to ./prov; then it is validated, exported as PROV-O into an Oxigraph store,
# and the store is asked for the best run.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh dev
.venv/bin/python example_workflows/prefect_digits/flow.py --save-dir prov "$@"
.venv/bin/yprov-wf validate prov
.venv/bin/yprov-wf export prov --store build/store
.venv/bin/yprov-wf query build/store runs --best accuracy@validation
