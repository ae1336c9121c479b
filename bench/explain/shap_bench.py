"""shap.TreeExplainer (path-dependent) on one tree fixture's model file and the rows bench/explain/run.ts wrote.

  python shap_bench.py --model FILE --kind xgboost|lightgbm --data X.f64 --rows N --features F --targets T
                       --rounds R --out VALUES.f64

Reads the rows (float64, row-major, NaN = missing), builds the explainer once with one library thread, explains
every row R times (the first call is a warm-up, not timed) timing each call by process CPU time and wall time,
writes the last values as float64 rows x targets x features (mlship's layout) to --out, and prints one JSON line.
"""
import argparse
import json
import time

import lightgbm
import numpy as np
import shap
import xgboost

ap = argparse.ArgumentParser()
for name in ("model", "kind", "data", "out"):
    ap.add_argument(f"--{name}", required=True)
for name in ("rows", "features", "targets", "rounds"):
    ap.add_argument(f"--{name}", required=True, type=int)
a = ap.parse_args()

X = np.fromfile(a.data, dtype=np.float64).reshape(a.rows, a.features)
if a.kind == "xgboost":
    model = xgboost.Booster(model_file=a.model)
    model.set_param({"nthread": 1})
    library = f"xgboost {xgboost.__version__}"
else:
    model = lightgbm.Booster(model_file=a.model, params={"num_threads": 1})
    library = f"lightgbm {lightgbm.__version__}"
explainer = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent")
explainer.shap_values(X[: min(100, a.rows)])  # warm-up

cpu, wall = [], []
values = None
for _ in range(a.rounds):
    c0, w0 = time.process_time(), time.perf_counter()
    values = explainer.shap_values(X)
    cpu.append(time.process_time() - c0)
    wall.append(time.perf_counter() - w0)

v = np.asarray(values, dtype=np.float64)
# shap: rows x features (one target) or rows x features x targets; mlship: rows x targets x features.
v = v.reshape(a.rows, a.features, 1) if v.ndim == 2 else v
np.ascontiguousarray(v.transpose(0, 2, 1)).tofile(a.out)
base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64)).tolist()
print(json.dumps({"shap": shap.__version__, "library": library, "cpu_s": cpu, "wall_s": wall, "base": base}))
