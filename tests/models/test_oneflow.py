"""Tests of OneFlow and the LL-Flow baseline: the sklearn contract, the paper's behaviour, persistence, bad input."""

import math

import numpy as np
import pytest
import torch

from pcflow import LLFlow, NotFittedError, OneFlow, PcflowError

from .samples import FAST


@pytest.mark.parametrize("flow", ["nice", "general"])
@pytest.mark.parametrize("objective", ["volume", "likelihood"])
def test_contract_and_coverage(fitted, blobs, flow, objective):
    X, _ = blobs
    model = fitted[flow, objective]
    assert model.n_features_in_ == 2 and model.n_samples_fit_ == len(X)
    scores = model.score_samples(X)
    decision = model.decision_function(X)
    labels = model.predict(X)
    np.testing.assert_allclose(decision, scores - model.offset_)
    np.testing.assert_allclose(scores, -np.linalg.norm(model.transform(X), axis=1))
    assert set(np.unique(labels)) == {-1, 1}
    np.testing.assert_array_equal(labels == 1, decision >= 0)
    # the region holds 1 - alpha of the training data
    assert abs((labels == 1).mean() - 0.95) < 1.5 / len(X) + 1e-9
    assert len(model.history_["loss"]) == model.n_iter_ >= 1
    assert model.volume_ > 0 and model.volume_stderr_ >= 0
    assert model.constant_jacobian_ == (flow == "nice")


@pytest.mark.parametrize("flow", ["nice", "general"])
def test_oneflow_rejects_small_blob_and_beats_llflow_volume(fitted, blobs, flow):
    X, n_big = blobs
    oneflow, llflow = fitted[flow, "volume"], fitted[flow, "likelihood"]
    assert (oneflow.predict(X[n_big:]) == -1).mean() >= 0.9
    assert oneflow.volume_ < llflow.volume_


def test_transform_round_trip_in_input_units(fitted, blobs):
    X, _ = blobs
    model = fitted["general", "volume"]
    np.testing.assert_allclose(model.inverse_transform(model.transform(X)), X, atol=1e-4)


def test_normalisation_keeps_results_in_input_units(blobs):
    X, _ = blobs
    base = OneFlow(alpha=0.05, **FAST).fit(X)
    moved = OneFlow(alpha=0.05, **FAST).fit(X * 10.0 + 1e6)
    # the same model up to the affine change of units: labels match, the volume scales by 10^2
    np.testing.assert_array_equal(base.predict(X), moved.predict(X * 10.0 + 1e6))
    assert math.isclose(moved.volume_, 100 * base.volume_, rel_tol=1e-4)


def test_closed_form_volume_matches_monte_carlo_of_region(fitted, blobs):
    model = fitted["nice", "volume"]
    X, _ = blobs
    rng = np.random.default_rng(1)
    lo, hi = X.min(axis=0) - 1, X.max(axis=0) + 1
    grid = rng.uniform(lo, hi, size=(200_000, 2))
    estimate = (model.predict(grid) == 1).mean() * np.prod(hi - lo)
    assert abs(estimate - model.volume_) < 0.03 * model.volume_


def test_general_volume_standard_error_is_reported(fitted):
    model = fitted["general", "volume"]
    volume, stderr = model.region_volume(n_samples=4000)
    assert 0 < stderr < 0.1 * volume
    assert abs(volume - model.volume_) < 5 * math.hypot(stderr, model.volume_stderr_)


def test_radius_at_coverage(fitted, blobs):
    X, _ = blobs
    model = fitted["nice", "volume"]
    radii = np.linalg.norm(model.transform(X), axis=1)
    for coverage in (0.5, 0.9, 0.99):
        assert math.isclose(model.radius_at(coverage), np.quantile(radii, coverage), rel_tol=1e-5)
    assert math.isclose(model.radius_at(0.95), model.radius_, rel_tol=1e-5)
    with pytest.raises(PcflowError, match="coverage"):
        model.radius_at(1.5)


def test_reproducible_bit_for_bit(blobs):
    X, _ = blobs
    first = OneFlow(alpha=0.05, **dict(FAST, epochs=5)).fit(X)
    second = OneFlow(alpha=0.05, **dict(FAST, epochs=5)).fit(X)
    assert first.history_["loss"] == second.history_["loss"]
    np.testing.assert_array_equal(first.score_samples(X), second.score_samples(X))
    other = OneFlow(alpha=0.05, **dict(FAST, epochs=5, random_state=1)).fit(X)
    assert not np.array_equal(first.score_samples(X), other.score_samples(X))


def test_float64_training(blobs):
    X, _ = blobs
    model = OneFlow(alpha=0.05, dtype="float64", **dict(FAST, epochs=3)).fit(X)
    assert next(model.flow_.parameters()).dtype == torch.float64
    assert model.transform(X).dtype == np.float64


def test_early_stopping_stops_before_epochs(blobs):
    X, _ = blobs
    model = OneFlow(alpha=0.05, patience=2, tol=10.0, **dict(FAST, epochs=50)).fit(X)
    assert model.n_iter_ == 3


@pytest.mark.parametrize("flow", ["nice", "general"])
def test_save_load_round_trip(fitted, blobs, tmp_path, flow):
    X, _ = blobs
    model = fitted[flow, "volume"]
    path = tmp_path / "model.pt"
    model.save(path)
    loaded = OneFlow.load(path)
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    assert loaded.radius_ == model.radius_ and loaded.volume_ == model.volume_
    assert loaded.get_params() == model.get_params()
    assert loaded.history_ == model.history_
    assert loaded.radius_at(0.7) == model.radius_at(0.7)
    # only tensors and plain values: loadable without unpickling code
    assert torch.load(path, weights_only=True)["format"] == "pcflow.OneFlow"


def test_load_rejects_other_files(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(PcflowError, match="not a readable pcflow model"):
        OneFlow.load(bad)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(PcflowError, match="not a pcflow model"):
        OneFlow.load(tmp_path / "other.pt")
    with pytest.raises(PcflowError, match="not found"):
        OneFlow.load(tmp_path / "missing.pt")


def test_get_set_params_and_repr():
    model = OneFlow(alpha=0.1, flow="general")
    assert model.get_params()["alpha"] == 0.1
    assert model.set_params(epochs=7) is model and model.epochs == 7
    assert repr(model) == "OneFlow(alpha=0.1, flow='general', epochs=7)"
    with pytest.raises(PcflowError, match="unknown parameter"):
        model.set_params(depth=3)


def test_fit_returns_self_and_fit_predict(blobs):
    X, _ = blobs
    model = OneFlow(**dict(FAST, epochs=2))
    assert model.fit(X) is model
    np.testing.assert_array_equal(model.fit_predict(X), model.fit(X).predict(X))


@pytest.mark.parametrize(
    "X,match",
    [
        (np.array([[np.nan, 1.0]] + [[0.0, float(i)] for i in range(100)]), "NaN or infinity in 1 rows"),
        (np.array([[np.inf, 1.0]] * 3 + [[float(i), 0.0] for i in range(100)]), "NaN or infinity in 3 rows"),
        (np.zeros(100), "2-D array"),
        (np.zeros((10, 10, 3)), "2-D array"),
        (np.random.default_rng(0).normal(size=(100, 1)), "at least 2 features"),
        (np.random.default_rng(0).normal(size=(15, 2)), "at least 40 samples"),
        (np.array([["a", "b"]] * 100), "non-numeric"),
        (np.ones((100, 3)), "identical"),
        (np.c_[np.random.default_rng(0).normal(size=(100, 2)), np.ones(100)], r"features \[2\] are constant"),
    ],
)
def test_bad_training_input(X, match):
    with pytest.raises(PcflowError, match=match):
        OneFlow(epochs=1).fit(X)


@pytest.mark.parametrize(
    "params,match",
    [
        ({"alpha": 0}, "alpha"),
        ({"flow": "maf"}, "flow must be one of"),
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"lr": -1}, "lr"),
        ({"dtype": "float16"}, "dtype"),
        ({"device": "quantum"}, "device"),
    ],
)
@pytest.mark.parametrize("estimator", [OneFlow, LLFlow])
def test_bad_parameters(blobs, params, match, estimator):
    with pytest.raises(PcflowError, match=match):
        estimator(**params).fit(blobs[0])


def test_objective_is_a_read_only_property_not_a_parameter():
    """The three models are three classes: `objective` tells which, and is no constructor parameter."""
    assert (OneFlow().objective, LLFlow().objective) == ("volume", "likelihood")
    assert "objective" not in OneFlow().get_params() and "n_volume_samples" not in LLFlow().get_params()
    with pytest.raises(TypeError, match="objective"):
        OneFlow(objective="nll")
    with pytest.raises(PcflowError, match="unknown parameter 'objective'"):
        OneFlow().set_params(objective="surface")


def test_not_fitted():
    model = OneFlow()
    for method in (model.predict, model.score_samples, model.decision_function, model.transform):
        with pytest.raises(NotFittedError, match="not fitted"):
            method(np.zeros((3, 2)))
    with pytest.raises(NotFittedError):
        model.save("unused.pt")


def test_wrong_dimension_at_predict(fitted):
    model = fitted["nice", "volume"]
    with pytest.raises(PcflowError, match="X has 3 features, but OneFlow is expecting 2 features as input"):
        model.predict(np.zeros((4, 3)))
    with pytest.raises(PcflowError, match="NaN"):
        model.predict(np.array([[np.nan, 0.0]]))
