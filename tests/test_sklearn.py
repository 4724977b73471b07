"""Tests of the flow detectors as scikit-learn estimators: estimator checks, clone, pipelines, grid search, old files."""

import inspect

import numpy as np
import pytest
import sklearn.exceptions
import torch
from sklearn.base import clone
from sklearn.metrics import f1_score, make_scorer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

from pcflow import LLFlow, NotFittedError, OneFlow, PcflowError, SurfaceFlow

# Small and fast: the checks fit a few dozen times each. alpha=0.2 because several checks fit on 10 to 30 samples,
# and OneFlow needs ceil(2 / alpha) of them (40 at the default alpha=0.05) for its (1 - alpha) quantile.
TINY = dict(alpha=0.2, n_couplings=2, hidden_features=8, n_hidden_layers=1, epochs=3, random_state=0)
ESTIMATORS = [
    OneFlow(**TINY),
    OneFlow(flow="general", **TINY),
    LLFlow(**TINY),
    LLFlow(flow="general", **TINY),
    # the surface fit works in any dimension (the meshing, not the estimator, is 3-D only)
    SurfaceFlow(surface_steps=5, n_surface_samples=32, surface_batch_size=64, **TINY),
]


def expected_failed_checks(estimator):
    """Checks that cannot apply to OneFlow, with the reason: none, every configuration passes them all."""
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def labelled(n=400, share=0.1, seed=0):
    """A Gaussian blob (label +1) and a share of uniform points well away from it (label -1)."""
    rng = np.random.default_rng(seed)
    n_out = int(share * n)
    inliers = rng.normal(size=(n - n_out, 2))
    angle = rng.uniform(0, 2 * np.pi, n_out)
    outliers = np.c_[np.cos(angle), np.sin(angle)] * rng.uniform(5, 7, n_out)[:, None]
    X = np.vstack([inliers, outliers])
    y = np.r_[np.ones(n - n_out, dtype=int), -np.ones(n_out, dtype=int)]
    order = rng.permutation(n)
    return X[order] * [10.0, 0.1] + [3.0, -2.0], y[order]  # features on different scales


def test_clone_copies_parameters_not_state():
    X, _ = labelled()
    model = OneFlow(**TINY).fit(X)
    copy = clone(model)
    assert copy is not model and copy.get_params() == model.get_params()
    assert not hasattr(copy, "flow_")
    with pytest.raises(sklearn.exceptions.NotFittedError):
        check_is_fitted(copy)
    check_is_fitted(model)
    np.testing.assert_array_equal(copy.fit(X).score_samples(X), model.score_samples(X))


def test_not_fitted_error_is_sklearns():
    assert issubclass(NotFittedError, sklearn.exceptions.NotFittedError)
    assert issubclass(NotFittedError, PcflowError) and issubclass(NotFittedError, AttributeError)
    with pytest.raises(sklearn.exceptions.NotFittedError, match="not fitted"):
        OneFlow().predict(np.zeros((2, 2)))


def test_pipeline_equals_scaling_by_hand():
    X, _ = labelled()
    pipeline = make_pipeline(StandardScaler(), OneFlow(normalize="none", **TINY)).fit(X)
    labels = pipeline.predict(X)
    by_hand = OneFlow(normalize="none", **TINY).fit(StandardScaler().fit_transform(X))
    np.testing.assert_array_equal(labels, by_hand.predict(StandardScaler().fit_transform(X)))
    assert set(np.unique(labels)) == {-1, 1}
    np.testing.assert_allclose(pipeline.score_samples(X), by_hand.score_samples(StandardScaler().fit_transform(X)))
    assert "OneFlow(alpha=0.2" in repr(pipeline)


def test_grid_search_picks_the_alpha_that_matches_the_outliers():
    X, y = labelled(share=0.1)
    search = GridSearchCV(
        OneFlow(**dict(TINY, epochs=20)),
        {"alpha": [0.1, 0.4], "hidden_features": [8]},
        scoring=make_scorer(f1_score),  # inliers (+1) are the positive class
        cv=3,
    ).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores)) and search.best_score_ == scores.max()
    # alpha=0.4 leaves out 40% of the data, a third of it inliers: 0.1 matches the 10% of outliers
    assert search.best_params_["alpha"] == 0.1
    assert search.best_estimator_.n_samples_fit_ == len(X)


def test_repr_shows_changed_parameters_in_signature_order():
    assert repr(OneFlow()) == "OneFlow()"
    assert repr(OneFlow(0.1, epochs=3, flow="general")) == "OneFlow(alpha=0.1, flow='general', epochs=3)"
    assert repr(OneFlow(random_state=np.random.RandomState(0))).startswith("OneFlow(random_state=RandomState")


def test_random_state_instances_give_reproducible_seeds():
    X, _ = labelled()
    first = OneFlow(**dict(TINY, random_state=np.random.RandomState(5))).fit(X)
    second = OneFlow(**dict(TINY, random_state=np.random.RandomState(5))).fit(X)
    assert first.seed_ == second.seed_
    np.testing.assert_array_equal(first.score_samples(X), second.score_samples(X))
    assert OneFlow(**dict(TINY, random_state=np.random.default_rng(1))).fit(X).seed_ >= 0
    with pytest.raises(PcflowError, match="random_state must be an int"):
        OneFlow(**dict(TINY, random_state="seven")).fit(X)


def test_model_files_of_format_1_still_load(tmp_path):
    """A file as format 1 is written: all constructor parameters in the signature's order, then the fitted state."""
    X, _ = labelled()
    model = OneFlow(**TINY).fit(X)
    names = [name for name in inspect.signature(OneFlow.__init__).parameters if name != "self"]
    state = {
        "format": "pcflow.OneFlow",
        "format_version": 1,
        # format 1's one class also took `objective` and the surface model's parameters
        "params": {**{name: getattr(model, name) for name in names}, "objective": "volume", "surface_steps": 1000},
        "flow_state": {k: v.detach().cpu() for k, v in model.flow_.state_dict().items()},
        "center": torch.as_tensor(model.center_),
        "scale": torch.as_tensor(model.scale_),
        "radius": model.radius_,
        "offset": model.offset_,
        "coverage_grid": torch.as_tensor(model._coverage_grid),
        "radius_grid": torch.as_tensor(model._radius_grid),
        "volume": model.volume_,
        "volume_stderr": model.volume_stderr_,
        "history": model.history_,
        "n_iter": model.n_iter_,
        "n_features_in": model.n_features_in_,
        "n_samples_fit": model.n_samples_fit_,
        "seed": model.seed_,
    }
    torch.save(state, tmp_path / "v1.pt")
    loaded = OneFlow.load(tmp_path / "v1.pt")
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.get_params() == model.get_params() and repr(loaded) == repr(model)
    check_is_fitted(loaded)
    # what save writes today holds the same entries
    model.save(tmp_path / "now.pt")
    now = set(torch.load(tmp_path / "now.pt", weights_only=True))
    assert now == set(state) | {"model", "pcflow_version"}  # and the class name and the pcflow version


@pytest.mark.parametrize(
    "X,match",
    [
        (np.zeros(50), "Reshape your data"),
        (np.ones((1, 3)), "got 1 sample$"),
        (np.ones((12, 1)), r"got 1 feature\(s\)"),
        (np.array([[1.0, 2.0j]] * 20), "Complex data not supported"),
    ],
)
def test_bad_input_messages_are_one_line(X, match):
    with pytest.raises(PcflowError, match=match) as error:
        OneFlow(**TINY).fit(X)
    assert "\n" not in str(error.value)
