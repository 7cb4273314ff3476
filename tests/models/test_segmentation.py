"""K-means segmentation: recovers known segments, names them sanely, predicts the same anywhere."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import adjusted_rand_score

from tailor.configs import load_settings
from tailor.configs.schema import GenerateSettings, SegmentationSettings
from tailor.data.generate import generate
from tailor.data.validate import validate_dataset
from tailor.models.customer_sample import sample_ids
from tailor.models.features import customer_features, default_as_of
from tailor.models.segmentation import (
    METRIC_NAMES,
    SegmentationError,
    evaluate_segmentation,
    fit_segmentation,
    new_study,
    objective_value,
    search_grid,
    segment_profile,
    trials_frame,
    tune,
)
from tailor.models.segmentation_plots import plot_metrics_vs_k, plot_segments_pca
from tailor.models.segmentation_profile import FALLBACK_NAME, name_segments

optuna.logging.set_verbosity(optuna.logging.WARNING)
ROOT = Path(__file__).resolve().parents[2]

# Latent groups in log space: recency, frequency, order value, interval, distinct products.
_BLOB_MEANS = {
    "champions": (np.log(8), np.log(25), np.log(60), np.log(12), np.log(80)),
    "new": (np.log(15), np.log(1.5), np.log(40), np.log(20), np.log(6)),
    "hibernating": (np.log(350), np.log(2), np.log(25), np.log(90), np.log(5)),
}


def _blobs(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """RFM-like customers from three log-normal groups (heavy-tailed in raw units)."""
    rng = np.random.default_rng(seed)
    names = list(_BLOB_MEANS)
    seg = rng.choice(len(names), size=n)
    mu = np.array([_BLOB_MEANS[k] for k in names])[seg]
    rec, fr, aov, ipi, dp = (mu + rng.normal(0, 0.35, size=mu.shape)).T
    frequency = np.maximum(1.0, np.round(np.exp(fr)))
    tenure = np.where(seg == 1, 30.0, 600.0) * np.exp(rng.normal(0, 0.2, n))
    frame = pd.DataFrame({
        "recency_days": np.exp(rec), "frequency": frequency,
        "monetary": frequency * np.exp(aov), "avg_order_value": np.exp(aov),
        "ipi_median_days": np.exp(ipi), "distinct_products": np.round(np.exp(dp)),
        "return_rate": rng.uniform(0, 0.05, n), "tenure_days": tenure,
    }, index=pd.Index([f"c{i:04d}" for i in range(n)], name="customer_id"))
    return frame, pd.Series(np.array(names)[seg], index=frame.index)


def _settings(**update: object) -> SegmentationSettings:
    return load_settings().segmentation.model_copy(update={"n_init": 4, **update})


@pytest.fixture(scope="module")
def generated() -> tuple[pd.DataFrame, pd.Series]:
    settings = load_settings()
    data = generate(GenerateSettings(customers=800, products=200, days=400, seed=3))
    ds = validate_dataset(data.dataset, settings.data).dataset
    features = customer_features(ds.transactions, default_as_of(ds.transactions),
                                 settings.features, ds.customers, ds.products)
    truth = data.truth["customers"].set_index("customer_id")["segment"]
    return features, truth


@pytest.fixture(scope="module")
def blob_model() -> tuple[pd.DataFrame, pd.Series, object]:
    features, truth = _blobs()
    settings = _settings()
    return features, truth, fit_segmentation(features, {"k": 3, "log": True}, settings)


def test_tuning_recovers_generated_segments(generated: tuple[pd.DataFrame, pd.Series]) -> None:
    features, truth = generated
    assert any(c.startswith("cat_share_") for c in features.columns)
    settings = load_settings().segmentation.model_copy(update={
        "k_min": 3, "k_max": 7, "category_mix_choices": [True], "clip_quantile_choices": [1.0]})
    study = new_study(settings)
    params = tune(study, features, settings, n_trials=8)
    model = fit_segmentation(features, params, settings)
    metrics = evaluate_segmentation(model, features, settings, truth=truth)
    assert metrics["ari_truth"] >= 0.85, (params, metrics)
    assert metrics["ari_truth"] > metrics["baseline_rfm_grid_ari_truth"]
    for name in METRIC_NAMES:
        assert np.isfinite(metrics[name])
    done = trials_frame(study)
    assert {"silhouette", "stability_ari", "davies_bouldin", "calinski_harabasz",
            "smallest_cluster_share"} <= set(done.columns)
    assert isinstance(plot_metrics_vs_k(study), Figure)
    assert isinstance(plot_segments_pca(model, features), Figure)


def test_blob_segments_are_found_and_named(blob_model: tuple) -> None:
    features, truth, model = blob_model
    pred = model.predict(features)
    assert adjusted_rand_score(truth, pred["segment"]) > 0.95
    # The group that is recent, frequent and spends most must be called champions.
    by_truth = pd.crosstab(truth, pred["segment_name"])
    assert by_truth.loc["champions"].idxmax() == "champions"
    assert by_truth.loc["new"].idxmax() == "new"
    assert by_truth.loc["hibernating"].idxmax() in {"hibernating", "lost"}


def test_profile_table_is_consistent(blob_model: tuple) -> None:
    features, _, model = blob_model
    settings = _settings()
    profile = segment_profile(model, features, settings)
    labels = model.predict(features)["segment"]
    assert profile["size"].sum() == len(features)
    assert profile["share"].sum() == pytest.approx(1.0)
    assert profile["segment_name"].is_unique
    expected = features.groupby(labels.to_numpy())["monetary"].mean()
    np.testing.assert_allclose(profile["monetary_mean"], expected.to_numpy())
    assert list(profile["size"]) == sorted(profile["size"], reverse=True)  # ids by size
    assert profile[["r_score", "f_score", "m_score"]].stack().between(0, 1).all()


def test_duplicate_rule_names_get_suffixes() -> None:
    scores = pd.DataFrame({"r_score": [0.9, 0.9, 0.5, 0.1], "f_score": [0.9, 0.9, 0.5, 0.1],
                           "m_score": [0.9, 0.9, 0.5, 0.1], "t_score": [0.5] * 4})
    names = name_segments(scores)
    assert names[:2] == ["champions", "champions_2"]
    assert names[2] == FALLBACK_NAME
    assert len(set(names)) == 4


def test_category_shares_become_top_categories() -> None:
    features, _ = _blobs(n=300, seed=1)
    features["cat_share_toys"] = np.where(features["frequency"] > 5, 0.8, 0.1)
    features["cat_share_garden"] = 1 - features["cat_share_toys"]
    settings = _settings()
    model = fit_segmentation(features, {"k": 3, "category_mix": True}, settings)
    assert "cat_share_toys" in model.feature_columns
    profile = segment_profile(model, features, settings)
    assert profile["top_categories"].str.match(r"^(toys|garden) \(\d+%\)").all()


def test_predict_requires_trained_columns(blob_model: tuple) -> None:
    features, _, model = blob_model
    with pytest.raises(SegmentationError, match=r"ipi_median_days"):
        model.predict(features.drop(columns=["ipi_median_days"]))
    bad = features.copy()
    bad.iloc[5, bad.columns.get_loc("monetary")] = np.inf
    with pytest.raises(SegmentationError, match=r"'monetary'.*c0005"):
        model.predict(bad)
    pred = model.predict(features.iloc[::-1])
    assert pred.index.equals(features.index[::-1])
    assert pred["segment"].dtype == np.int64


def test_pickled_model_predicts_identically_in_fresh_process(blob_model: tuple,
                                                             tmp_path: Path) -> None:
    features, _, model = blob_model
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    features.to_parquet(tmp_path / "features.parquet")
    script = textwrap.dedent(f"""
        import pickle, pandas as pd
        model = pickle.loads(open({str(tmp_path / 'model.pkl')!r}, 'rb').read())
        frame = pd.read_parquet({str(tmp_path / 'features.parquet')!r})
        model.predict(frame).to_parquet({str(tmp_path / 'pred.parquet')!r})
    """)
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT, timeout=120)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "pred.parquet"),
                                  model.predict(features))


def test_the_default_space_is_searched_whole(generated: tuple[pd.DataFrame, pd.Series]) -> None:
    """With the defaults every point is tried: TPE's 20 draws of 32 once missed the k = 5 +
    category-mix corner on the product path (ARI 0.13). A resumed study tries nothing again."""
    features, truth = generated
    settings = load_settings().segmentation
    study = new_study(settings)
    params = tune(study, features, settings)
    grid = search_grid(settings, has_categories=True)
    assert len(grid) == 32 and len(study.trials) == len(grid)
    assert {tuple(sorted(t.params.items())) for t in study.trials} == {
        tuple(sorted(p.items())) for p in grid}
    model = fit_segmentation(features, params, settings)
    assert evaluate_segmentation(model, features, settings, truth=truth)["ari_truth"] >= 0.85
    assert tune(study, features, settings) == params and len(study.trials) == len(grid)
    tpe = settings.model_copy(update={"exhaustive_limit": 0})
    sampled = new_study(tpe)
    tune(sampled, features, tpe, n_trials=3)
    assert len(sampled.trials) == 3


def test_same_seed_gives_same_labels_and_metrics() -> None:
    features, _ = _blobs(n=400, seed=2)
    settings = _settings(k_min=2, k_max=5)
    runs = []
    for _ in range(2):
        params = tune(new_study(settings), features, settings, n_trials=3)
        model = fit_segmentation(features, params, settings)
        runs.append((params, model.predict(features),
                     evaluate_segmentation(model, features, settings)))
    assert runs[0][0] == runs[1][0]
    pd.testing.assert_frame_equal(runs[0][1], runs[1][1])
    assert runs[0][2] == runs[1][2]


def test_objective_penalises_tiny_and_unstable_clusters() -> None:
    good = {"silhouette": 0.3, "stability_ari": 0.95, "smallest_cluster_share": 0.2}
    tiny = good | {"silhouette": 0.6, "smallest_cluster_share": 0.001}
    shaky = good | {"silhouette": 0.5, "stability_ari": 0.5}
    for mode in ("silhouette", "silhouette_stability_floor", "silhouette_plus_stability"):
        s = _settings(objective=mode)
        assert objective_value(tiny, s) < objective_value(good, s)
    floor = _settings(objective="silhouette_stability_floor")
    assert objective_value(shaky, floor) < objective_value(good, floor)
    assert objective_value(shaky, _settings(objective="silhouette")) > objective_value(
        good, _settings(objective="silhouette"))


def test_clear_errors_for_unusable_features() -> None:
    features, _ = _blobs(n=50)
    settings = _settings()
    with pytest.raises(SegmentationError, match="exceeds the number of customers"):
        fit_segmentation(features.head(3), {"k": 4}, settings)
    text = features.assign(frequency=features["frequency"].astype(str))
    with pytest.raises(SegmentationError, match="'frequency' must be numeric"):
        fit_segmentation(text, {"k": 2}, settings)
    with pytest.raises(SegmentationError, match="k_max"):
        tune(new_study(settings), features, settings.model_copy(update={"k_min": 6, "k_max": 4}))


def test_capped_tuning_is_the_study_of_the_seeded_sample() -> None:
    """With ``tuning_max_customers`` the trials see that many seeded customers and nothing
    else: the same trials, value for value, as an uncapped study given only those rows."""
    features, _ = _blobs(n=500, seed=4)
    capped = _settings(k_min=2, k_max=4, tuning_max_customers=150)
    chosen = sample_ids(features.index, 150, capped.seed)
    assert chosen is not None and len(chosen) == 150
    uncapped = capped.model_copy(update={"tuning_max_customers": None})
    on_sample, on_all = new_study(capped), new_study(uncapped)
    tune(on_sample, features, capped)
    tune(on_all, features.loc[chosen], uncapped)
    assert [t.value for t in on_sample.trials] == [t.value for t in on_all.trials]
    full = new_study(uncapped)
    tune(full, features, uncapped)
    assert [t.value for t in full.trials] != [t.value for t in on_sample.trials]
