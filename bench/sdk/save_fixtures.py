"""bench/sdk helper: trains the project's fixture models (tools/fixtures/train.py, unchanged) into a temp directory
and times each mlship.save call (convert + check against the library on the held-out rows + write), per run.
Prints one JSON object: {"runs": [{model: seconds}, ...], "out": dir}."""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "fixtures"))
import train  # noqa: E402  (imports mlship from python/src)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    out = Path(args.out)
    real_save = train.mlship.save
    runs: list[dict[str, float]] = []

    def timed(model: Any, path: Any, **kw: Any) -> Path:
        t = time.perf_counter()
        p = real_save(model, path, **kw)
        runs[-1][kw["name"]] = time.perf_counter() - t
        return p

    train.mlship.save = timed
    train.OUT = out / "models"
    train.EXAMPLES = out / "examples"
    for _ in range(args.runs):
        runs.append({})
        with contextlib.redirect_stdout(io.StringIO()):
            train.main()
    print(json.dumps({"runs": runs, "out": str(train.OUT)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
