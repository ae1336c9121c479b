#!/usr/bin/env bash
# Create tools/drift/.venv with Evidently (pinned) for generate.py, which writes the drift goldens test/monitor/evidently/.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$HERE/../../scripts/python-venv" "$HERE"
