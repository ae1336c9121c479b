#!/usr/bin/env python3
"""The pandas + scikit-learn baseline of bench/batch: the same job as `mlship batch run` on the breast_cancer GBDT.

Usage: bench/batch/.venv/bin/python bench/batch/pandas_score.py IN.parquet OUT.parquet [batch_rows]

Re-trains the fixture's model exactly as tools/fixtures/train.py does (same split, seed and estimator arguments,
scikit-learn pinned to the fixture's version) and checks it reproduces the fixture's golden labels. Then, timed:
read the Parquet file in record batches (pyarrow), build a pandas DataFrame per batch, predict_proba, and write
label + probabilities per row to a Parquet file (pyarrow ParquetWriter) — streaming, like mlship, so memory stays
bounded. Prints one JSON line: rows, seconds (the timed part), rows_per_second, benign (rows labelled benign), cpu_s
(CPU seconds of the process, every thread, during the timed part).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "test" / "fixtures" / "models" / "breast-cancer-gbdt" / "golden.json"
LABELS = np.array(["malignant", "benign"], dtype=object)


def train() -> tuple[GradientBoostingClassifier, list[str]]:
    ds = load_breast_cancer()
    X, y = ds.data.astype(np.float64), ds.target.astype(np.int64)
    Xtr, Xte, ytr, _ = train_test_split(X, y, test_size=0.25, random_state=42, stratify=y)
    model = GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=42).fit(Xtr, ytr)
    golden = json.loads(GOLDEN.read_text())
    names = list(golden["records"][0].keys())
    rows = np.array([[r[n] for n in names] for r in golden["records"]], dtype=np.float64)
    if not np.array_equal(model.predict(rows), np.asarray(golden["expected"]["label"])):
        raise SystemExit("re-trained model disagrees with the fixture's golden labels")
    return model, names


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 65536
    model, names = train()
    started = time.perf_counter()
    cpu = time.process_time()
    rows = benign = 0
    writer = None
    for rb in pq.ParquetFile(src).iter_batches(batch_size=batch, columns=names):
        df = rb.to_pandas()
        proba = model.predict_proba(df[names].to_numpy(dtype=np.float64))
        label = proba.argmax(axis=1)
        out = pd.DataFrame({
            "label": LABELS[label],
            "probabilities_malignant": proba[:, 0].astype(np.float32),
            "probabilities_benign": proba[:, 1].astype(np.float32),
        })
        table = pa.Table.from_pandas(out, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(dst, table.schema, compression="zstd")
        writer.write_table(table)
        rows += len(df)
        benign += int(label.sum())
    if writer is not None:
        writer.close()
    secs = time.perf_counter() - started
    cpu_s = time.process_time() - cpu
    print(json.dumps({"rows": rows, "seconds": secs, "rows_per_second": rows / secs, "benign": benign, "cpu_s": cpu_s}))


if __name__ == "__main__":
    main()
