#!/usr/bin/env bash
# Set up .venv and run the main example end to end: the digits pipeline with a nested PyTorch run.
# Provenance goes to ./prov; the script prints the workflow tree and validates the files.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh dev
.venv/bin/python example_workflows/plain_digits/pipeline.py --save-dir prov "$@"
.venv/bin/yprov-wf validate prov
