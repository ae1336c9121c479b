"""Writes Evidently's per-feature drift decisions on synthetic data to test/monitor/evidently/ (the drift goldens).

Run: bash tools/drift/setup.sh && tools/drift/.venv/bin/python tools/drift/generate.py
Data: two references (600 rows: Evidently picks p-value tests; 4000 rows: distances) and, per reference, current
windows of 100, 500 and 1500 rows under eight shifts (none, slight, moderate, large mean shifts, a scale change, mild
and strong category changes, a mix). Six features cover every default test: two continuous, one integer count
(many values), one numeric with four values (chi-square / Jensen-Shannon), one categorical with five values and one
binary (Z-test). Values are rounded (3 decimals) before both Evidently and mlship see them.
Outputs: data.parquet (every row: reference or window id, features) and golden.json (per window and feature:
Evidently's method, threshold, statistic and decision; and Evidently's drifted-column count per window).
"""

import json
import pathlib

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

OUT = pathlib.Path(__file__).resolve().parents[2] / "test" / "monitor" / "evidently"
NUMERIC = ["num_normal", "num_skew", "num_count", "num_few"]
CATEGORICAL = ["cat", "flag"]
CATS = ["a", "b", "c", "d", "e"]

SHIFTS = {
    "none": {},
    "slight": {"mean": 0.03, "skew": 1.02, "lam": 8.1, "few": [0.4, 0.3, 0.2, 0.1], "cat": [0.3, 0.25, 0.2, 0.15, 0.1], "flag": 0.31},
    "moderate": {"mean": 0.25, "skew": 1.15, "lam": 8.8},
    "large": {"mean": 1.0, "skew": 1.8, "lam": 12, "few": [0.1, 0.2, 0.3, 0.4], "cat": [0.1, 0.1, 0.2, 0.3, 0.3], "flag": 0.6},
    "scale": {"sd": 1.6, "skew_sd": 0.9},
    "cat_mild": {"few": [0.36, 0.32, 0.2, 0.12], "cat": [0.27, 0.27, 0.2, 0.15, 0.11], "flag": 0.35},
    "cat_strong": {"few": [0.2, 0.2, 0.3, 0.3], "cat": [0.05, 0.15, 0.2, 0.3, 0.3], "flag": 0.55},
    "mixed": {"mean": 0.6, "cat": [0.1, 0.15, 0.2, 0.25, 0.3]},
}


def sample(rng, n, s):
    few_p = s.get("few", [0.4, 0.3, 0.2, 0.1])
    cat_p = s.get("cat", [0.3, 0.25, 0.2, 0.15, 0.1])
    return pd.DataFrame(
        {
            "num_normal": np.round(rng.normal(s.get("mean", 0.0), s.get("sd", 1.0), n), 3),
            "num_skew": np.round(s.get("skew", 1.0) * rng.lognormal(0.0, s.get("skew_sd", 0.6), n), 3),
            "num_count": rng.poisson(s.get("lam", 8.0), n).astype(float),
            "num_few": rng.choice([1.0, 2.0, 3.0, 4.0], n, p=few_p),
            "cat": rng.choice(CATS, n, p=cat_p),
            "flag": np.where(rng.random(n) < s.get("flag", 0.3), "yes", "no"),
        }
    )


def decided(method, value, threshold):
    """Evidently's own rule for each default test (stattests/*.py): KS p <= t, chi-square and Z p < t, distances >= t."""
    if method.startswith("K-S"):
        return bool(value <= threshold)
    if "p_value" in method:
        return bool(value < threshold)
    return bool(value >= threshold)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    frames = []
    windows = []
    seed = 1
    for ref_rows in (600, 4000):
        ref_id = f"ref{ref_rows}"
        ref = sample(np.random.default_rng(seed), ref_rows, {})
        seed += 1
        frames.append(ref.assign(part=ref_id))
        ref_ds = Dataset.from_pandas(ref, data_definition=definition)
        for shift, params in SHIFTS.items():
            for n in (100, 500, 1500):
                cur = sample(np.random.default_rng(seed), n, params)
                seed += 1
                wid = f"{ref_id}/{shift}/{n}"
                frames.append(cur.assign(part=wid))
                snap = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur, data_definition=definition), ref_ds)
                features = {}
                count = None
                for m in snap.dict()["metrics"]:
                    cfg = m["config"]
                    if cfg["type"].endswith("DriftedColumnsCount"):
                        count = m["value"]["count"]
                    elif cfg["type"].endswith("ValueDrift"):
                        v = float(m["value"])
                        features[cfg["column"]] = {
                            "method": cfg["method"],
                            "threshold": cfg["threshold"],
                            "statistic": v,
                            "drifted": decided(cfg["method"], v, cfg["threshold"]),
                        }
                assert count == sum(f["drifted"] for f in features.values()), (wid, count, features)
                windows.append({"id": wid, "reference": ref_id, "shift": shift, "rows": n, "features": features, "drifted_columns": count})
    data = pd.concat(frames, ignore_index=True)
    data.to_parquet(OUT / "data.parquet", index=False, compression="zstd")
    golden = {
        "generator": "tools/drift/generate.py",
        "evidently": __import__("evidently").__version__,
        "numerical_columns": NUMERIC,
        "categorical_columns": CATEGORICAL,
        "windows": windows,
    }
    (OUT / "golden.json").write_text(json.dumps(golden, indent=1) + "\n")
    print(f"wrote {len(windows)} windows, {len(data)} rows to {OUT}")


if __name__ == "__main__":
    main()
