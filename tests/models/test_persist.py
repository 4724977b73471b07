"""Tests of model files: each estimator's round trip, files of format 1 (one class for every model), bad and
malicious files, in the library and on the command line."""

import copy
import pickle
import re
import time

import numpy as np
import pytest
import torch

from pcflow import LLFlow, OneFlow, PcflowError, SurfaceFlow, __version__
from pcflow.cli import main
from pcflow.io import PointCloud, write_cloud
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
    expected = copy.deepcopy(model)
    if objective == "surface":  # format 1 predates the plane term: its files score without it
        expected.plane_weight = 0.0
    for loaded in (OneFlow.load(path), load(path), type(model).load(path)):
        assert type(loaded) is type(model) and loaded.get_params() == expected.get_params()
        np.testing.assert_array_equal(loaded.score_samples(cloud), expected.score_samples(cloud))
        np.testing.assert_array_equal(loaded.predict(cloud), expected.predict(cloud))
        assert loaded.radius_ == model.radius_ and loaded.offset_ == model.offset_
    # what save writes today holds the same entries, and the class's name
    model.save(tmp_path / "now.pt")
    assert set(torch.load(tmp_path / "now.pt", weights_only=True)) == set(torch.load(path, weights_only=True)) | {
        "model", "pcflow_version"}


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
    state["pcflow_version"] = "9.1.0"
    torch.save(state, tmp_path / "newer.pt")
    with pytest.raises(PcflowError, match=rf"newer.pt was written by pcflow 9\.1\.0 \(model format "
                                          rf"{FORMAT_VERSION + 1}\); this pcflow {re.escape(__version__)} reads "
                                          rf"formats up to {FORMAT_VERSION}$"):
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


class _Opens:
    """Unpickled, it would create the file `path` (what a malicious model file does with a shell command)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def _one_line_cli_error(capsys, argv) -> str:
    """The CLI's message for `argv`, checked to be one `pcflow: error:` line after exit code 1."""
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("pcflow: error: ") and "Traceback" not in err, err
    return err


def test_a_file_of_objects_is_refused_unrun_and_without_torch_advice(tmp_path, capsys):
    marker = tmp_path / "ran"
    torch.save({"format": "pcflow.OneFlow", "format_version": 2, "model": "OneFlow", "hook": _Opens(marker)},
               tmp_path / "evil.pt")
    (tmp_path / "evil.pkl.pt").write_bytes(pickle.dumps(_Opens(marker)))  # a bare pickle, not a torch archive
    for path in (tmp_path / "evil.pt", tmp_path / "evil.pkl.pt"):
        with pytest.raises(PcflowError) as info:
            load(path)
        message = str(info.value)
        assert "weights_only" not in message and "\n" not in message
        messages = [message] + [_one_line_cli_error(capsys, argv) for argv in (
            ["info", str(path)], ["mesh", str(path), "-o", str(tmp_path / "m.ply")])]
        assert not any("weights_only" in m or "torch.load" in m for m in messages)
    with pytest.raises(PcflowError, match=r"evil.pt is not a pcflow model, or is from a newer pcflow: it holds the "
                                          r"Python object (io|builtins)\.open, which pcflow never loads$"):
        load(tmp_path / "evil.pt")
    assert not marker.exists() and not (tmp_path / "m.ply").exists()


def test_the_pcflow_version_is_saved_and_files_without_it_still_load(models, cloud, tmp_path):
    model = models["volume"]
    model.save(tmp_path / "model.pt")
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    assert state["pcflow_version"] == __version__ and state["format_version"] == FORMAT_VERSION
    del state["pcflow_version"]  # as format 2 was written before the version was saved
    torch.save(state, tmp_path / "old.pt")
    np.testing.assert_array_equal(load(tmp_path / "old.pt").score_samples(cloud), model.score_samples(cloud))
    state["format_version"] = FORMAT_VERSION + 1
    torch.save(state, tmp_path / "newer.pt")
    with pytest.raises(PcflowError, match=rf"written by a newer pcflow \(model format {FORMAT_VERSION + 1}\); this "
                                          rf"pcflow {re.escape(__version__)} reads formats up to {FORMAT_VERSION}$"):
        load(tmp_path / "newer.pt")


@pytest.mark.parametrize("change, message", [
    (lambda s: s["params"].update(hidden_features=10 ** 12), "setting hidden_features=1000000000000 does not fit"),
    (lambda s: s["params"].update(n_couplings=10 ** 12), "setting n_couplings=1000000000000 does not fit"),
    (lambda s: s["params"].update(hidden_features=40), r"need at least \d+ weights, its flow holds \d+"),
    (lambda s: s.update(n_features_in=4), "4 features, but center and scale of shapes"),
    (lambda s: s.pop("center"), "entry 'center' is missing"),
    (lambda s: s.update(radius="x"), "entry 'radius' is 'x', not a number"),
    (lambda s: s.update(format_version="2"), "its format version is '2'"),
    (lambda s: s.update(model="Evil\nClass"), "holds a model of class Evil Class, which"),
    (lambda s: s["params"].update(depth=3), "unexpected keyword argument 'depth'"),
    (lambda s: s["params"].update(flow="torus"), "flow must be one of"),
    (lambda s: s["flow_state"].update({next(iter(s["flow_state"])): torch.zeros(2, 5)}), "size mismatch"),
])
def test_damaged_entries_are_one_line_errors_before_anything_is_built(models, tmp_path, change, message):
    models["volume"].save(tmp_path / "model.pt")
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    change(state)
    torch.save(state, tmp_path / "bad.pt")
    start = time.perf_counter()
    with pytest.raises(PcflowError, match=message) as info:
        load(tmp_path / "bad.pt")
    assert "\n" not in str(info.value) and str(info.value).startswith(str(tmp_path / "bad.pt"))
    assert time.perf_counter() - start < 2


def test_truncated_random_and_empty_files_are_one_line_errors(models, tmp_path, capsys):
    models["volume"].save(tmp_path / "model.pt")
    data = (tmp_path / "model.pt").read_bytes()
    rng = np.random.default_rng(0)
    files = {"empty.pt": b"", "random.pt": rng.bytes(5000), "text.pt": b"not a model\n"}
    files.update({f"cut{n}.pt": data[:n] for n in (10, len(data) // 3, len(data) - 10)})
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(PcflowError, match=f"{name} is not a readable pcflow model") as info:
            load(tmp_path / name)
        assert "\n" not in str(info.value) and "weights_only" not in str(info.value)
        assert name in _one_line_cli_error(capsys, ["info", str(tmp_path / name)])


def test_a_2d_model_on_3d_data_is_a_one_line_error(cloud, tmp_path, capsys):
    rng = np.random.default_rng(0)
    model = OneFlow(**TINY).fit(rng.normal(size=(200, 2)))
    model.save(tmp_path / "flat.pt")
    for method in (model.predict, model.score_samples, load(tmp_path / "flat.pt").predict):
        with pytest.raises(PcflowError, match="X has 3 features, but OneFlow is expecting 2 features"):
            method(cloud)
    write_cloud(tmp_path / "scan.ply", PointCloud(cloud))
    err = _one_line_cli_error(capsys, ["denoise", str(tmp_path / "scan.ply"), "-o", str(tmp_path / "clean.ply"),
                                       "--model", str(tmp_path / "flat.pt"), "-q"])
    assert "X has 3 features, but OneFlow is expecting 2 features" in err
    err = _one_line_cli_error(capsys, ["mesh", str(tmp_path / "flat.pt"), "-o", str(tmp_path / "mesh.ply"), "-q"])
    assert "a mesh needs a 3-D model, this one has 2 features" in err
    assert not (tmp_path / "clean.ply").exists() and not (tmp_path / "mesh.ply").exists()
