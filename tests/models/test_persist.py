"""Tests of model files: each estimator's round trip, files of format 1 (one class for every model), bad files."""

import numpy as np
import pytest
import torch

from pcflow import LLFlow, OneFlow, PcflowError, SurfaceFlow
from pcflow.models import FORMAT_VERSION, load

#: The one estimator class of format 1: its parameters and their defaults, in its signature's order.
FORMAT_1_PARAMS = dict(
    alpha=0.05, flow="nice", objective="volume", n_couplings=6, hidden_features=64, n_hidden_layers=2, epochs=100,
    batch_size=1000, lr=1e-3, patience=10, tol=1e-3, n_volume_samples=256, surface_steps=1000, surface_patience=4,
    surface_tol=5e-3, surface_lr=2e-3, surface_batch_size=2048, n_surface_samples=1024, n_neighbors=8,
    surface_weight=2.0, neighbor_statistic="mean", normalize="standard", dtype="float32", device="cpu",
    random_state=None, progress=False,
)
TINY = dict(alpha=0.1, n_couplings=2, hidden_features=8, epochs=3, normalize="isotropic", random_state=0)
SURFACE = dict(flow="general", surface_steps=20, surface_batch_size=128, n_surface_samples=64, n_neighbors=4)


@pytest.fixture(scope="module")
def cloud():
    rng = np.random.default_rng(0)
    direction = rng.normal(size=(400, 3))
    return direction / np.linalg.norm(direction, axis=1, keepdims=True) + rng.normal(scale=0.02, size=(400, 3))


@pytest.fixture(scope="module")
def models(cloud):
    return {"volume": OneFlow(flow="general", **TINY).fit(cloud), "likelihood": LLFlow(**TINY).fit(cloud),
            "surface": SurfaceFlow(**TINY, **SURFACE).fit(cloud)}


def format_1_file(model, path):
    """`model` written as format 1 wrote it: every parameter of the one class, the kind in ``objective``."""
    params = {name: model.get_params().get(name, default) for name, default in FORMAT_1_PARAMS.items()}
    params["objective"] = model.objective
    state = {
        "format": "pcflow.OneFlow", "format_version": 1, "params": params,
        "flow_state": {k: v.detach().cpu() for k, v in model.flow_.state_dict().items()},
        "center": torch.as_tensor(model.center_), "scale": torch.as_tensor(model.scale_),
        "radius": model.radius_, "offset": model.offset_,
        **({"reference": torch.as_tensor(model.reference_points_),
            "outlying_grid": torch.as_tensor(model._outlying_grid)} if model.objective == "surface" else {}),
        "coverage_grid": torch.as_tensor(model._coverage_grid), "radius_grid": torch.as_tensor(model._radius_grid),
        "volume": model.volume_, "volume_stderr": model.volume_stderr_, "history": model.history_,
        "n_iter": model.n_iter_,
        **({"n_surface_steps": model.n_surface_steps_} if model.objective == "surface" else {}),
        "n_features_in": model.n_features_in_, "n_samples_fit": model.n_samples_fit_, "seed": model.seed_,
    }
    torch.save(state, path)
    return path


@pytest.mark.parametrize("objective", ["volume", "likelihood", "surface"])
def test_each_estimator_round_trips_through_its_file(models, cloud, tmp_path, objective):
    model = models[objective]
    model.save(tmp_path / "model.pt")
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    assert state["format_version"] == FORMAT_VERSION and state["model"] == type(model).__name__
    for loaded in (type(model).load(tmp_path / "model.pt"), load(tmp_path / "model.pt")):
        assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
        np.testing.assert_array_equal(loaded.score_samples(cloud), model.score_samples(cloud))
        assert loaded.threshold_at(0.7) == model.threshold_at(0.7)


@pytest.mark.parametrize("objective", ["volume", "likelihood", "surface"])
def test_format_1_files_load_into_the_class_of_their_objective(models, cloud, tmp_path, objective):
    model = models[objective]
    path = format_1_file(model, tmp_path / "v1.pt")
    for loaded in (OneFlow.load(path), load(path), type(model).load(path)):
        assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
        np.testing.assert_array_equal(loaded.score_samples(cloud), model.score_samples(cloud))
        np.testing.assert_array_equal(loaded.predict(cloud), model.predict(cloud))
        assert loaded.radius_ == model.radius_ and loaded.offset_ == model.offset_
    # what save writes today holds the same entries, and the class's name
    model.save(tmp_path / "now.pt")
    assert set(torch.load(tmp_path / "now.pt", weights_only=True)) == set(torch.load(path, weights_only=True)) | {
        "model"}


def test_a_class_loads_only_its_own_kind(models, tmp_path):
    models["likelihood"].save(tmp_path / "ll.pt")
    models["surface"].save(tmp_path / "surface.pt")
    models["volume"].save(tmp_path / "oneflow.pt")
    with pytest.raises(PcflowError, match=r"holds a model of class LLFlow, not OneFlow; load it with LLFlow.load") as e:
        OneFlow.load(tmp_path / "ll.pt")
    assert "\n" not in str(e.value)
    with pytest.raises(PcflowError, match="holds a model of class SurfaceFlow, not LLFlow"):
        LLFlow.load(tmp_path / "surface.pt")
    with pytest.raises(PcflowError, match="holds a model of class OneFlow, not SurfaceFlow"):
        SurfaceFlow.load(tmp_path / "oneflow.pt")
    assert type(OneFlow.load(tmp_path / "surface.pt")) is SurfaceFlow  # a SurfaceFlow is a OneFlow refined
    with pytest.raises(PcflowError, match="holds a model of class LLFlow, not SurfaceFlow"):
        SurfaceFlow.load(format_1_file(models["likelihood"], tmp_path / "v1.pt"))


def test_a_file_of_a_newer_format_names_both_versions(models, tmp_path):
    models["volume"].save(tmp_path / "model.pt")
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    state["format_version"] = FORMAT_VERSION + 1
    torch.save(state, tmp_path / "newer.pt")
    with pytest.raises(PcflowError, match=rf"newer pcflow \(model format {FORMAT_VERSION + 1}; this version reads "
                                          rf"formats up to {FORMAT_VERSION}\)"):
        load(tmp_path / "newer.pt")
    state["format_version"], state["model"] = FORMAT_VERSION, "TorusFlow"
    torch.save(state, tmp_path / "unknown.pt")
    with pytest.raises(PcflowError, match="class TorusFlow, which this version of pcflow does not know"):
        load(tmp_path / "unknown.pt")


@pytest.mark.parametrize("objective", ["volume", "likelihood", "surface"])
def test_the_same_fit_saves_the_same_bytes_under_any_name(models, cloud, tmp_path, objective):
    model = models[objective]
    refit = type(model)(**model.get_params()).fit(cloud)  # the same seed: the same fit, at another wall-clock time
    model.save(tmp_path / "model.pt")
    refit.save(tmp_path / "again.pt")
    model.save(tmp_path / "other name.pt")
    # an equal string that is another object, as a worker process unpickles it, is written alike
    refit.set_params(device="".join(["c", "pu"]))
    refit.save(tmp_path / "unpickled.pt")
    data = (tmp_path / "model.pt").read_bytes()
    for name in ("again.pt", "other name.pt", "unpickled.pt"):
        assert (tmp_path / name).read_bytes() == data, name
    loaded = load(tmp_path / "model.pt")
    assert loaded.history_.keys() == model.history_.keys()
    for name, values in loaded.history_.items():
        np.testing.assert_array_equal(values, model.history_[name])  # NaN radii of LLFlow compare equal here
