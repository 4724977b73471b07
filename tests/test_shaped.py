"""The latent surface shaped like the data: its level, its fit from points, and a surface fit that starts from it."""

import numpy as np
import pytest
import torch

from pcflow.errors import PcflowError
from pcflow.shaped import GRID_SIZE, LatentGrid, fit_grid


def ellipsoid_points(n=4000, seed=0, noise=0.005):
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    return direction * (1.0, 0.7, 0.5) + rng.normal(scale=noise, size=(n, 3))


def ball_grid(spacing=0.25):
    axes = np.arange(-8, 9) * spacing
    nodes = np.stack(np.meshgrid(axes, axes, axes, indexing="ij"), axis=-1)
    return LatentGrid(np.linalg.norm(nodes, axis=-1), (axes[0],) * 3, spacing), nodes


def test_level_is_the_values_at_the_nodes_trilinear_between_and_grows_as_the_distance_beyond_the_box():
    grid, nodes = ball_grid()
    rng = np.random.default_rng(1)
    picked = nodes.reshape(-1, 3)[rng.choice(nodes.size // 3, 50, replace=False)]
    level = grid.level(torch.as_tensor(picked)).numpy()
    assert np.allclose(level, np.linalg.norm(picked, axis=1), atol=1e-12)
    # halfway between two nodes along an axis: their mean
    a, b = np.array([[0.25, 0.5, 0.0]]), np.array([[0.5, 0.5, 0.0]])
    middle = grid.level(torch.as_tensor(0.5 * (a + b))).numpy()[0]
    assert middle == pytest.approx(0.5 * (np.linalg.norm(a) + np.linalg.norm(b)), abs=1e-12)
    # beyond the box (corner at 2.0): the value at the nearest box point plus the distance to it
    far = grid.level(torch.tensor([[3.0, 0.0, 0.0]], dtype=torch.float64)).numpy()[0]
    assert far == pytest.approx(2.0 + 1.0, abs=1e-12)


def test_array_round_trip_is_exact():
    grid, _ = ball_grid()
    again = LatentGrid.from_array(grid.to_array())
    assert np.array_equal(again.values, grid.values) and again.origin == grid.origin and again.spacing == grid.spacing


def test_fit_grid_closes_a_genus_0_surface_through_the_points():
    import trimesh

    points = ellipsoid_points()
    grid = fit_grid(points)
    assert grid is not None
    level = grid.level(torch.as_tensor(points)).numpy()
    assert np.median(level) == pytest.approx(GRID_SIZE, abs=1e-3)
    assert np.quantile(np.abs(level - GRID_SIZE), 0.9) < 2 * grid.spacing
    mesh = trimesh.Trimesh(*grid.surface_mesh(GRID_SIZE), process=False)
    assert mesh.is_watertight and mesh.body_count == 1 and mesh.euler_number == 2
    # its volume is the ellipsoid's (4/3 pi abc) within a few cells' shell
    assert mesh.volume == pytest.approx(4.0 / 3.0 * np.pi * 0.35, rel=0.1)
    # surface points lie on it and solid points inside it
    generator = torch.Generator().manual_seed(0)
    on = grid.points(500, GRID_SIZE, generator=generator, dtype=torch.float64)
    assert torch.allclose(grid.level(on), torch.full((500,), GRID_SIZE, dtype=torch.float64), atol=1e-6)
    inside = grid.solid_points(500, GRID_SIZE, generator=generator, dtype=torch.float64)
    assert bool((grid.level(inside) <= GRID_SIZE).all())
    assert np.exp(grid.log_solid_volume(GRID_SIZE)) == pytest.approx(mesh.volume, rel=0.02)


def test_fit_grid_finds_nothing_in_points_that_enclose_no_volume():
    rng = np.random.default_rng(0)
    sheet = np.column_stack([rng.uniform(-1, 1, size=(3000, 2)), rng.normal(scale=0.005, size=3000)])
    assert fit_grid(sheet) is None


def test_surfaces_of_a_larger_size_stay_closed():
    import trimesh

    grid = fit_grid(ellipsoid_points())
    mesh = trimesh.Trimesh(*grid.mesh(GRID_SIZE + 0.5, grid.spacing), process=False)
    assert mesh.is_watertight and mesh.euler_number == 2


@pytest.fixture(scope="module")
def shaped_model():
    from pcflow.models import SurfaceFlow

    rng = np.random.default_rng(2)
    points = np.vstack([ellipsoid_points(3000, seed=2), rng.uniform(-1.5, 1.5, size=(100, 3))])
    model = SurfaceFlow(flow="general", n_couplings=4, hidden_features=32, shaped_steps=60, surface_batch_size=512,
                        n_surface_samples=512, normalize="isotropic", latent="shaped", random_state=0).fit(points)
    return model, points


def test_a_shaped_fit_skips_the_envelope_and_meshes_a_closed_genus_0_surface_through_the_points(shaped_model):
    from pcflow.meshing import Shaped, boundary_mesh, model_template, validity

    model, points = shaped_model
    assert isinstance(model.template_, LatentGrid) and isinstance(model_template(model), Shaped)
    assert model.n_iter_ == 0 and model.n_surface_steps_ <= 60 and model.history_["loss"] == []
    boundary = boundary_mesh(model)
    checks = validity(boundary.mesh)
    assert checks["watertight"] and checks["genus"] == 0 and checks["self_intersections"] == 0
    assert checks["n_components"] == 1
    # the mesh lies on the ellipsoid: its vertices' radial offset from it is small
    vertices = np.asarray(boundary.mesh.vertices)
    scaled = np.linalg.norm(vertices / (1.0, 0.7, 0.5), axis=1)
    assert np.quantile(np.abs(scaled - 1.0), 0.95) < 0.05
    # the outliers far from the surface are flagged, the surface points kept
    labels = model.predict(points)
    assert (labels[:3000] == 1).mean() > 0.9
    far = np.abs(np.linalg.norm(points[3000:] / (1.0, 0.7, 0.5), axis=1) - 1.0) > 0.3
    assert (labels[3000:][far] == -1).mean() > 0.8


def test_a_shaped_model_file_keeps_its_surface_exactly(shaped_model, tmp_path):
    from pcflow.models import load

    model, points = shaped_model
    model.save(tmp_path / "model.pt")
    again = load(tmp_path / "model.pt")
    assert isinstance(again.template_, LatentGrid)
    assert np.array_equal(again.template_.values, model.template_.values)
    assert np.array_equal(again.score_samples(points[:300]), model.score_samples(points[:300]))


def test_a_shaped_fit_starts_from_the_sphere_where_the_points_enclose_nothing():
    from pcflow.models import SurfaceFlow

    rng = np.random.default_rng(0)
    sheet = np.column_stack([rng.uniform(-1, 1, size=(1500, 2)), rng.normal(scale=0.005, size=1500)])
    model = SurfaceFlow(flow="general", n_couplings=2, hidden_features=8, epochs=2, surface_steps=5, latent="shaped",
                        normalize="isotropic", random_state=0).fit(sheet)
    assert model.template_ is None and model.n_iter_ > 0


def torus_points(n=6000, seed=0, noise=0.004):
    """A torus (ring 1.0, tube 0.35) around z, flattened along y: genus 1."""
    rng = np.random.default_rng(seed)
    ring, tube = rng.uniform(0, 2 * np.pi, size=(2, n))
    rho = 1.0 + 0.35 * np.cos(tube)
    points = np.column_stack([rho * np.cos(ring), 0.8 * rho * np.sin(ring), 0.35 * np.sin(tube)])
    return points + rng.normal(scale=noise, size=(n, 3))


def test_fit_grid_closes_a_surface_of_the_genus_asked_for_or_none():
    import trimesh

    points = torus_points()
    assert fit_grid(points) is None  # no genus-0 surface bounds a solid torus
    grid = fit_grid(points, genus=1)
    assert grid is not None and grid.genus == 1 and grid.kind == "shaped"
    mesh = trimesh.Trimesh(*grid.surface_mesh(GRID_SIZE), process=False)
    assert mesh.is_watertight and mesh.body_count == 1 and mesh.euler_number == 0
    assert fit_grid(points, genus=2) is None
    again = LatentGrid.from_array(grid.to_array(), grid.genus)
    assert again.genus == 1 and np.array_equal(again.values, grid.values)


@pytest.fixture(scope="module")
def ring_model():
    from pcflow.models import SurfaceFlow

    rng = np.random.default_rng(3)
    points = np.vstack([torus_points(4000, seed=3), rng.uniform(-1.6, 1.6, size=(150, 3)) * (1.0, 1.0, 0.5)])
    model = SurfaceFlow(flow="general", n_couplings=4, hidden_features=32, shaped_steps=40, surface_batch_size=512,
                        n_surface_samples=512, genus=1, latent="shaped", random_state=0).fit(points)
    return model, points


def test_a_shaped_fit_of_genus_1_meshes_a_closed_torus_through_the_points_without_tori(ring_model, tmp_path):
    from pcflow.meshing import Shaped, boundary_mesh, model_template, validity
    from pcflow.models import load
    from pcflow.pipeline.reconstruct import latent_kind

    model, points = ring_model
    assert isinstance(model.template_, LatentGrid) and model.template_.genus == 1
    assert isinstance(model_template(model), Shaped) and model_template(model).genus == 1
    assert latent_kind(model) == "shaped" and model.n_iter_ == 0 and model.n_surface_steps_ <= 40
    boundary = boundary_mesh(model)
    checks = validity(boundary.mesh)
    assert checks["watertight"] and checks["genus"] == 1 and checks["n_components"] == 1
    assert checks["self_intersections"] == 0
    # the mesh lies on the torus: its vertices' distance from the tube's centre circle is near the tube radius
    vertices = np.asarray(boundary.mesh.vertices) / (1.0, 0.8, 1.0)
    tube = np.hypot(np.hypot(vertices[:, 0], vertices[:, 1]) - 1.0, vertices[:, 2])
    assert np.quantile(np.abs(tube - 0.35), 0.9) < 0.06
    model.save(tmp_path / "ring.pt")
    again = load(tmp_path / "ring.pt")
    assert again.template_.genus == 1 and latent_kind(again) == "shaped"
    assert np.array_equal(again.score_samples(points[:200]), model.score_samples(points[:200]))


def test_auto_fits_a_shape_with_a_handle_from_a_shaped_surface_of_genus_1():
    from pcflow.pipeline import FitOptions
    from pcflow.pipeline.fit import choose_genus

    model = FitOptions().estimator()
    estimate = choose_genus(model, torus_points(), 0, FitOptions())
    assert estimate.genus == 1 and model.genus == 1 and model.latent == "shaped"
    model = FitOptions(latent="sphere").estimator()
    choose_genus(model, torus_points(), 0, FitOptions(latent="sphere"))
    assert model.genus == 1 and model.latent == "sphere"  # the fitted torus, as asked


def test_shaped_needs_3d_points_and_latent_is_checked():
    from pcflow.models import SurfaceFlow

    rng = np.random.default_rng(0)
    with pytest.raises(PcflowError, match="3-D"):
        SurfaceFlow(shaped_steps=1, latent="shaped").fit(rng.normal(size=(300, 2)))
    with pytest.raises(PcflowError, match="latent"):
        SurfaceFlow(latent="blob").fit(rng.normal(size=(300, 3)))


def test_auto_takes_the_shaped_surface_only_where_the_points_enclose_a_volume():
    from pcflow.pipeline import FitOptions
    from pcflow.pipeline.fit import choose_genus

    rng = np.random.default_rng(0)
    closed = ellipsoid_points(3000)
    sheet = np.column_stack([rng.uniform(-1, 1, size=(3000, 2)), rng.normal(scale=0.005, size=3000)])
    for points, expected in ((closed, "shaped"), (sheet, "sphere")):
        model = FitOptions().estimator()
        choose_genus(model, points, 0, FitOptions())
        assert model.latent == expected and model.genus == 0
    model = FitOptions(latent="sphere").estimator()
    choose_genus(model, closed, 0, FitOptions(latent="sphere"))
    assert model.latent == "sphere"
    with pytest.raises(PcflowError, match="latent must be one of"):
        FitOptions(latent="blob").estimator()


def test_fit_grid_closes_a_thin_slab_with_fewer_dilations_where_the_usual_ones_fill_it(monkeypatch):
    """A box 3% as thick as it is long: two dilations from both faces fill its inside at every spacing tried, one
    leaves it (the last try); the surface is one closed genus-0 surface as thin as the slab."""
    import trimesh

    import pcflow.shaped as shaped

    box = trimesh.creation.box(extents=(1.0, 0.6, 0.03))
    points = box.sample(20_000, seed=0) + np.random.default_rng(0).normal(scale=0.002, size=(20_000, 3))
    grid = fit_grid(points)
    assert grid is not None
    mesh = trimesh.Trimesh(*grid.surface_mesh(GRID_SIZE), process=False)
    assert mesh.is_watertight and mesh.body_count == 1 and mesh.euler_number == 2
    assert np.ptp(mesh.vertices[:, 2]) < 0.1 and mesh.volume == pytest.approx(0.018, rel=0.5)
    monkeypatch.setattr(shaped, "THIN_CLOSING", shaped.CLOSING)
    assert fit_grid(points) is None
