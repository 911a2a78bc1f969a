#!/usr/bin/env bash
# Install soc with its development tools, fetch the real Elasticsearch, then lint, type-check and run every test.
# Usage: scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -e ".[dev]"
python3 scripts/es_server.py fetch >/dev/null      # Maven Central -> cache, once; tests start it on a free port
python3 -m soc.core.kernels >/dev/null                  # compile the packet kernels (once per machine; a failure stops here)
for tool in tshark java mvn; do
    command -v "$tool" >/dev/null || { echo "scripts/test.sh: $tool is missing (see README: Requirements)" >&2; exit 1; }
done

ruff check .
mypy
python3 -m pytest "$@"
