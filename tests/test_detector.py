"""Tests of the OneFlow estimator: the scikit-learn contract, the paper's behaviour, persistence and bad input."""

import copy
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from pcflow import PAPER_2D, NotFittedError, OneFlow, PcflowError


def two_blobs(n=2000, seed=0):
    """98% of the points in a wide blob, 2% in a tight far one (the paper's Two Blobs)."""
    rng = np.random.default_rng(seed)
    n_big = int(0.98 * n)
    big = rng.normal(size=(n_big, 2)) * 0.5
    small = rng.normal(size=(n - n_big, 2)) * 0.1 + 4.0
    return np.vstack([big, small]), n_big


FAST = dict(PAPER_2D, epochs=40, random_state=0)


@pytest.fixture(scope="module")
def blobs():
    return two_blobs()


@pytest.fixture(scope="module")
def fitted(blobs):
    X, _ = blobs
    return {
        (flow, objective): OneFlow(alpha=0.05, flow=flow, objective=objective, **FAST).fit(X)
        for flow in ("nice", "general")
        for objective in ("volume", "likelihood")
    }


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


def test_results_do_not_depend_on_the_rows_per_pass(fitted, blobs, monkeypatch):
    """Scoring and mapping run in passes of a few thousand rows on the CPU; the split leaves no trace."""
    import pcflow.detector as detector

    X, _ = blobs
    model = fitted["general", "volume"]
    radii, latent = model.latent_radius(X), model.transform(X)
    monkeypatch.setattr(detector, "_CPU_CHUNK", 7)
    np.testing.assert_allclose(model.latent_radius(X), radii, rtol=1e-5)
    np.testing.assert_allclose(model.transform(X), latent, rtol=1e-5, atol=1e-6)


def test_chunks_side_by_side_give_the_sequential_results(fitted, blobs, monkeypatch):
    """With several torch threads the CPU passes run chunk by chunk in as many Python threads (torch single-threaded
    meanwhile): the same values as one chunk after another, and torch's thread count comes back."""
    import pcflow.detector as detector

    X, _ = blobs
    model = fitted["general", "volume"]
    monkeypatch.setattr(detector, "_CPU_CHUNK", 50)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # one thread: the chunks run one after another
        radii, latent = model.latent_radius(X), model.transform(X)
        torch.set_num_threads(2)
        counts = []
        real = torch.set_num_threads
        monkeypatch.setattr(torch, "set_num_threads", lambda n: counts.append(n) or real(n))
        np.testing.assert_allclose(model.latent_radius(X), radii, rtol=1e-6)
        np.testing.assert_allclose(model.transform(X), latent, rtol=1e-6, atol=1e-7)
        assert counts == [1, 2, 1, 2]  # the side-by-side path was taken, and restored the count each time
        assert torch.get_num_threads() == 2

        def fail(start):
            raise PcflowError(f"chunk at {start}")

        with pytest.raises(PcflowError, match="chunk at"):
            detector._each_chunk(fail, range(0, 200, 50), cpu=True)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_adam_and_its_cosine_schedule_give_torch_optims_fused_adam_and_cosine_annealing_floats():
    from pcflow.optim import Adam, CosineSchedule, adam

    generator = torch.Generator().manual_seed(0)
    start = [torch.randn(4, 3, generator=generator), torch.randn(5, generator=generator)]
    ours = [torch.nn.Parameter(t.clone()) for t in start]
    theirs = [torch.nn.Parameter(t.clone()) for t in start]
    optimizer = adam(ours, 0.1)
    assert isinstance(optimizer, Adam)
    reference = torch.optim.Adam(theirs, lr=0.1, fused=True)
    schedule = CosineSchedule(optimizer, 10, eta_min=0.01)
    reference_schedule = torch.optim.lr_scheduler.CosineAnnealingLR(reference, T_max=10, eta_min=0.01)
    for step in range(25):  # past T_max, where the schedule turns back up
        for params in (ours, theirs):
            params[0].grad = params[0].detach() ** 2 - 1.0 + 0.1 * step
            params[1].grad = None if step % 3 == 0 else torch.cos(params[1].detach())  # no gradient: left alone
        optimizer.step()
        reference.step()
        schedule.step()
        reference_schedule.step()
        assert optimizer.param_groups[0]["lr"] == reference.param_groups[0]["lr"]
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
        optimizer.zero_grad()
        assert all(p.grad is None for p in ours)
    assert (ours[0] - start[0]).abs().min() > 0.01  # every weight moved


def test_adam_is_torch_optims_where_torch_has_no_fused_kernel_for_the_parameters(monkeypatch):
    import pcflow.optim as optim

    mixed = [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))]
    assert isinstance(optim.adam(mixed, 0.1), torch.optim.Adam)
    assert isinstance(optim.adam([torch.nn.Parameter(torch.zeros(3))], 0.1), optim.Adam)

    def no_cpu_kernel(*args, **kwargs):  # what torch before 2.4 does with CPU tensors
        raise NotImplementedError("Could not run 'aten::_fused_adam_' with arguments from the 'CPU' backend")

    monkeypatch.setattr(torch, "_fused_adam_", no_cpu_kernel)
    monkeypatch.setattr(optim, "_FUSED_CHECKED", {})
    assert isinstance(optim.adam([torch.nn.Parameter(torch.zeros(3))], 0.1), torch.optim.Adam)


def test_fitting_does_not_import_torch_dynamo():
    """torch.optim's optimizers import torch._dynamo (seconds of start-up); the fits' own Adam does not."""
    code = (
        "import sys, numpy as np\n"
        "from pcflow.detector import OneFlow\n"
        "X = np.random.default_rng(0).normal(size=(500, 3))\n"
        "OneFlow(flow='general', objective='surface', epochs=2, surface_steps=3, n_couplings=2, hidden_features=8,\n"
        "        n_surface_samples=64, surface_batch_size=64, random_state=0).fit(X)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False"]


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
        ({"objective": "nll"}, "objective must be one of"),
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"lr": -1}, "lr"),
        ({"surface_steps": 0}, "surface_steps must be a positive integer"),
        ({"surface_lr": 0}, "surface_lr must be a positive number"),
        ({"surface_patience": 0}, "surface_patience must be a positive integer or None"),
        ({"surface_tol": -0.1}, "surface_tol must be a non-negative number"),
        ({"n_neighbors": -1}, "n_neighbors must be a non-negative integer"),
        ({"neighbor_statistic": "median"}, "neighbor_statistic must be one of"),
        ({"dtype": "float16"}, "dtype"),
        ({"device": "quantum"}, "device"),
    ],
)
def test_bad_parameters(blobs, params, match):
    with pytest.raises(PcflowError, match=match):
        OneFlow(**params).fit(blobs[0])


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


# ----------------------------------------------------------------------------------------------------------------
# surface objective

AXES = np.array([1.0, 0.6, 0.4])


@pytest.fixture(scope="module")
def shell_scan():
    """A noisy ellipsoid surface (1500 points), 30 outliers inside it near the centre and 50 around it."""
    rng = np.random.default_rng(0)
    direction = rng.normal(size=(1500, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    surface = direction * AXES + rng.normal(scale=0.01, size=(1500, 3))
    inner = rng.uniform(-0.15, 0.15, size=(30, 3))
    outer = rng.uniform(-1.5, 1.5, size=(50, 3))
    return np.vstack([surface, inner, outer])


@pytest.fixture(scope="module")
def surface_models(shell_scan):
    common = dict(alpha=0.05, flow="general", n_couplings=4, hidden_features=32, epochs=30, normalize="isotropic",
                  random_state=0)
    envelope = OneFlow(objective="volume", **common).fit(shell_scan)
    surface = OneFlow(objective="surface", surface_steps=150, surface_batch_size=512, n_surface_samples=512,
                      **common).fit(shell_scan)
    return envelope, surface


def test_surface_mesh_follows_the_surface_the_envelope_does_not(surface_models):
    import trimesh

    from pcflow.mesh import boundary_mesh, validity

    truth = trimesh.creation.icosphere(5)
    truth.vertices *= AXES
    gaps = []
    for model in surface_models:
        mesh = boundary_mesh(model).mesh
        checks = validity(mesh)
        assert checks["watertight"] and checks["n_components"] == 1 and checks["self_intersections"] == 0
        gaps.append(trimesh.proximity.closest_point(truth, mesh.vertices)[1].mean())
    envelope_gap, surface_gap = gaps
    assert surface_gap < 0.01 < envelope_gap  # noise sigma 0.01 per coordinate; the envelope stands off the surface


def test_surface_flags_outliers_inside_the_object(surface_models, shell_scan):
    envelope, surface = surface_models
    inner = slice(1500, 1530)
    assert (surface.predict(shell_scan)[inner] == -1).mean() > 0.9
    assert (envelope.predict(shell_scan)[inner] == 1).mean() > 0.9  # they lie inside the envelope's solid region


def test_surface_predict_takes_the_gradient_only_where_the_data_distance_leaves_it_open(surface_models, shell_scan,
                                                                                         monkeypatch):
    _, surface = surface_models
    rng = np.random.default_rng(1)
    X = np.vstack([shell_scan, rng.uniform(-1.5, 1.5, size=(300, 3))])
    full = np.where(surface.decision_function(X) >= 0, 1, -1)
    rows = []
    distance = OneFlow._distance_normalized
    monkeypatch.setattr(OneFlow, "_distance_normalized", lambda self, data: rows.append(len(data)) or
                        distance(self, data))
    np.testing.assert_array_equal(surface.predict(X), full)
    open_rows = (-surface.neighbor_distance(X) - surface.offset_ < 0).sum()
    assert rows == [open_rows] and 0 < open_rows < len(X)  # the pass on the open rows only, some of them closed
    loose = copy.deepcopy(surface)
    loose.offset_ = -10.0  # every point inside by its data distance: no gradient pass at all
    rows.clear()
    assert (loose.predict(X) == 1).all() and rows == []


def test_surface_contract_and_coverage(surface_models, shell_scan):
    _, model = surface_models
    labels = model.predict(shell_scan)
    assert abs((labels == -1).mean() - 0.05) < 0.01  # the distance threshold is the (1 - alpha) quantile
    np.testing.assert_allclose(model.decision_function(shell_scan), model.score_samples(shell_scan) - model.offset_)
    np.testing.assert_allclose(-model.score_samples(shell_scan),
                               np.minimum(model.surface_weight * model.surface_distance(shell_scan),
                                          model.neighbor_distance(shell_scan)))
    assert model.offset_ == -model.distance_threshold_
    assert (labels[1530:] == -1).mean() > 0.9 and (labels[:1500] == 1).mean() > 0.97
    assert len(model.history_["surface_loss"]) == 3  # one entry per 50 steps
    assert model.history_["surface_loss"][-1] < model.history_["surface_loss"][0]


def test_surface_distance_is_the_distance_to_the_mesh(surface_models, shell_scan):
    import trimesh

    from pcflow.mesh import boundary_mesh

    _, model = surface_models
    mesh = boundary_mesh(model, tolerance=0.01, snap=False).mesh
    exact = trimesh.proximity.closest_point(mesh, shell_scan[:1500])[1]
    first_order = model.surface_distance(shell_scan[:1500])
    near = exact > 0.005  # below that the mesh's own chord error dominates
    ratio = first_order[near] / exact[near]
    assert 0.9 < np.median(ratio) < 1.1
    assert np.corrcoef(first_order, exact)[0, 1] > 0.98


def test_a_surface_models_own_mesh_is_snapped_onto_its_inliers(surface_models):
    import trimesh

    from pcflow.mesh import boundary_mesh, validity

    envelope, model = surface_models
    exact, snapped = boundary_mesh(model, snap=False), boundary_mesh(model)
    np.testing.assert_allclose(exact.mesh.vertices, model.inverse_transform(exact.latent), atol=1e-9)
    np.testing.assert_array_equal(snapped.mesh.faces, exact.mesh.faces)
    np.testing.assert_array_equal(snapped.latent, exact.latent)
    assert snapped.info["snap"]["rounds"] >= 1 and snapped.info["snap"]["n_points"] == (model.predict(
        model.reference_points_ + model.center_) == 1).sum()
    checks = validity(snapped.mesh)
    assert checks["watertight"] and checks["n_components"] == 1 and checks["genus"] == 0
    assert checks["self_intersections"] == 0
    truth = trimesh.creation.icosphere(5)
    truth.vertices *= AXES
    gaps = [trimesh.proximity.closest_point(truth, b.mesh.vertices)[1].mean() for b in (exact, snapped)]
    assert gaps[1] < gaps[0]
    assert "snap" not in boundary_mesh(model, coverage=0.9).info  # another coverage's region is left exact
    assert "snap" not in boundary_mesh(envelope).info


def test_surface_save_load_round_trip(surface_models, shell_scan, tmp_path):
    _, model = surface_models
    model.save(tmp_path / "surface.pt")
    loaded = OneFlow.load(tmp_path / "surface.pt")
    assert loaded.objective == "surface" and loaded.surface_steps == 150 and loaded.n_surface_steps_ == 150
    assert loaded.distance_threshold_ == model.distance_threshold_ and loaded.radius_ == model.radius_
    np.testing.assert_array_equal(loaded.predict(shell_scan), model.predict(shell_scan))
    np.testing.assert_allclose(loaded.score_samples(shell_scan), model.score_samples(shell_scan))


def test_surface_model_saved_without_a_surface_weight_scores_with_one(surface_models, shell_scan, tmp_path):
    """Files written before `surface_weight` and `neighbor_statistic` existed keep the score they were thresholded
    with: weight 1 and the k-th neighbour's distance."""
    _, model = surface_models
    assert model.surface_weight != 1.0 and model.neighbor_statistic != "kth"
    model.save(tmp_path / "surface.pt")
    state = torch.load(tmp_path / "surface.pt", weights_only=True)
    del state["params"]["surface_weight"], state["params"]["neighbor_statistic"]
    torch.save(state, tmp_path / "older.pt")
    loaded = OneFlow.load(tmp_path / "older.pt")
    assert loaded.surface_weight == 1.0 and loaded.neighbor_statistic == "kth"
    np.testing.assert_allclose(-loaded.score_samples(shell_scan),
                               np.minimum(model.surface_distance(shell_scan),
                                          model.neighbor_distance(shell_scan, statistic="kth")))


def test_neighbor_distance_against_brute_force(surface_models, shell_scan):
    _, model = surface_models
    assert len(model.reference_points_) == len(shell_scan)  # fewer than 20,000: every training point is kept
    queries = np.vstack([shell_scan[::97], [[0.3, 0.2, 0.1], [2.0, 2.0, 2.0]]])  # training points and new points
    pairwise = np.linalg.norm(queries[:, None, :] - shell_scan[None, :, :], axis=2)
    nearest = np.array([np.sort(row[row > 0])[:model.n_neighbors] for row in pairwise])  # nearest *other* points
    assert model.neighbor_statistic == "mean"
    np.testing.assert_allclose(model.neighbor_distance(queries), nearest.mean(axis=1), rtol=1e-9)
    np.testing.assert_allclose(model.neighbor_distance(queries, statistic="kth"), nearest[:, -1], rtol=1e-9)
    np.testing.assert_allclose(model.neighbor_distance(queries, k=3), nearest[:, :3].mean(axis=1), rtol=1e-9)
    np.testing.assert_allclose(model.neighbor_distance(queries, k=3, statistic="kth"), nearest[:, 2], rtol=1e-9)
    with pytest.raises(PcflowError, match="k must be >= 1"):
        model.neighbor_distance(queries, k=0)
    with pytest.raises(PcflowError, match="statistic must be one of"):
        model.neighbor_distance(queries, statistic="median")


def test_surface_gap_tells_an_object_from_an_open_scene(surface_models, table_and_wall):
    from pcflow.mesh import surface_gap
    from pcflow.pipeline import OPEN_SCENE_GAP

    scene = OneFlow(**surface_models[1].get_params()).fit(table_and_wall)  # the ellipsoid's settings
    assert surface_gap(surface_models[1]) < 0.05  # the ellipsoid: every part of the surface has points near it
    assert surface_gap(scene) > OPEN_SCENE_GAP  # the closed surface must bridge the gap between table and wall
    with pytest.raises(PcflowError, match="objective='surface'"):
        surface_gap(surface_models[0])


def test_surface_check_runs_once_mid_fit_and_can_end_it(shell_scan):
    from pcflow.detector import SURFACE_CHECK_STEPS

    params = dict(alpha=0.05, flow="general", objective="surface", n_couplings=2, hidden_features=16, epochs=3,
                  surface_steps=SURFACE_CHECK_STEPS + 20, surface_batch_size=256, n_surface_samples=256,
                  normalize="isotropic", random_state=0)
    seen = []

    def look(model):
        seen.append((model.radius_, len(model.reference_points_), model.inverse_transform(np.zeros((1, 3)))))

    checked = OneFlow(**params).fit(shell_scan, surface_check=look)
    plain = OneFlow(**params).fit(shell_scan)
    assert len(seen) == 1 and seen[0][0] == checked.radius_ and seen[0][1] == len(shell_scan)
    np.testing.assert_array_equal(checked.score_samples(shell_scan), plain.score_samples(shell_scan))

    class Stop(Exception):
        pass

    def stop(model):
        raise Stop

    model = OneFlow(**params)
    with pytest.raises(Stop):
        model.fit(shell_scan, surface_check=stop)
    with pytest.raises(NotFittedError):
        model.predict(shell_scan)


def test_surface_fit_stops_once_its_block_loss_stops_falling(shell_scan, monkeypatch):
    import pcflow.detector as detector
    from pcflow.detector import _SURFACE_COOLDOWN

    rates = []  # the learning rate of every optimisation step of the surface fit (its optimizer is made second)
    real_adam = detector.adam

    def recording_adam(parameters, lr):
        optimizer = real_adam(parameters, lr)
        if lr == params["surface_lr"]:
            real_step = optimizer.step

            def step():
                rates.append(optimizer.param_groups[0]["lr"])
                real_step()

            optimizer.step = step
        return optimizer

    monkeypatch.setattr(detector, "adam", recording_adam)
    params = dict(alpha=0.05, flow="general", objective="surface", n_couplings=2, hidden_features=16, epochs=3,
                  lr=1e-3, surface_lr=3e-3, surface_steps=2000, surface_batch_size=128, n_surface_samples=128,
                  normalize="isotropic", random_state=0, surface_patience=3, surface_tol=0.02)
    model = OneFlow(**params).fit(shell_scan)
    blocks = model.history_["surface_loss"]
    # the rule replayed on the recorded block losses: the loss stops falling at the first block that is the third in
    # a row not 2% below the best before it; the fit then runs its cool-down steps and ends
    best, stale, stop = np.inf, 0, None
    for i, block in enumerate(blocks):
        best, stale = (block, 0) if block < 0.98 * best else (best, stale + 1)
        if stale == 3:
            stop = i + 1
            break
    assert stop is not None
    assert model.n_surface_steps_ == 50 * stop + _SURFACE_COOLDOWN < 2000
    assert len(blocks) == stop + _SURFACE_COOLDOWN // 50
    # the last steps take the learning rate from where the schedule had it down to the lowest, a twentieth
    assert len(rates) == model.n_surface_steps_
    cooling = np.array(rates[50 * stop:])
    lowest = 0.05 * params["surface_lr"]
    assert cooling[0] == pytest.approx(rates[50 * stop - 1], rel=0.01) and np.all(np.diff(cooling) < 0)
    np.testing.assert_allclose(cooling[-1], lowest + (cooling[0] - lowest) * 0.5 * (1 + np.cos(np.pi * 0.99)))

    full = OneFlow(**{**params, "surface_steps": 230, "surface_patience": None}).fit(shell_scan)
    assert full.n_surface_steps_ == 230 and len(full.history_["surface_loss"]) == 5  # four blocks of 50, one of 30


def _record_surface_steps(monkeypatch) -> list[tuple[int, float]]:
    """(sphere points, radial weight) of every surface-objective call of the fits that follow, in order."""
    from pcflow.objectives import Objective

    calls = []
    real_forward = Objective.forward

    def recording_forward(self, x, samples=None, **kwargs):
        if self.objective == "surface":
            calls.append((len(samples), kwargs["radial_weight"]))
        return real_forward(self, x, samples, **kwargs)

    monkeypatch.setattr(Objective, "forward", recording_forward)
    return calls


def test_surface_fit_takes_the_radial_term_every_second_step_at_twice_its_weight(shell_scan, monkeypatch):
    from pcflow.objectives import RADIAL_WEIGHT

    calls = _record_surface_steps(monkeypatch)
    OneFlow(alpha=0.05, flow="general", objective="surface", n_couplings=2, hidden_features=8, epochs=2,
            surface_steps=7, surface_batch_size=64, n_surface_samples=64, random_state=0).fit(shell_scan)
    weights = [weight for _, weight in calls]
    assert weights == [2 * RADIAL_WEIGHT, 0.0] * 3 + [2 * RADIAL_WEIGHT]


def test_surface_fit_maps_half_the_sphere_points_in_its_coarse_first_steps(shell_scan, monkeypatch):
    from pcflow import detector

    calls = _record_surface_steps(monkeypatch)
    params = dict(alpha=0.05, flow="general", objective="surface", n_couplings=2, hidden_features=8, epochs=2,
                  surface_steps=10, surface_batch_size=64, n_surface_samples=64, random_state=0)
    OneFlow(**params).fit(shell_scan)
    counts = [n for n, _ in calls]
    coarse = int(detector.COARSE_SHARE * 10)
    assert 0 < coarse < 10 and counts == [32] * coarse + [64] * (10 - coarse)
    assert OneFlow(**params).coarse_surface_samples() == 32
    assert OneFlow(n_surface_samples=1).coarse_surface_samples() == 1
    calls.clear()
    monkeypatch.setattr(detector, "COARSE_SHARE", 0.0)
    OneFlow(**params).fit(shell_scan)
    assert [n for n, _ in calls] == [64] * 10


def test_dense_points_the_surface_misses_are_not_outliers():
    """A dense cluster beside the ellipsoid (a part a genus-0 surface may not reach) stays in; stray points go."""
    rng = np.random.default_rng(1)
    direction = rng.normal(size=(1500, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    surface = direction * AXES + rng.normal(scale=0.01, size=(1500, 3))
    cluster = [1.4, 0.0, 0.0] + rng.normal(scale=0.02, size=(60, 3))
    stray = rng.uniform(-1.5, 1.5, size=(40, 3))
    X = np.vstack([surface, cluster, stray])
    common = dict(alpha=0.03, flow="general", objective="surface", n_couplings=2, hidden_features=16, epochs=10,
                  surface_steps=30, surface_batch_size=512, n_surface_samples=512, normalize="isotropic",
                  random_state=0)
    fused = OneFlow(**common).fit(X).predict(X)
    alone = OneFlow(**common, n_neighbors=0).fit(X).predict(X)
    assert (fused[1500:1560] == 1).mean() > 0.95
    assert (fused[1560:] == -1).mean() > 0.7
    assert (alone[1500:1560] == 1).mean() < 0.75  # without the neighbours the surface distance drops much of it
