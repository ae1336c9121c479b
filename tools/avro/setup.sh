#!/usr/bin/env bash
# Create tools/avro/.venv with fastavro, the Avro reader/writer the stream Avro test checks mlship against.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$HERE/../../scripts/python-venv" "$HERE"
