#!/usr/bin/env bash
# Install the Debian packages the project's optional parts and tests need, only those missing:
#   graphviz  `dot`, which draws the provenance graph as SVG (yprov-wf graph, report, end_run(create_svg=True))
#   chromium  headless browser that opens the HTML report in the tests
#   virtuoso-opensource                     Virtuoso 7.2 (virtuoso-t, isql-vt): a triple store the RDF tests upload to
#   libapache-jena-java default-jre-headless  Apache Jena 4.5 TDB2 tools (Java classes; see docs/rdf.md's recipe)
# Idempotent; runs apt-get (update first) only when something is missing. Needs root (or sudo).
set -euo pipefail

packages=(graphviz chromium fonts-dejavu-core virtuoso-opensource libapache-jena-java default-jre-headless)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: not a Debian-like system; install these yourself: ${missing[*]}" >&2
    exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        echo "system-deps: run as root to install: ${missing[*]}" >&2
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
