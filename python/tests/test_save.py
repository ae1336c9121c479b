"""mlship.save without a server: what goes into golden.json and mlship.yaml."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

import mlship


def test_a_numpy_sample_is_checked_on_the_values_as_given_not_their_float32_copy(tmp_path: Path) -> None:
    """The fixture LightGBM regressor splits at values that float32 rounding moves across a threshold: the library's
    outputs (golden.json) must come from the float64 sample, and the ONNX model still agrees within tolerance."""
    import lightgbm
    X, y = load_diabetes(return_X_y=True, scaled=False)
    Xtr, Xte, ytr, _ = train_test_split(X, y, test_size=0.25, random_state=42)
    m = lightgbm.LGBMRegressor(n_estimators=100, learning_rate=0.05, num_leaves=15, random_state=42, n_jobs=1,
                               deterministic=True, verbose=-1).fit(Xtr, ytr)
    names = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    p = mlship.save(m, tmp_path / "lgbm", sample=Xte, feature_names=names)
    golden = json.loads((p / "golden.json").read_text())
    assert golden["expected"]["variable"] == m.predict(Xte).tolist()
    assert golden["records"][0] == dict(zip(names, Xte[0].tolist()))
    manifest = yaml.safe_load((p / "mlship.yaml").read_text())
    assert [f["name"] for f in manifest["features"]] == names
    assert manifest["metadata"]["framework"] == "lightgbm" and manifest["task"] == "regression"


def test_mixed_frame_manifest_per_column_inputs_categories_and_missing(tmp_path: Path) -> None:
    from test_roundtrip import mixed
    model, df, kw = mixed()
    p = mlship.save(model, tmp_path / "mixed", sample=df, ranges=True, **kw)
    m = yaml.safe_load((p / "mlship.yaml").read_text())
    inputs = {t["name"]: t for t in m["signature"]["inputs"]}
    assert inputs["sex"] == {"name": "sex", "datatype": "BYTES", "shape": [-1, 1]}
    assert inputs["band"]["datatype"] == "BYTES" and inputs["age"]["datatype"] == "FP32"
    feats = {f["name"]: f for f in m["features"]}
    assert feats["sex"]["categories"] == ["female", "male"]  # from the strict OneHotEncoder
    assert feats["band"]["categories"] == ["young", "old"]  # from the pandas categorical
    assert feats["bmi"]["allow_missing"] is True and "allow_missing" not in feats["age"]
    assert feats["age"]["min"] == float(df["age"].min()) and feats["age"]["max"] == float(df["age"].max())
    assert "min" not in feats["sex"]
    assert m["labels"] == ["low", "high"]
    assert len(m["examples"]) == 10 and m["examples"][0]["sex"] in ("female", "male")
    golden = json.loads((p / "golden.json").read_text())
    assert sum(r["bmi"] is None for r in golden["records"]) == int(df["bmi"].isna().sum()) > 0
    assert np.array_equal(golden["expected"]["label"], model.predict(df))
