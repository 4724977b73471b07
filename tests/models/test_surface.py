"""Tests of SurfaceFlow, the 3D surface model: the surface fit, its scores, its mesh, its settings and its files."""

import copy

import numpy as np
import pytest
import torch

from pcflow import NotFittedError, OneFlow, PcflowError, SurfaceFlow


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
    envelope = OneFlow(**common).fit(shell_scan)
    surface = SurfaceFlow(surface_steps=150, surface_batch_size=512, n_surface_samples=512, **common).fit(shell_scan)
    return envelope, surface


def test_surface_mesh_follows_the_surface_the_envelope_does_not(surface_models):
    import trimesh

    from pcflow.meshing import boundary_mesh, validity

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
    # a dense cluster: its points' neighbour and plane distances are like the surface's own, so with the plane term a
    # few at its edge pass (27 of the 30; all 30 without it)
    assert (surface.predict(shell_scan)[inner] == -1).mean() >= 0.85
    assert (envelope.predict(shell_scan)[inner] == 1).mean() > 0.9  # they lie inside the envelope's solid region


def test_surface_predict_takes_the_gradient_only_where_the_data_distance_leaves_it_open(surface_models, shell_scan,
                                                                                         monkeypatch):
    _, surface = surface_models
    rng = np.random.default_rng(1)
    X = np.vstack([shell_scan, rng.uniform(-1.5, 1.5, size=(300, 3))])
    full = np.where(surface.decision_function(X) >= 0, 1, -1)
    rows = []
    distance = SurfaceFlow._distance_normalized
    monkeypatch.setattr(SurfaceFlow, "_distance_normalized", lambda self, data: rows.append(len(data)) or
                        distance(self, data))
    np.testing.assert_array_equal(surface.predict(X), full)
    bound = np.hypot(surface.neighbor_distance(X), surface.plane_weight * surface.plane_distance(X))
    open_rows = (-bound - surface.offset_ < 0).sum()
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
    near = np.minimum(model.surface_weight * model.surface_distance(shell_scan), model.neighbor_distance(shell_scan))
    plane = model.plane_weight * model.plane_distance(shell_scan)
    assert model.plane_weight > 0 and plane.max() > 0
    np.testing.assert_allclose(-model.score_samples(shell_scan), np.hypot(near, plane))
    assert model.offset_ == -model.distance_threshold_
    assert (labels[1530:] == -1).mean() > 0.9 and (labels[:1500] == 1).mean() > 0.97
    assert len(model.history_["surface_loss"]) == 3  # one entry per 50 steps
    assert model.history_["surface_loss"][-1] < model.history_["surface_loss"][0]


def test_surface_distance_is_the_distance_to_the_mesh(surface_models, shell_scan):
    import trimesh

    from pcflow.meshing import boundary_mesh

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

    from pcflow.meshing import boundary_mesh, validity

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
    assert isinstance(loaded, SurfaceFlow) and SurfaceFlow.load(tmp_path / "surface.pt").radius_ == model.radius_
    assert loaded.objective == "surface" and loaded.surface_steps == 150 and loaded.n_surface_steps_ == 150
    assert loaded.distance_threshold_ == model.distance_threshold_ and loaded.radius_ == model.radius_
    np.testing.assert_array_equal(loaded.predict(shell_scan), model.predict(shell_scan))
    np.testing.assert_allclose(loaded.score_samples(shell_scan), model.score_samples(shell_scan))


def test_surface_model_saved_without_a_plane_weight_scores_without_it(surface_models, shell_scan, tmp_path):
    """Files written before `plane_weight` existed keep the score they were thresholded with: no plane term."""
    _, model = surface_models
    model.save(tmp_path / "surface.pt")
    state = torch.load(tmp_path / "surface.pt", weights_only=True)
    del state["params"]["plane_weight"], state["params"]["plane_neighbors"]
    torch.save(state, tmp_path / "older.pt")
    loaded = OneFlow.load(tmp_path / "older.pt")
    assert loaded.plane_weight == 0.0 and loaded.surface_weight == model.surface_weight
    near = np.minimum(model.surface_weight * model.surface_distance(shell_scan), model.neighbor_distance(shell_scan))
    np.testing.assert_allclose(-loaded.score_samples(shell_scan), near)
    np.testing.assert_array_equal(loaded.predict(shell_scan), np.where(near <= loaded.distance_threshold_, 1, -1))


def test_surface_model_saved_without_a_surface_weight_scores_with_one(surface_models, shell_scan, tmp_path):
    """Files written before `surface_weight` and `neighbor_statistic` existed keep the score they were thresholded
    with: weight 1 and the k-th neighbour's distance."""
    _, model = surface_models
    assert model.surface_weight != 1.0 and model.neighbor_statistic != "kth"
    model.save(tmp_path / "surface.pt")
    state = torch.load(tmp_path / "surface.pt", weights_only=True)
    del state["params"]["surface_weight"], state["params"]["neighbor_statistic"]
    del state["params"]["plane_weight"], state["params"]["plane_neighbors"]
    del state["model"]  # a file of format 1, where one class held every model, its kind in the objective
    state["format_version"], state["params"]["objective"] = 1, "surface"
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
    from pcflow.meshing import surface_gap
    from pcflow.pipeline import OPEN_SCENE_GAP

    scene = SurfaceFlow(**surface_models[1].get_params()).fit(table_and_wall)  # the ellipsoid's settings
    assert surface_gap(surface_models[1]) < 0.05  # the ellipsoid: every part of the surface has points near it
    assert surface_gap(scene) > OPEN_SCENE_GAP  # the closed surface must bridge the gap between table and wall
    with pytest.raises(PcflowError, match="objective='surface'"):
        surface_gap(surface_models[0])


def test_surface_check_runs_once_mid_fit_and_can_end_it(shell_scan):
    from pcflow.models import SURFACE_CHECK_STEPS

    params = dict(alpha=0.05, flow="general", n_couplings=2, hidden_features=16, epochs=3,
                  surface_steps=SURFACE_CHECK_STEPS + 20, surface_batch_size=256, n_surface_samples=256,
                  normalize="isotropic", random_state=0)
    seen = []

    def look(model):
        seen.append((model.radius_, len(model.reference_points_), model.inverse_transform(np.zeros((1, 3)))))

    checked = SurfaceFlow(**params).fit(shell_scan, surface_check=look)
    plain = SurfaceFlow(**params).fit(shell_scan)
    assert len(seen) == 1 and seen[0][0] == checked.radius_ and seen[0][1] == len(shell_scan)
    np.testing.assert_array_equal(checked.score_samples(shell_scan), plain.score_samples(shell_scan))

    class Stop(Exception):
        pass

    def stop(model):
        raise Stop

    model = SurfaceFlow(**params)
    with pytest.raises(Stop):
        model.fit(shell_scan, surface_check=stop)
    with pytest.raises(NotFittedError):
        model.predict(shell_scan)


def test_surface_fit_stops_once_its_block_loss_stops_falling(shell_scan, monkeypatch):
    import pcflow.models.surface as surface

    rates = []  # the learning rate of every optimisation step of the surface fit (its optimizer is made second)
    real_adam = surface.adam

    def recording_adam(parameters, lr):
        optimizer = real_adam(parameters, lr)
        if lr == params["surface_lr"]:
            real_step = optimizer.step

            def step():
                rates.append(optimizer.param_groups[0]["lr"])
                real_step()

            optimizer.step = step
        return optimizer

    monkeypatch.setattr(surface, "adam", recording_adam)
    params = dict(alpha=0.05, flow="general", n_couplings=2, hidden_features=16, epochs=3,
                  lr=1e-3, surface_lr=3e-3, surface_steps=2000, surface_batch_size=128, n_surface_samples=128,
                  normalize="isotropic", random_state=0, surface_patience=3, surface_tol=0.02, surface_cooldown=150)
    model = SurfaceFlow(**params).fit(shell_scan)
    cooldown = model.surface_cooldown  # not the default 100: the setting is the one used
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
    assert model.n_surface_steps_ == 50 * stop + cooldown < 2000
    assert len(blocks) == stop + cooldown // 50
    # the last steps take the learning rate from where the schedule had it down to the lowest, a twentieth
    assert len(rates) == model.n_surface_steps_
    cooling = np.array(rates[50 * stop:])
    lowest = 0.05 * params["surface_lr"]
    assert cooling[0] == pytest.approx(rates[50 * stop - 1], rel=0.01) and np.all(np.diff(cooling) < 0)
    np.testing.assert_allclose(cooling[-1],
                               lowest + (cooling[0] - lowest) * 0.5 * (1 + np.cos(np.pi * (cooldown - 1) / cooldown)))

    full = SurfaceFlow(**{**params, "surface_steps": 230, "surface_patience": None}).fit(shell_scan)
    assert full.n_surface_steps_ == 230 and len(full.history_["surface_loss"]) == 5  # four blocks of 50, one of 30
    blocks_of_40 = SurfaceFlow(**{**params, "surface_steps": 100, "surface_patience": None, "surface_block": 40})
    assert len(blocks_of_40.fit(shell_scan).history_["surface_loss"]) == 3  # 40, 40 and the last 20


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
    params = dict(alpha=0.05, flow="general", n_couplings=2, hidden_features=8, epochs=2, surface_steps=7,
                  surface_batch_size=64, n_surface_samples=64, random_state=0)
    SurfaceFlow(**params).fit(shell_scan)
    weights = [weight for _, weight in calls]
    assert weights == [2 * RADIAL_WEIGHT, 0.0] * 3 + [2 * RADIAL_WEIGHT]
    calls.clear()
    SurfaceFlow(**params, radial_every=3).fit(shell_scan)
    assert [weight for _, weight in calls] == [3 * RADIAL_WEIGHT, 0.0, 0.0] * 2 + [3 * RADIAL_WEIGHT]


def test_surface_fit_maps_half_the_sphere_points_in_its_coarse_first_steps(shell_scan, monkeypatch):
    calls = _record_surface_steps(monkeypatch)
    params = dict(alpha=0.05, flow="general", n_couplings=2, hidden_features=8, epochs=2,
                  surface_steps=10, surface_batch_size=64, n_surface_samples=64, random_state=0)
    model = SurfaceFlow(**params).fit(shell_scan)
    counts = [n for n, _ in calls]
    coarse = int(model.coarse_share * 10)
    assert 0 < coarse < 10 and counts == [32] * coarse + [64] * (10 - coarse)
    assert SurfaceFlow(**params).coarse_surface_samples() == 32
    assert SurfaceFlow(n_surface_samples=1).coarse_surface_samples() == 1
    calls.clear()
    SurfaceFlow(**params, coarse_share=0.0).fit(shell_scan)
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
    common = dict(alpha=0.03, flow="general", n_couplings=2, hidden_features=16, epochs=10,
                  surface_steps=30, surface_batch_size=512, n_surface_samples=512, normalize="isotropic",
                  random_state=0)
    fused = SurfaceFlow(**common).fit(X).predict(X)
    alone = SurfaceFlow(**common, n_neighbors=0).fit(X).predict(X)
    assert (fused[1500:1560] == 1).mean() > 0.95
    assert (fused[1560:] == -1).mean() > 0.7
    assert (alone[1500:1560] == 1).mean() < 0.75  # without the neighbours the surface distance drops much of it


def test_reference_points_are_a_seeded_subset_of_at_most_n_reference_points(shell_scan):
    params = dict(alpha=0.05, flow="general", n_couplings=2, hidden_features=8, epochs=2, surface_steps=3,
                  surface_batch_size=64, n_surface_samples=64, normalize="isotropic", random_state=0)
    model = SurfaceFlow(**params, n_reference_points=500).fit(shell_scan)
    rows = np.sort(np.random.default_rng(model.seed_).choice(len(shell_scan), 500, replace=False))
    np.testing.assert_allclose(model.reference_points_ + model.center_, shell_scan[rows], rtol=0, atol=1e-12)


def test_plane_distance_against_brute_force(surface_models, shell_scan):
    from scipy.spatial import cKDTree

    from pcflow.models.surface import plane_distances

    _, model = surface_models
    queries = np.vstack([shell_scan[::97], [[0.3, 0.2, 0.1], [2.0, 2.0, 2.0]]])  # training points and new points
    expected = []
    for query in queries:
        gaps = np.linalg.norm(shell_scan - query, axis=1)
        order = np.argsort(gaps)
        near = shell_scan[order[gaps[order] > 0][:model.plane_neighbors]]  # the nearest *other* points
        centroid = near.mean(axis=0)
        normal = np.linalg.svd(near - centroid)[2][-1]  # the direction of least variance
        expected.append(abs((query - centroid) @ normal))
    np.testing.assert_allclose(model.plane_distance(queries), expected, rtol=1e-7, atol=1e-12)
    flat = np.column_stack([np.random.default_rng(1).uniform(-1, 1, size=(200, 2)), np.zeros(200)])
    z = np.array([0.0, 0.05, -0.2])  # points above and below a plane of points: their heights
    lifted = np.column_stack([np.zeros((3, 2)), z])
    np.testing.assert_allclose(plane_distances(cKDTree(flat), flat, lifted, 12), np.abs(z), atol=1e-12)


@pytest.mark.parametrize(
    "params,match",
    [
        ({"surface_steps": 0}, "surface_steps must be a positive integer"),
        ({"surface_lr": 0}, "surface_lr must be a positive number"),
        ({"surface_patience": 0}, "surface_patience must be a positive integer or None"),
        ({"surface_tol": -0.1}, "surface_tol must be a non-negative number"),
        ({"n_neighbors": -1}, "n_neighbors must be a non-negative integer"),
        ({"neighbor_statistic": "median"}, "neighbor_statistic must be one of"),
        ({"plane_weight": -1.0}, "plane_weight must be a non-negative number"),
        ({"plane_neighbors": 2}, "plane_neighbors must be an integer >= 3"),
        ({"coarse_share": 1.5}, r"coarse_share must be a number in \[0, 1\]"),
        ({"radial_every": 0}, "radial_every must be a positive integer"),
        ({"surface_block": 0}, "surface_block must be a positive integer"),
        ({"surface_cooldown": 2.5}, "surface_cooldown must be a positive integer"),
        ({"n_reference_points": 0}, "n_reference_points must be a positive integer"),
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"genus": 4}, "genus must be one of"),
    ],
)
def test_bad_surface_parameters(shell_scan, params, match):
    with pytest.raises(PcflowError, match=match):
        SurfaceFlow(**params).fit(shell_scan)


def test_the_surface_models_tuning_is_in_its_parameters():
    params = SurfaceFlow().get_params()
    assert {"coarse_share": 0.6, "radial_every": 2, "surface_block": 50, "surface_cooldown": 100,
            "n_reference_points": 20_000}.items() <= params.items()
    assert set(OneFlow().get_params()) < set(params) and "surface_steps" not in OneFlow().get_params()


@pytest.fixture(scope="module")
def ring_scan():
    """A noisy torus surface (ring 1, tube 0.35, axis z; 3000 points) and 100 outliers around it."""
    import trimesh

    torus = trimesh.creation.torus(major_radius=1.0, minor_radius=0.35, major_sections=64, minor_sections=32)
    rng = np.random.default_rng(3)
    surface = torus.sample(3000, seed=3) + rng.normal(scale=0.005, size=(3000, 3))
    return np.vstack([surface, rng.uniform(-1.6, 1.6, size=(100, 3))]), torus


@pytest.fixture(scope="module")
def ring_model(ring_scan):
    return SurfaceFlow(flow="general", n_couplings=4, hidden_features=32, epochs=10, torus_steps=150,
                       surface_batch_size=512, n_surface_samples=512, normalize="isotropic", random_state=0,
                       genus=1).fit(ring_scan[0])


def test_genus_1_surface_is_a_torus_through_the_points(ring_model, ring_scan):
    import trimesh

    from pcflow.latent import LatentTorus
    from pcflow.meshing import Torus, boundary_mesh, model_template, validity

    points, truth = ring_scan
    assert ring_model.n_iter_ == 0 and 0 < ring_model.n_surface_steps_ <= 150  # torus_steps, not surface_steps
    assert isinstance(ring_model.template_, LatentTorus) and isinstance(model_template(ring_model), Torus)
    mesh = boundary_mesh(ring_model).mesh
    checks = validity(mesh)
    assert checks["watertight"] and checks["genus"] == 1 and checks["self_intersections"] == 0
    assert trimesh.proximity.closest_point(truth, mesh.vertices)[1].mean() < 0.02
    assert ring_model.radius_ < ring_model.template_.major
    # the model's latent radius is the torus's level: the training inliers' median sits at the surface
    inliers = ring_model.predict(points[:3000]) == 1
    assert inliers.mean() > 0.95 and (ring_model.predict(points[3000:]) == -1).mean() > 0.6
    levels = ring_model.latent_radius(points[:3000])
    assert abs(np.median(levels) / ring_model.radius_ - 1) < 0.1
    # the region's volume is the solid torus's preimage: the mesh's, to within the Monte-Carlo error and the snap
    assert abs(ring_model.volume_ / mesh.volume - 1) < 0.1


def test_genus_1_mesh_at_a_coverage_past_the_ring_closes_the_hole_cleanly(ring_model):
    from pcflow.meshing import boundary_mesh, validity

    assert ring_model.radius_at(0.99) > ring_model.template_.major  # the tube reaches the axis at this coverage
    checks = validity(boundary_mesh(ring_model, coverage=0.99).mesh)
    assert checks["watertight"] and checks["genus"] == 0 and checks["self_intersections"] == 0


def test_genus_1_model_file_keeps_its_torus(ring_model, ring_scan, tmp_path):
    from pcflow.models import load

    ring_model.save(tmp_path / "ring.pt")
    loaded = load(tmp_path / "ring.pt")
    assert loaded.genus == 1 and loaded.template_ == ring_model.template_
    np.testing.assert_allclose(loaded.score_samples(ring_scan[0][:300]), ring_model.score_samples(ring_scan[0][:300]))


def test_genus_1_needs_3d_points():
    rng = np.random.default_rng(0)
    with pytest.raises(PcflowError, match="genus 1 needs 3-D points"):
        SurfaceFlow(epochs=1, surface_steps=1, genus=1).fit(rng.normal(size=(300, 2)))


def test_genus_1_falls_back_to_the_sphere_where_no_torus_fits(shell_scan, monkeypatch, caplog):
    import pcflow.models.surface as surface

    monkeypatch.setattr(surface, "fit_torus", lambda points, seed: None)
    model = SurfaceFlow(flow="general", n_couplings=2, hidden_features=8, epochs=2, surface_steps=5, genus=1,
                        random_state=0).fit(shell_scan)
    assert model.template_ is None and "no torus fits" in caplog.text


def test_genus_1_marching_cubes_of_the_torus_level_agrees_with_the_mesh(ring_model):
    from pcflow.meshing import boundary_mesh, marching_cubes_mesh, validity

    cubes = marching_cubes_mesh(ring_model, resolution=48)
    assert validity(cubes, check_intersections=False)["genus"] == 1
    assert abs(cubes.volume / boundary_mesh(ring_model, snap=False).mesh.volume - 1) < 0.05


@pytest.fixture(scope="module")
def pair_scan():
    """Points on two joined rings side by side (genus 2; 3200, noise 0.005) and 100 outliers around them, and the
    rings' `LatentTori` (their surface of size 0.25)."""
    import torch

    from pcflow.latent import LatentTori, LatentTorus

    pair = LatentTori((LatentTorus((-0.9, 0.0, 0.0), (0.0, 0.0, 1.0), 0.75),
                       LatentTorus((0.9, 0.0, 0.0), (0.0, 0.0, 1.0), 0.75)), 0.12)
    rng = np.random.default_rng(6)
    surface = pair.points(3200, 0.25, generator=torch.Generator().manual_seed(6), dtype=torch.float64).numpy()
    surface = surface + rng.normal(scale=0.005, size=surface.shape)
    return np.vstack([surface, rng.uniform([-2.0, -1.1, -0.5], [2.0, 1.1, 0.5], size=(100, 3))]), pair


@pytest.fixture(scope="module")
def pair_model(pair_scan):
    return SurfaceFlow(flow="general", n_couplings=4, hidden_features=32, epochs=10, torus_steps=150,
                       surface_batch_size=512, n_surface_samples=512, normalize="isotropic", random_state=0,
                       genus=2).fit(pair_scan[0])


def test_genus_2_surface_is_two_joined_tori_through_the_points(pair_model, pair_scan, tmp_path):
    import torch
    import trimesh

    from pcflow.latent import LatentTori
    from pcflow.meshing import Tori, boundary_mesh, marching_cubes_mesh, model_template, validity
    from pcflow.models import load

    points, truth = pair_scan
    assert isinstance(pair_model.template_, LatentTori) and isinstance(model_template(pair_model), Tori)
    mesh = boundary_mesh(pair_model).mesh
    checks = validity(mesh)
    assert checks["watertight"] and checks["genus"] == 2 and checks["self_intersections"] == 0
    # the mesh lies on the true surface (the rings' level, a distance, is 0.25 there), and every point lies on it
    offset = np.abs(truth.level(torch.as_tensor(np.asarray(mesh.vertices))).numpy() - 0.25)
    assert offset.mean() < 0.005 and np.percentile(offset, 95) < 0.015
    assert trimesh.proximity.closest_point(mesh, points[:-100])[1].mean() < 0.01
    assert (pair_model.predict(points[-100:]) == -1).mean() > 0.6
    assert abs(pair_model.volume_ / mesh.volume - 1) < 0.1
    assert validity(marching_cubes_mesh(pair_model, resolution=64), check_intersections=False)["genus"] == 2
    pair_model.save(tmp_path / "pair.pt")
    loaded = load(tmp_path / "pair.pt")
    assert loaded.genus == 2 and loaded.template_ == pair_model.template_
    np.testing.assert_allclose(loaded.score_samples(points[:300]), pair_model.score_samples(points[:300]))


def test_genus_2_falls_back_to_the_sphere_where_no_tori_fit(shell_scan, monkeypatch, caplog):
    import pcflow.models.surface as surface

    monkeypatch.setattr(surface, "fit_tori", lambda points, genus, seed: None)
    model = SurfaceFlow(flow="general", n_couplings=2, hidden_features=8, epochs=2, surface_steps=5, genus=2,
                        random_state=0).fit(shell_scan)
    assert model.template_ is None and "no 2 joined tori fit" in caplog.text


def test_joined_tori_count_only_where_they_bound_a_surface_of_their_genus():
    from pcflow.latent import LatentTori, LatentTorus
    from pcflow.models.surface import _bounds_genus

    up = (0.0, 0.0, 1.0)
    chain = LatentTori(tuple(LatentTorus((x, 0.0, 0.0), up, 0.7) for x in (-1.7, 0.0, 1.7)), 0.12)
    assert _bounds_genus(chain, 0.25)  # three rings in a row: genus 3
    apart = LatentTori((LatentTorus((-2.0, 0.0, 0.0), up, 0.7), LatentTorus((2.0, 0.0, 0.0), up, 0.7)), 0.12)
    assert not _bounds_genus(apart, 0.25)  # two rings that miss each other: two surfaces
    around = LatentTori(tuple(LatentTorus((0.95 * np.cos(a), 0.95 * np.sin(a), 0.0), up, 0.6)
                              for a in (0.0, 2 * np.pi / 3, 4 * np.pi / 3)), 0.11)
    assert not _bounds_genus(around, 0.22)  # three rings around a centre close a loop: a fourth handle
