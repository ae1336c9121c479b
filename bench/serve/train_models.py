#!/usr/bin/env python3
"""Re-train the two bench models exactly as tools/fixtures/train.py trains the committed ONNX
fixtures, save them with joblib, and write the MLServer model repositories.

Run with bench/serve/.venv/bin/python (scikit-learn pinned to the fixtures' version).
The training code below is the same as tools/fixtures/train.py (dense_classifier): same loader,
float64 features, train_test_split(test_size=0.25, random_state=42, stratify=y), same estimator
arguments. It is replicated rather than imported because train.py imports the ONNX toolchain
(onnx, skl2onnx, xgboost, lightgbm) at module level, which this venv does not need.

Before anything is written, every model must reproduce the golden labels of its fixture
(test/fixtures/models/<fixture>/golden.json, the held-out rows) — the proof that MLServer, the
FastAPI baseline and mlship serve the same trained model. The script exits non-zero otherwise.

Output (bench/out/serve/):
  models/<key>/model.joblib                       the sklearn estimator
  models/<key>/golden.json                        {"rows": [[...]], "labels": [...]} (feature order)
  mlserver/<variant>/<key>/settings.json          server settings (ports come from the environment)
  mlserver/<variant>/<key>/<key>/model-settings.json
  manifest.json                                   what was written, versions, golden checks
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import joblib
import numpy as np
import sklearn
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

SEED = 42          # tools/fixtures/train.py
TEST_SIZE = 0.25   # tools/fixtures/train.py
FIXTURES_SKLEARN = "1.9.1"

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "test" / "fixtures" / "models"
OUT = ROOT / "bench" / "out" / "serve"

MODELS = {
    "gbdt": {
        "fixture": "breast-cancer-gbdt",
        "loader": load_breast_cancer,
        "make": lambda: GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=SEED),
    },
    "mlp": {
        "fixture": "digits-mlp",
        "loader": load_digits,
        "make": lambda: MLPClassifier(hidden_layer_sizes=(64,), max_iter=1000, random_state=SEED),
    },
}

# MLServer configurations tried (server settings.json + adaptive batching in model-settings.json).
# Common to all: debug off (no access log), no gzip middleware, no metrics server/middleware —
# MLServer's leanest request path. `parallel_workers: 0` runs inference in the server process;
# N > 0 sends every request to one of N inference worker processes over IPC.
# The variant used in the main run is DEFAULT_VARIANT (chosen by `run.ts --mlserver-variants all`,
# see bench/README.md).
VARIANTS = {
    "pw0": {"parallel_workers": 0},
    "pw1": {"parallel_workers": 1},
    "pw2": {"parallel_workers": 2},
    "pw0-ab": {"parallel_workers": 0, "max_batch_size": 64, "max_batch_time": 0.001},
    "pw2-ab": {"parallel_workers": 2, "max_batch_size": 64, "max_batch_time": 0.001},
}
DEFAULT_VARIANT = "pw0"


def train(key: str) -> dict:
    spec = MODELS[key]
    ds = spec["loader"]()
    X, y = ds.data.astype(np.float64), ds.target.astype(np.int64)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=TEST_SIZE, random_state=SEED, stratify=y)
    model = spec["make"]()
    model.fit(Xtr, ytr)

    golden = json.loads((FIXTURES / spec["fixture"] / "golden.json").read_text())
    names = list(golden["records"][0].keys())
    rows = np.array([[r[n] for n in names] for r in golden["records"]], dtype=np.float64)
    labels = np.asarray(golden["expected"]["label"], dtype=np.int64)
    if rows.shape != Xte.shape or not np.array_equal(rows, Xte):
        raise SystemExit(f"{key}: golden records are not this split's held-out rows")
    pred64 = model.predict(rows)
    if not np.array_equal(pred64, labels):
        bad = int((pred64 != labels).sum())
        raise SystemExit(f"{key}: re-trained model disagrees with golden labels on {bad} rows")
    # The servers receive FP32 tensors (as mlship does): check the float32 view too.
    pred32 = model.predict(rows.astype(np.float32))
    agree32 = int((pred32 == labels).sum())
    proba = model.predict_proba(rows)
    max_pdiff = float(np.abs(proba - np.asarray(golden["expected"]["probabilities"])).max())

    d = OUT / "models" / key
    d.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, d / "model.joblib")
    (d / "golden.json").write_text(json.dumps({"features": names, "rows": rows.tolist(),
                                               "labels": labels.tolist()}))
    print(f"  {key}: {type(model).__name__} on {spec['fixture']} — {len(labels)} golden rows, "
          f"labels equal (float64), {agree32}/{len(labels)} equal from float32 input, "
          f"max |proba - golden| = {max_pdiff:.2g}")
    return {"fixture": spec["fixture"], "estimator": type(model).__name__,
            "joblib": str(d / "model.joblib"), "features": len(names), "golden_rows": len(labels),
            "golden_labels_equal": True, "float32_agree": agree32, "max_proba_diff": max_pdiff}


def write_mlserver(key: str, joblib_path: str) -> None:
    n_features = len(json.loads((OUT / "models" / key / "golden.json").read_text())["features"])
    for variant, v in VARIANTS.items():
        root = OUT / "mlserver" / variant / key
        if root.exists():
            shutil.rmtree(root)
        (root / key).mkdir(parents=True)
        server = {"debug": False, "gzip_enabled": False, "metrics_endpoint": None,
                  "parallel_workers": v["parallel_workers"], "load_models_at_startup": True}
        (root / "settings.json").write_text(json.dumps(server, indent=2) + "\n")
        model = {
            "name": key,
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": joblib_path, "version": "1"},
            "inputs": [{"name": "float_input", "datatype": "FP32", "shape": [-1, n_features]}],
        }
        if "max_batch_size" in v:
            model["max_batch_size"] = v["max_batch_size"]
            model["max_batch_time"] = v["max_batch_time"]
        (root / key / "model-settings.json").write_text(json.dumps(model, indent=2) + "\n")


def main() -> int:
    if sklearn.__version__ != FIXTURES_SKLEARN:
        raise SystemExit(f"scikit-learn {sklearn.__version__} != fixtures' {FIXTURES_SKLEARN}")
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"train_models.py: scikit-learn {sklearn.__version__}, numpy {np.__version__}")
    written = {}
    for key in MODELS:
        written[key] = train(key)
        write_mlserver(key, written[key]["joblib"])
    manifest = {"sklearn": sklearn.__version__, "numpy": np.__version__, "models": written,
                "mlserver_variants": VARIANTS, "mlserver_default_variant": DEFAULT_VARIANT}
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"train_models.py: wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
