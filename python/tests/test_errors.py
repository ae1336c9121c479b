"""Bad input: each a clear Python exception, with nothing written (and nothing registered)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression

import mlship
from conftest import CLI, mlship_cli, node_env, start_server, stop_server


def nothing_written(tmp_path: Path) -> None:
    assert list(tmp_path.iterdir()) == [], f"left behind: {list(tmp_path.iterdir())}"


def test_unsupported_model_lists_what_is_supported(tmp_path: Path) -> None:
    class Rules:
        def predict(self, X: np.ndarray) -> np.ndarray:
            return np.zeros(len(X))

    X, _ = load_iris(return_X_y=True)
    with pytest.raises(mlship.UnsupportedModelError, match=r"cannot convert a .*Rules; supported: scikit-learn .*xgboost"
                                                           r".*lightgbm.*catboost"):
        mlship.save(Rules(), tmp_path / "rules", sample=X)
    nothing_written(tmp_path)


def test_a_scikit_learn_estimator_skl2onnx_does_not_know(tmp_path: Path) -> None:
    from sklearn.base import BaseEstimator, RegressorMixin

    class Mean(RegressorMixin, BaseEstimator):
        def fit(self, X: np.ndarray, y: np.ndarray) -> "Mean":
            self.mean_ = float(np.mean(y))
            self.n_features_in_ = X.shape[1]
            return self

        def predict(self, X: np.ndarray) -> np.ndarray:
            return np.full(len(X), self.mean_)

    X, y = load_diabetes(return_X_y=True)
    with pytest.raises(mlship.UnsupportedModelError, match=r"skl2onnx cannot convert Mean"):
        mlship.save(Mean().fit(X, y), tmp_path / "mean", sample=X)
    nothing_written(tmp_path)


def test_sample_columns_that_do_not_match_the_model(tmp_path: Path) -> None:
    ds = load_iris(as_frame=True)
    m = LogisticRegression(max_iter=1000).fit(ds.data, ds.target)
    wrong = ds.data.rename(columns={"petal width (cm)": "petal_width"})
    with pytest.raises(mlship.SampleMismatchError,
                       match=r"missing \['petal width \(cm\)'\]; not in the model \['petal_width'\]"):
        mlship.save(m, tmp_path / "iris", sample=wrong)
    with pytest.raises(mlship.SampleMismatchError, match=r"in another order"):
        mlship.save(m, tmp_path / "iris", sample=ds.data[ds.data.columns[::-1]])
    with pytest.raises(mlship.SampleMismatchError, match=r"takes 4 features but the sample has 3 columns"):
        mlship.save(m, tmp_path / "iris", sample=ds.data.to_numpy()[:, :3])
    nothing_written(tmp_path)


def test_a_conversion_that_does_not_match_the_library_is_refused_with_the_worst_rows(tmp_path: Path) -> None:
    """A custom estimator whose predict differs from what its (registered) converter exports."""
    from skl2onnx import update_registered_converter
    from skl2onnx.operator_converters.linear_regressor import convert_sklearn_linear_regressor
    from skl2onnx.shape_calculators.linear_regressor import calculate_linear_regressor_output_shapes

    class Shifted(LinearRegression):
        def predict(self, X: np.ndarray) -> np.ndarray:
            out = super().predict(X)
            out[::10] += 1.0  # every tenth row differs from the exported linear model
            return out

    update_registered_converter(Shifted, "MlshipTestShifted", calculate_linear_regressor_output_shapes,
                                convert_sklearn_linear_regressor)
    X, y = load_diabetes(return_X_y=True)
    with pytest.raises(mlship.ConversionMismatchError, match=r"differs from the library .* on 45 of 442 sample rows"
                                                            r"[\s\S]*row \d*0: library \[") as e:
        mlship.save(Shifted().fit(X, y), tmp_path / "shifted", sample=X)
    assert len(e.value.worst) == 5
    assert all(w["row"] % 10 == 0 and w["excess"] > 0.9 for w in e.value.worst)
    nothing_written(tmp_path)


def test_save_refuses_to_overwrite_a_bundle_unless_told(tmp_path: Path) -> None:
    X, y = load_iris(return_X_y=True)
    m = LogisticRegression(max_iter=1000).fit(X, y)
    p = mlship.save(m, tmp_path / "iris", sample=X, examples=0)
    before = (p / "mlship.yaml").read_text()
    with pytest.raises(mlship.MlshipError, match=r"already holds files; pass overwrite=True"):
        mlship.save(m, p, sample=X)
    assert (p / "mlship.yaml").read_text() == before
    assert "examples" not in before  # examples=0 writes none; the default writes 10
    mlship.save(m, p, sample=X, overwrite=True)
    assert (p / "mlship.yaml").read_text().count("\n  - {f0:") == 10
    with pytest.raises(mlship.SampleMismatchError, match=r"a numpy reference must be 2-D with one column per feature "
                                                         r"\(4: \['f0', 'f1', 'f2', 'f3'\]\), got shape \(150, 3\)"):
        mlship.save(m, tmp_path / "ref", sample=X, reference=X[:, :3])
    assert not (tmp_path / "ref").exists()
    # a numpy reference, like a numpy sample, holds the features in order
    prof = json.loads((mlship.save(m, tmp_path / "ref", sample=X, reference=X) / "profile.json").read_text())
    assert list(prof["features"]) == ["f0", "f1", "f2", "f3"] and prof["features"]["f2"]["count"] == 150
    assert prof["outputs"]["label"]["count"] == 150


def test_a_string_column_with_missing_values_is_refused(tmp_path: Path) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder
    df = pd.DataFrame({"city": ["a", "b", None, "a"], "x": [1.0, 2.0, 3.0, 4.0]})
    m = Pipeline([("p", ColumnTransformer([("c", OneHotEncoder(handle_unknown="ignore"), ["city"])],
                                          remainder="passthrough")),
                  ("r", LinearRegression())]).fit(df.fillna("a"), [1, 2, 3, 4])
    with pytest.raises(mlship.SampleMismatchError, match=r"'city' is a string column with missing values"):
        mlship.save(m, tmp_path / "m", sample=df)
    nothing_written(tmp_path)


def test_register_refuses_a_signature_change_unless_allowed(tmp_path: Path, server: str) -> None:
    X, y = load_iris(return_X_y=True)
    iris = mlship.save(LogisticRegression(max_iter=1000).fit(X, y), tmp_path / "a", sample=X, name="sig")
    Xc, yc = load_breast_cancer(return_X_y=True)
    cancer = mlship.save(LogisticRegression(max_iter=5000).fit(Xc, yc), tmp_path / "b", sample=Xc, name="sig")
    first = mlship.register(iris, server=server)
    with pytest.raises(mlship.ServerError, match=r"signature differs from sig@\d+[\s\S]*allow_signature_change=true") as e:
        mlship.register(cancer, server=server)
    assert e.value.status == 400
    second = mlship.register(cancer, server=server, allow_signature_change=True)
    assert second["version"] == first["version"] + 1


def test_register_to_a_registry_uri_runs_the_node_cli(tmp_path: Path) -> None:
    X, y = load_iris(return_X_y=True)
    p = mlship.save(LogisticRegression(max_iter=1000).fit(X, y), tmp_path / "via-cli", sample=X)
    reg = f"sqlite:{tmp_path / 'cli.db'}"
    import os
    old = os.environ["PATH"]
    os.environ["PATH"] = node_env()["PATH"]  # the repository's Node 24 runs bin/mlship.js
    try:
        v = mlship.register(p, registry=reg, cli=CLI, alias="production")
        assert (v["name"], v["version"], v["aliases"]) == ("via-cli", 1, ["production"])
        v2 = mlship.register(p, registry=reg, cli=CLI.parents[1])  # the checkout: bin/mlship.js is found in it
        assert v2["version"] == 2
        with pytest.raises(mlship.MlshipError, match=r"mlship models register failed: .*invalid alias"):
            mlship.register(p, registry=reg, cli=CLI, alias="1")
    finally:
        os.environ["PATH"] = old
    with pytest.raises(mlship.CliNotFoundError, match=r"no mlship CLI at .*npm install -g mlship"):
        mlship.register(p, registry=reg, cli=tmp_path / "nowhere")


def test_server_errors_carry_the_server_message(server: str) -> None:
    c = mlship.Client(server)
    with pytest.raises(mlship.ServerError, match=r"unknown model 'nope'") as e:
        c.predict(pd.DataFrame({"a": [1.0]}), model="nope")
    assert e.value.status == 404
    with pytest.raises(mlship.MlshipError, match=r"cannot reach the mlship server"):
        mlship.Client("http://127.0.0.1:9").predict(pd.DataFrame({"a": [1.0]}), model="x")


def test_upload_needs_an_admin_token(tmp_path: Path) -> None:
    """A server whose registry has tokens: a predict-scope token cannot upload (403, nothing registered), an admin one
    can, and without any token the server answers 401."""
    reg = f"sqlite:{tmp_path / 'r.db'}"
    predict = json.loads(mlship_cli("tokens", "create", "--scope", "predict", "--registry", reg, "--json").stdout)
    admin = json.loads(mlship_cli("tokens", "create", "--scope", "admin", "--registry", reg, "--json").stdout)
    X, y = load_iris(return_X_y=True, as_frame=True)
    p = tmp_path / "b"
    mlship.save(LogisticRegression(max_iter=500).fit(X, y), p, sample=X, name="guarded")
    proc, url = start_server(reg, ["guarded"])
    try:
        with pytest.raises(mlship.ServerError, match=r"admin") as e:
            mlship.register(p, server=url, token=predict["token"])
        assert e.value.status == 403
        with pytest.raises(mlship.ServerError) as e:
            mlship.register(p, server=url)
        assert e.value.status == 401
        listed = mlship_cli("models", "list", "--registry", reg, "--json").stdout
        assert json.loads(listed) == [], "nothing registered by a refused upload"
        v = mlship.register(p, server=url, token=admin["token"])
        assert v["version"] == 1
    finally:
        stop_server(proc)
