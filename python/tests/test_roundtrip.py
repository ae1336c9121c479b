"""Every supported framework on scikit-learn's bundled datasets: mlship.save → `mlship bundle verify` (Node) →
mlship.register to a real `mlship serve` → Client.predict equals the library's own predictions."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine

import mlship
from conftest import bundle_verify

REL, ABS = 1e-4, 1e-6


def iris() -> tuple[pd.DataFrame, pd.Series]:
    ds = load_iris(as_frame=True)
    return ds.data, ds.target


def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    ds = load_diabetes(as_frame=True, scaled=False)
    return ds.data, ds.target


def sk_iris() -> tuple[Any, Any, dict[str, Any]]:
    from sklearn.linear_model import LogisticRegression
    X, y = load_iris(return_X_y=True)  # numpy: features are named f0..f3
    return LogisticRegression(max_iter=1000).fit(X, y), X, {"labels": ["setosa", "versicolor", "virginica"]}


def sk_cancer() -> tuple[Any, Any, dict[str, Any]]:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    ds = load_breast_cancer(as_frame=True)
    m = Pipeline([("sc", StandardScaler()), ("rf", RandomForestClassifier(n_estimators=20, max_depth=5, random_state=0,
                                                                         n_jobs=1))]).fit(ds.data, ds.target)
    return m, ds.data, {"labels": list(ds.target_names)}


def sk_ridge() -> tuple[Any, Any, dict[str, Any]]:
    from sklearn.linear_model import Ridge
    X, y = diabetes()
    return Ridge().fit(X, y), X, {"metadata": {"dataset": "diabetes", "metrics": {"r2": 0.5}}}


def xgb_wine() -> tuple[Any, Any, dict[str, Any]]:
    import xgboost
    ds = load_wine(as_frame=True)
    return xgboost.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1).fit(ds.data, ds.target), ds.data, {}


def xgb_booster() -> tuple[Any, Any, dict[str, Any]]:
    import xgboost
    X, y = diabetes()
    return xgboost.train({"objective": "reg:squarederror", "nthread": 1}, xgboost.DMatrix(X, label=y), 20), X, {}


def lgbm_iris() -> tuple[Any, Any, dict[str, Any]]:
    import lightgbm
    X, y = iris()
    return lightgbm.LGBMClassifier(n_estimators=20, verbose=-1, n_jobs=1).fit(X, y), X, {}


def lgbm_booster() -> tuple[Any, Any, dict[str, Any]]:
    import lightgbm
    X, y = diabetes()
    params = {"objective": "regression", "verbose": -1, "num_threads": 1}
    return lightgbm.train(params, lightgbm.Dataset(X, label=y), 20), X, {}


def cb_iris() -> tuple[Any, Any, dict[str, Any]]:
    import catboost
    X, y = iris()
    return catboost.CatBoostClassifier(iterations=30, verbose=False, thread_count=1, allow_writing_files=False).fit(X, y), X, {}


def cb_diabetes() -> tuple[Any, Any, dict[str, Any]]:
    import catboost
    X, y = diabetes()
    return catboost.CatBoostRegressor(iterations=30, verbose=False, thread_count=1, allow_writing_files=False).fit(X, y), X, {}


def mixed_frame() -> tuple[pd.DataFrame, np.ndarray]:
    """Numbers, a string column, a pandas categorical and missing values (NaN in a numeric column)."""
    X, y = diabetes()
    df = X.copy()
    df["sex"] = df["sex"].map({1.0: "female", 2.0: "male"}).astype(object)
    df["band"] = pd.Categorical(np.where(df["age"] < 50, "young", "old"), categories=["young", "old"])
    df.loc[df.index[::7], "bmi"] = np.nan
    return df, (y > y.median()).astype(int).to_numpy()


def mixed() -> tuple[Any, Any, dict[str, Any]]:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    df, y = mixed_frame()
    num = [c for c in df.columns if c not in ("sex", "band")]
    m = Pipeline([
        ("prep", ColumnTransformer([
            ("sex", OneHotEncoder(), ["sex"]),  # strict: its categories go to the manifest
            ("band", OneHotEncoder(handle_unknown="ignore"), ["band"]),
            ("num", Pipeline([("imp", SimpleImputer()), ("sc", StandardScaler())]), num),
        ])),
        ("clf", LogisticRegression(max_iter=1000)),
    ]).fit(df, y)
    return m, df, {"labels": ["low", "high"]}


def polars_iris() -> tuple[Any, Any, dict[str, Any]]:
    import polars as pl
    from sklearn.linear_model import LogisticRegression
    X, y = iris()
    return LogisticRegression(max_iter=1000).fit(X, y), pl.from_pandas(X), {}


CASES: dict[str, Callable[[], tuple[Any, Any, dict[str, Any]]]] = {
    "sk-iris": sk_iris, "sk-cancer": sk_cancer, "sk-ridge": sk_ridge, "xgb-wine": xgb_wine,
    "xgb-booster": xgb_booster, "lgbm-iris": lgbm_iris, "lgbm-booster": lgbm_booster, "cb-iris": cb_iris,
    "cb-diabetes": cb_diabetes, "mixed": mixed, "polars-iris": polars_iris,
}


def library_outputs(model: Any, X: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """The library's own predictions: (labels or values, probabilities or None)."""
    kind = type(model).__name__
    if kind == "Booster":
        mod = type(model).__module__
        if mod.startswith("xgboost"):
            import xgboost
            return np.asarray(model.predict(xgboost.DMatrix(X))), None
        return np.asarray(model.predict(X)), None
    proba = model.predict_proba(X) if hasattr(model, "predict_proba") else None
    return np.asarray(model.predict(X)).reshape(-1), proba


@pytest.mark.parametrize("case", list(CASES))
def test_save_verify_register_predict(case: str, tmp_path: Path, server: str) -> None:
    model, sample, kw = CASES[case]()
    path = mlship.save(model, tmp_path / case, sample=sample, **kw)
    assert sorted(p.name for p in path.iterdir()) == ["golden.json", "mlship.yaml", "model.onnx"]

    verified = bundle_verify(path)
    assert verified["ok"] is True and verified["name"] == case
    assert verified["golden"]["rows"] == min(len(sample), 1000)

    v = mlship.register(path, server=server, alias="production")
    assert v["name"] == case and v["served"] is True and v["aliases"] == ["production"]

    client = mlship.Client(server)
    frame = sample.to_pandas() if type(sample).__module__.startswith("polars") else sample
    got = client.predict(frame if not isinstance(frame, np.ndarray) else
                         pd.DataFrame(frame, columns=[f"f{i}" for i in range(frame.shape[1])]), model=case)
    assert len(got) == len(frame)
    want, proba = library_outputs(model, sample.to_pandas() if type(sample).__module__.startswith("polars") else sample)
    labels = kw.get("labels")
    if proba is not None:
        classes = list(getattr(model, "classes_", range(proba.shape[1])))
        names = labels or [str(c) for c in classes]
        # the label column holds the class names; one probability column per class
        expected_labels = [names[classes.index(c)] for c in want] if labels else [str(c) for c in want]
        assert [str(x) for x in got["label"]] == expected_labels
        cols = [f"probabilities_{n}" for n in names]
        assert list(got.columns) == ["label", *cols]
        np.testing.assert_allclose(got[cols].to_numpy(), proba, rtol=REL, atol=ABS)
    else:
        (out,) = got.columns
        np.testing.assert_allclose(got[out].to_numpy(dtype=np.float64), want.reshape(-1), rtol=REL, atol=ABS)


def test_infer_over_oip_rest_and_labels_in_the_manifest(tmp_path: Path, server: str) -> None:
    from sklearn.linear_model import LogisticRegression
    X, y = load_iris(return_X_y=True)
    m = LogisticRegression(max_iter=1000).fit(X, y)
    path = mlship.save(m, tmp_path / "b", sample=X, name="infer-iris", labels=["setosa", "versicolor", "virginica"])
    mlship.register(path, server=server)
    c = mlship.Client(server, model="infer-iris")
    out = c.infer({"float_input": X.astype(np.float32)})  # (a lazy server loads the model on this first request)
    assert c.metadata()["parameters"]["labels"] == ["setosa", "versicolor", "virginica"]
    assert out["label"].dtype == np.int64 and out["label"].shape == (150,)
    np.testing.assert_array_equal(out["label"], m.predict(X))
    np.testing.assert_allclose(out["probabilities"], m.predict_proba(X), rtol=REL, atol=ABS)
    only = c.infer({"float_input": X[:2].astype(np.float32)}, outputs=["probabilities"])
    assert list(only) == ["probabilities"]
