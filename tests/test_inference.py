"""The self-contained inference module: state round trips, input errors, loading without tailor."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from tailor import inference
from tailor.inference import ModelState


def _features(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "recency_days": rng.integers(0, 300, n).astype(float),
        "ipi_median_days": rng.integers(1, 60, n).astype(float),
        "frequency": rng.integers(1, 20, n).astype(float),
        "tenure_days": rng.integers(30, 700, n).astype(float),
        "purchase_days": rng.integers(1, 15, n).astype(float),
    }, index=pd.Index([f"c{i}" for i in range(n)], name="customer_id"))


def _churn_state() -> tuple[ModelState, pd.DataFrame]:
    x = _features()
    y = (x["recency_days"] > 120).astype(int)
    columns = list(x.columns)
    pipeline = Pipeline([("derive", FunctionTransformer(inference.derive_ratios)),
                         ("log", FunctionTransformer(inference.clip_log1p)),
                         ("model", LogisticRegression())]).fit(x, y)
    state = ModelState("churn", {"columns": columns, "numeric_columns": columns,
                                 "bgnbd": {"r": 0.8, "alpha": 40.0, "a": 0.5, "b": 2.0},
                                 "model_weight": 0.7, "horizon_days": 90}, estimator=pipeline)
    return state, x


def test_state_round_trips_arrays_text_ids_and_sparse_matrices(tmp_path: Path) -> None:
    repeat = sp.random(5, 7, density=0.3, format="csr", random_state=1, dtype=np.float32)
    state = ModelState("recommender", {"k": 3, "encodings": [["country", "country", None]]},
                       {"user_ids": np.array(["a", "b", "ccc"], dtype=object),
                        "bias": np.arange(4, dtype=np.float32)})
    state.put_sparse("repeat", repeat)
    state.put_sparse("ranked", None)
    loaded = ModelState.load(state.save(tmp_path / "state"))
    assert loaded.kind == "recommender" and loaded.meta == state.meta
    assert loaded.arrays["user_ids"].dtype == object
    assert loaded.arrays["user_ids"].tolist() == ["a", "b", "ccc"]
    assert loaded.arrays["bias"].dtype == np.float32
    assert (loaded.sparse("repeat") != repeat).nnz == 0
    assert loaded.sparse("ranked") is None


def test_churn_scorer_blends_the_pipeline_with_bgnbd(tmp_path: Path) -> None:
    state, x = _churn_state()
    scorer = inference.scorer_for(ModelState.load(state.save(tmp_path / "state")))
    p = state.estimator.predict_proba(x)[:, 1]
    q = inference.bgnbd_p_no_purchase(state.meta["bgnbd"], *inference.bgnbd_counts(x), 90)
    np.testing.assert_allclose(scorer.predict(x)["churn_probability"], 0.7 * p + 0.3 * q)
    assert scorer.predict(x).index.equals(x.index)


def test_bad_input_names_the_column_and_the_row() -> None:
    state, x = _churn_state()
    scorer = inference.scorer_for(state)
    with pytest.raises(inference.InferenceError, match=r"lacks column\(s\) \['frequency'\]"):
        scorer.predict(x.drop(columns="frequency"))
    broken = x.copy()
    broken.loc["c7", "tenure_days"] = np.inf
    with pytest.raises(inference.InferenceError, match=r"'tenure_days'.*'c7'"):
        scorer.predict(broken)


def test_a_logged_pipeline_loads_where_tailor_cannot_be_imported(tmp_path: Path) -> None:
    """The pipeline's tailor steps are pickled by value: loading needs no tailor."""
    state, x = _churn_state()
    path = state.save(tmp_path / "state")
    x.to_parquet(tmp_path / "x.parquet")
    code = (
        "import sys; sys.modules['tailor'] = None\n"  # any `import tailor...` now fails
        "import cloudpickle, pandas as pd\n"
        f"model = cloudpickle.loads(open({str(path / inference.ESTIMATOR_FILE)!r}, 'rb').read())\n"
        f"x = pd.read_parquet({str(tmp_path / 'x.parquet')!r})\n"
        "print(','.join(map(str, model.predict_proba(x)[:, 1].tolist())))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    got = np.array([float(v) for v in done.stdout.strip().split(",")])
    np.testing.assert_allclose(got, state.estimator.predict_proba(x)[:, 1])


def test_segment_scorer_assigns_the_nearest_centre_in_the_fitted_space() -> None:
    x = pd.DataFrame({"a": [0.0, 10.0, np.nan], "b": [1.0, -1.0, 0.0]})
    scorer = inference.SegmentScorer(
        ("a", "b"), log_mask=np.array([False, False]), fill=np.array([10.0, 0.0]),
        lower=np.array([-100.0, -100.0]), upper=np.array([100.0, 100.0]),
        mean=np.zeros(2), scale=np.ones(2), centers=np.array([[0.0, 1.0], [10.0, -1.0]]),
        names=("near zero", "near ten"))
    out = scorer.predict(x)
    assert out["segment"].tolist() == [0, 1, 1]  # the missing `a` is filled with 10
    assert out["segment_name"].tolist() == ["near zero", "near ten", "near ten"]


def test_recommender_scorer_honours_k_and_exclusion() -> None:
    repeat = sp.csr_matrix(np.array([[1.0, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    scorer = inference.RecommenderScorer(
        k=2, exclude_purchased=True,
        weights={"lightfm": 0.0, "repeat": 1.0, "popularity": 1.0, "cold_lightfm": 0.0},
        user_ids=np.array(["u1", "u2"], dtype=object),
        item_ids=np.array(["i1", "i2", "i3", "i4"], dtype=object),
        user_embeddings=np.zeros((2, 2), np.float32), item_embeddings=np.zeros((4, 2), np.float32),
        item_biases=np.zeros(4, np.float32), repeat=repeat,
        popularity=np.array([0.1, 0.9, 0.5, 0.2], dtype=np.float32))
    frame = pd.DataFrame({"customer_id": ["u1", "new"]})
    default = scorer.predict(frame)
    assert default.groupby("customer_id")["product_id"].apply(list).to_dict() == {
        "u1": ["i2", "i3"], "new": ["i2", "i3"]}
    again = scorer.predict(frame, k=1, exclude_purchased=False)
    assert again.groupby("customer_id")["product_id"].apply(list).to_dict() == {
        "u1": ["i1"], "new": ["i2"]}  # i1: bought before (1.0) + popularity
    with pytest.raises(inference.InferenceError, match="k must be at least 1"):
        scorer.predict(frame, k=0)


def test_the_module_runs_as_model_code_where_tailor_cannot_be_imported() -> None:
    """MLflow executes the file under a fresh module name; it must need nothing from tailor,
    and it must hand MLflow the pyfunc."""
    code = (
        "import sys; sys.modules['tailor'] = None\n"
        "import importlib.util, mlflow.models.model as m\n"
        f"spec = importlib.util.spec_from_file_location('code_model_x', {inference.__file__!r})\n"
        "module = importlib.util.module_from_spec(spec); sys.modules['code_model_x'] = module\n"
        "spec.loader.exec_module(module)\n"
        "print(type(m.__mlflow_model__).__name__)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "TailorModel"
