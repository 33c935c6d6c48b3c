#!/usr/bin/env bash
# Create or update the project's virtual environment in .venv with everything the tests and the
# examples need. Idempotent; uses uv when it can (about 15x faster than pip), pip otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${1:-dev}"
./scripts/system-deps.sh  # Debian packages: graphviz (SVG graphs), chromium (report tests), Virtuoso and Jena (RDF tests)
py="${PYTHON:-python3}"
# pip's find-links (where these machines keep the CPU torch wheel); uv ignores pip's config.
find_links=$("$py" -m pip config list 2>/dev/null | sed -n "s/.*find-links='\(.*\)'/\1/p" | head -n 1)

if command -v uv >/dev/null 2>&1 || "$py" -m pip install -q uv >/dev/null 2>&1; then
    uv=$(command -v uv || echo "$py -m uv")
    [ -x .venv/bin/python ] || $uv venv -q --python "$py" .venv
    $uv pip install -q --python .venv/bin/python ${find_links:+--find-links "$find_links"} \
        -c constraints.txt -e ".[$extras]"
else
    [ -x .venv/bin/python ] || "$py" -m venv .venv
    .venv/bin/python -m pip install -q -c constraints.txt -e ".[$extras]"
fi
