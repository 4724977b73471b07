"""Tests for pcflow.mesh: sphere meshes through inverse maps, refinement, validity, marching cubes."""

import itertools
import re

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from pcflow.errors import PcflowError
from pcflow.mesh import (
    BoundaryMesh,
    boundary_mesh,
    count_self_intersections,
    marching_cubes_mesh,
    snap_to_points,
    sphere_mesh,
    unsupported_share,
    validity,
)
from pcflow.mesh import _sphere_uv

BALL = 4.0 / 3.0 * np.pi


def anisotropic_matrix(det_sign=1.0):
    """A linear map with singular values 1, 0.5, 0.2 in general directions."""
    u = Rotation.from_euler("xyz", [0.3, 0.7, -0.4]).as_matrix()
    v = Rotation.from_euler("xyz", [-1.1, 0.2, 0.5]).as_matrix()
    return u @ np.diag([1.0, 0.5, det_sign * 0.2]) @ v


def shear(z):
    """Volume-preserving triangular map (x, y + g(x), w + h(x, y)): det 1, a stand-in for NICE."""
    x, y, w = z.T
    y = y + 0.8 * np.sin(1.5 * x)
    w = w + 0.5 * np.cos(x + y) + 0.3 * x * y
    return np.column_stack([x, y, w])


def unshear(p):
    x, y, w = p.T
    w = w - 0.5 * np.cos(x + y) - 0.3 * x * y
    y = y - 0.8 * np.sin(1.5 * x)
    return np.column_stack([x, y, w])


class StandInModel:
    """What the mesh code needs of a fitted OneFlow: an explicit bijection and a latent radius.

    The latent-to-input map is x = scale * g(z) + shift with g the identity, a matrix, or `shear`.
    """

    n_features_in_ = 3

    def __init__(self, kind="affine", matrix=None, scale=1.0, shift=(0.0, 0.0, 0.0), radius=1.0):
        self.kind = kind
        self.matrix = np.eye(3) if matrix is None else np.asarray(matrix, dtype=float)
        self.scale = float(scale)
        self.shift = np.asarray(shift, dtype=float)
        self.radius_ = float(radius)

    def inverse_transform(self, z):
        z = np.asarray(z, dtype=float)
        g = shear(z) if self.kind == "shear" else z @ self.matrix.T
        return self.scale * g + self.shift

    def transform(self, x):
        p = (np.asarray(x, dtype=float) - self.shift) / self.scale
        return unshear(p) if self.kind == "shear" else np.linalg.solve(self.matrix, p.T).T

    def radius_at(self, coverage):
        return self.radius_ * coverage ** (1.0 / 3.0)

    def decision_function(self, x):
        return self.radius_ - np.linalg.norm(self.transform(x), axis=1)

    @property
    def volume_(self):
        return abs(np.linalg.det(self.matrix)) * self.scale**3 * BALL * self.radius_**3


def assert_valid(mesh):
    report = validity(mesh)
    assert report["watertight"]
    assert report["winding_consistent"]
    assert report["positive_volume"]
    assert report["n_components"] == 1
    assert report["euler"] == 2 and report["genus"] == 0
    assert report["self_intersections"] == 0
    return report


# ------------------------------------------------------------------------------------ sphere_mesh


@pytest.mark.parametrize("radius", [0.3, 1.0, 7.5])
def test_identity_gives_the_sphere(radius):
    bm = sphere_mesh(lambda z: z.copy(), radius)
    assert isinstance(bm, BoundaryMesh) and bm.radius == radius
    np.testing.assert_allclose(np.linalg.norm(bm.mesh.vertices, axis=1), radius, rtol=0, atol=1e-12 * radius)
    np.testing.assert_array_equal(bm.mesh.vertices, bm.latent)
    assert bm.info["max_edge"] <= bm.info["tolerance"] and not bm.info["hit_face_budget"]
    report = assert_valid(bm.mesh)
    assert abs(report["volume"] / (BALL * radius**3) - 1) < 0.01


def test_unrefined_mesh_is_the_icosphere_and_volume_converges():
    deficits = []
    for level in range(1, 6):
        bm = sphere_mesh(lambda z: z.copy(), 2.0, subdivisions=level, tolerance=np.inf, check_intersections=False)
        reference = trimesh.creation.icosphere(subdivisions=level, radius=2.0)
        assert len(bm.mesh.faces) == len(reference.faces) and bm.info["n_refinement_passes"] == 0
        assert bm.mesh.volume == pytest.approx(reference.volume, rel=1e-12)
        deficits.append(1 - bm.mesh.volume / (BALL * 8.0))
    assert all(d > 0 for d in deficits)
    # The inscribed polyhedron's deficit falls about fourfold per level (second-order convergence).
    ratios = np.array(deficits[:-1]) / np.array(deficits[1:])
    assert np.all((ratios > 3.5) & (ratios < 4.5))
    assert deficits[-1] < 1e-3


def test_uv_chart_matches_latent_direction():
    bm = sphere_mesh(lambda z: z.copy(), 1.5, subdivisions=2, check_intersections=False)
    u, v = bm.uv.T
    assert bm.uv.shape == (len(bm.latent), 2)
    assert np.all((bm.uv >= 0) & (bm.uv <= 1))
    polar, azimuth = np.pi * v, 2 * np.pi * u
    rebuilt = 1.5 * np.column_stack(
        [np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)]
    )
    np.testing.assert_allclose(rebuilt, bm.latent, atol=1e-12)


def test_face_uv_is_continuous_across_the_seam():
    bm = sphere_mesh(lambda z: z.copy(), 1.5, subdivisions=3, check_intersections=False)
    faces = bm.mesh.faces
    assert np.ptp(bm.uv[faces][..., 0], axis=1).max() > 0.9  # per vertex, faces on the seam span the chart
    corners = bm.face_uv
    assert corners.shape == (len(faces), 3, 2)
    assert np.ptp(corners[..., 0], axis=1).max() < 0.25  # no face stretches across it per corner
    np.testing.assert_array_equal(corners[..., 1], bm.uv[faces][..., 1])
    off_pole = ~np.isclose(np.abs(bm.latent[:, 2]), 1.5, rtol=0, atol=1e-12)[faces]  # a pole's azimuth is free
    assert (~off_pole).any()
    np.testing.assert_allclose(np.mod(corners[..., 0], 1.0)[off_pole], bm.uv[faces][..., 0][off_pole], atol=1e-12)
    assert corners[..., 0].min() >= 0 and corners[..., 0].max() < 1.5


def test_face_uv_pole_corner_takes_its_faces_azimuth():
    sphere = trimesh.creation.uv_sphere(radius=1.0, count=[8, 12])
    latent = np.asarray(sphere.vertices)
    bm = BoundaryMesh(mesh=sphere, latent=latent, uv=_sphere_uv(latent), radius=1.0)
    corners = bm.face_uv
    pole = np.isclose(np.abs(latent[:, 2]), 1.0)[sphere.faces]
    assert pole.any(axis=1).sum() >= 2 * 12  # the fans around both poles
    fan = pole.any(axis=1)
    others = np.where(pole, np.nan, corners[..., 0])
    np.testing.assert_allclose(corners[..., 0][pole], np.nanmean(others, axis=1)[fan])
    assert np.ptp(corners[..., 0], axis=1).max() < 0.25


@pytest.mark.parametrize("det_sign", [1.0, -1.0])
def test_linear_map_scales_volume_by_determinant(det_sign):
    matrix = anisotropic_matrix(det_sign)
    bm = sphere_mesh(lambda z: z @ matrix.T, 1.3)
    np.testing.assert_allclose(np.linalg.norm(bm.latent, axis=1), 1.3, rtol=0, atol=1e-12)
    latent_volume = abs(trimesh.Trimesh(bm.latent, bm.mesh.faces, process=False).volume)
    determinant = abs(np.linalg.det(matrix))
    report = assert_valid(bm.mesh)
    assert report["volume"] == pytest.approx(determinant * latent_volume, rel=1e-10)
    assert report["volume"] / (determinant * BALL * 1.3**3) == pytest.approx(1.0, abs=0.01)
    assert bm.info["flipped"] == (det_sign < 0)
    assert bm.info["max_edge"] <= bm.info["tolerance"]


def test_refinement_follows_the_stretch():
    """Long mapped edges are split: the refined mesh is finer along the stretched axis."""
    matrix = np.diag([4.0, 1.0, 1.0])
    bm = sphere_mesh(lambda z: z @ matrix.T, 1.0, subdivisions=2, tolerance=0.2)
    edges = bm.mesh.edges_unique
    latent_vectors = np.abs(bm.latent[edges[:, 0]] - bm.latent[edges[:, 1]])
    assert bm.info["max_edge"] <= 0.2 and bm.info["n_refinement_passes"] > 0
    # Latent edges end up shorter in x (stretched 4x) than in y and z.
    assert latent_vectors[:, 0].max() < 0.6 * latent_vectors[:, 1:].max()
    assert_valid(bm.mesh)


def test_nonlinear_volume_preserving_map():
    bm = sphere_mesh(shear, 1.0)
    report = assert_valid(bm.mesh)
    assert report["volume"] / BALL == pytest.approx(1.0, abs=0.01)
    assert bm.info["max_edge"] <= bm.info["tolerance"]
    np.testing.assert_allclose(bm.mesh.vertices, shear(bm.latent), atol=1e-12)


def test_face_budget_is_respected_and_mesh_stays_closed():
    bm = sphere_mesh(shear, 1.0, subdivisions=2, tolerance=0.01, max_faces=3000)
    assert bm.info["hit_face_budget"]
    assert len(bm.mesh.faces) <= 3000
    assert bm.info["max_edge"] > 0.01
    assert_valid(bm.mesh)


def test_budget_below_the_start_keeps_the_icosphere():
    bm = sphere_mesh(shear, 1.0, subdivisions=1, tolerance=0.01, max_faces=10)
    assert bm.info["hit_face_budget"] and len(bm.mesh.faces) == 80


def roll(z):
    """Rolls a flattened ball up into a tight spiral: injective, but coarse chords cut between the layers."""
    angle = 4.0 * (z[:, 0] + 1.0)
    rho = 1.0 + 0.04 * angle + 0.05 * z[:, 2]
    return np.column_stack([rho * np.cos(angle), rho * np.sin(angle), z[:, 1]])


def test_intersection_rounds_repair_discretisation_crossings():
    coarse = sphere_mesh(roll, 1.0, subdivisions=1, tolerance=np.inf, check_intersections=False)
    assert count_self_intersections(coarse.mesh) > 0
    repaired = sphere_mesh(roll, 1.0, subdivisions=1, tolerance=np.inf)
    assert repaired.info["n_intersection_rounds"] >= 1 and repaired.info["self_intersections"] == 0
    assert_valid(repaired.mesh)


def test_short_chords_over_long_arcs_are_split():
    """Latent edges across the rolled-up direction have short chords but their arcs leave the chord far behind."""
    bm = sphere_mesh(roll, 1.0, subdivisions=1, tolerance=0.15, check_intersections=False)
    assert bm.info["n_refinement_passes"] < 20 and not bm.info["hit_face_budget"]
    edges = bm.mesh.edges_unique
    midpoints = bm.latent[edges[:, 0]] + bm.latent[edges[:, 1]]
    midpoints /= np.linalg.norm(midpoints, axis=1, keepdims=True)
    arcs = np.linalg.norm(roll(midpoints) - bm.mesh.vertices[edges[:, 0]], axis=1)
    arcs += np.linalg.norm(roll(midpoints) - bm.mesh.vertices[edges[:, 1]], axis=1)
    assert arcs.max() <= 0.15 and bm.info["max_edge"] <= 0.15


def test_folding_map_reports_its_self_intersections():
    """A map that bends a stretched ball round more than a full turn makes its ends overlap."""

    def bend(z):
        angle, rho = 3.5 * z[:, 0], 2.0 + 0.5 * z[:, 1]
        return np.column_stack([rho * np.cos(angle), rho * np.sin(angle), 0.5 * z[:, 2]])

    bm = sphere_mesh(bend, 1.0, subdivisions=2, max_faces=4000)
    assert bm.info["self_intersections"] > 0
    assert bm.info["n_intersection_rounds"] >= 1 or bm.info["hit_face_budget"]
    assert len(bm.mesh.faces) <= 4000
    report = validity(bm.mesh)
    assert report["watertight"] and report["winding_consistent"]
    assert report["self_intersections"] == bm.info["self_intersections"]


@pytest.mark.parametrize(
    "kwargs",
    [{"radius": 0.0}, {"radius": -1.0}, {"radius": np.nan}, {"radius": np.inf}, {"radius": "one"},
     {"radius": 1.0, "subdivisions": -1}, {"radius": 1.0, "subdivisions": 1.5},
     {"radius": 1.0, "tolerance": 0.0}, {"radius": 1.0, "max_faces": 0}],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(PcflowError):
        sphere_mesh(lambda z: z, **kwargs)


@pytest.mark.parametrize("inverse", [lambda z: z[:, :2], lambda z: np.full_like(z, np.nan)])
def test_bad_inverse_output_raises(inverse):
    with pytest.raises(PcflowError, match="inverse returned"):
        sphere_mesh(inverse, 1.0, subdivisions=1)


# ----------------------------------------------------------------------------------- boundary_mesh


def test_boundary_mesh_uses_model_radius_and_coverage():
    model = StandInModel("shear", scale=0.5, shift=(1.0, -2.0, 3.0), radius=2.0)
    full = boundary_mesh(model)
    assert full.radius == 2.0
    assert full.mesh.volume == pytest.approx(model.volume_, rel=0.01)
    np.testing.assert_allclose(model.decision_function(full.mesh.vertices), 0.0, atol=1e-9)
    half = boundary_mesh(model, coverage=0.5)
    assert half.radius == pytest.approx(model.radius_at(0.5))
    np.testing.assert_allclose(np.linalg.norm(half.latent, axis=1), half.radius, atol=1e-12)
    assert half.mesh.volume == pytest.approx(0.5 * model.volume_, rel=0.01)
    assert_valid(half.mesh)


@pytest.mark.parametrize("coverage", [0.0, 1.0, 1.5, -0.1, "half"])
def test_boundary_mesh_rejects_bad_coverage(coverage):
    with pytest.raises(PcflowError, match="coverage"):
        boundary_mesh(StandInModel(), coverage=coverage)


def test_boundary_mesh_needs_a_3d_model():
    model = StandInModel()
    model.n_features_in_ = 2
    with pytest.raises(PcflowError, match="n_features_in_"):
        boundary_mesh(model)


# ---------------------------------------------------------------------------------------- validity


def test_validity_flags_open_inverted_split_and_miswound_meshes():
    sphere = trimesh.creation.icosphere(subdivisions=2)
    assert_valid(sphere)

    opened = trimesh.Trimesh(sphere.vertices, sphere.faces[1:], process=False)
    report = validity(opened)
    assert not report["watertight"] and report["genus"] is None and report["euler"] == 1

    inverted = trimesh.Trimesh(sphere.vertices, sphere.faces[:, ::-1], process=False)
    report = validity(inverted)
    assert report["watertight"] and report["winding_consistent"] and not report["positive_volume"]
    assert report["volume"] == pytest.approx(-sphere.volume)

    miswound = sphere.faces.copy()
    miswound[0] = miswound[0, ::-1]
    assert not validity(trimesh.Trimesh(sphere.vertices, miswound, process=False))["winding_consistent"]

    pair = trimesh.util.concatenate([sphere, sphere.copy().apply_translation([5.0, 0.0, 0.0])])
    report = validity(pair)
    assert report["n_components"] == 2 and report["genus"] is None and report["euler"] == 4


def test_validity_genus_of_a_torus():
    torus = trimesh.creation.torus(major_radius=1.0, minor_radius=0.3)
    report = validity(torus)
    assert report["watertight"] and report["n_components"] == 1
    assert report["euler"] == 0 and report["genus"] == 1
    assert report["self_intersections"] == 0
    assert report["n_vertices"] == len(torus.vertices) and report["n_faces"] == len(torus.faces)


# ----------------------------------------------------------------------------- self-intersections


def soup(*triangles):
    vertices = np.concatenate([np.asarray(t, dtype=float) for t in triangles])
    return trimesh.Trimesh(vertices, np.arange(len(vertices)).reshape(-1, 3), process=False)


BASE = [[0, 0, 0], [2, 0, 0], [0, 2, 0]]


@pytest.mark.parametrize(
    "other, expected",
    [
        ([[0.5, 0.5, -1], [0.5, 0.5, 1], [1.5, 0.2, 0.3]], 1),  # pierces the base
        ([[0, 0, 1], [2, 0, 1], [0, 2, 1]], 0),  # parallel, disjoint
        ([[5, 5, -1], [5, 5, 1], [6, 5, 0]], 0),  # far away
        ([[0.3, 0.3, 0], [3, 0.3, 0], [0.3, 3, 0]], 1),  # coplanar overlap
        ([[3, 3, 0], [4, 3, 0], [3, 4, 0]], 0),  # coplanar, disjoint
    ],
)
def test_count_hand_made_pairs(other, expected):
    assert count_self_intersections(soup(BASE, other)) == expected


def test_pairs_sharing_vertices_are_not_counted():
    # Two faces on one edge, folded so they pass near each other, and a coplanar neighbour.
    vertices = np.array([[0, 0, 0], [2, 0, 0], [0, 2, 0], [1, -2, 0], [0.5, 1.0, 0.1]], dtype=float)
    faces = np.array([[0, 1, 2], [0, 3, 1], [0, 1, 4]])
    assert count_self_intersections(trimesh.Trimesh(vertices, faces, process=False)) == 0


def brute_force_count(triangles):
    """Slow reference: for each vertex-disjoint pair, solve each edge against the other plane."""
    count = 0
    for (i, s), (j, t) in itertools.combinations(enumerate(triangles), 2):
        found = False
        for edges_of, other in ((s, t), (t, s)):
            for p, q in ((edges_of[0], edges_of[1]), (edges_of[1], edges_of[2]), (edges_of[2], edges_of[0])):
                system = np.column_stack([q - p, -(other[1] - other[0]), -(other[2] - other[0])])
                along, u, v = np.linalg.solve(system, other[0] - p)
                if 0 < along < 1 and u > 0 and v > 0 and u + v < 1:
                    found = True
        count += found
    return count


def test_count_matches_brute_force_on_random_soup():
    rng = np.random.default_rng(0)
    centres = rng.uniform(0, 3, size=(40, 1, 3))
    triangles = centres + rng.normal(scale=0.5, size=(40, 3, 3))
    expected = brute_force_count(triangles)
    assert expected > 5
    assert count_self_intersections(soup(*triangles)) == expected


# -------------------------------------------------------------------------------- unsupported area


def test_unsupported_share_matches_brute_force_distances():
    rng = np.random.default_rng(0)
    box = trimesh.creation.box(extents=(2.0, 1.0, 0.5))
    points = rng.uniform(-1.0, 1.0, size=(40, 3)) * [1.0, 0.5, 0.25]
    samples, _ = trimesh.sample.sample_surface(box, 50_000, seed=np.random.default_rng(1))
    nearest = np.sqrt(((samples[:, None, :] - points[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
    for distance in (0.1, 0.3, 0.6):
        reference = float(np.mean(nearest > distance))
        assert unsupported_share(box, points, distance, n_samples=20_000) == pytest.approx(reference, abs=0.015)


def test_unsupported_share_of_fully_and_half_covered_spheres():
    sphere = trimesh.creation.icosphere(subdivisions=5)
    assert unsupported_share(sphere, sphere.vertices, 0.05) == 0.0
    assert unsupported_share(sphere, sphere.vertices[sphere.vertices[:, 2] > 0], 0.05) == pytest.approx(0.5, abs=0.04)


# -------------------------------------------------------------------------------- marching cubes


@pytest.mark.parametrize(
    "model",
    [StandInModel(matrix=np.diag([1.0, 0.6, 0.4]), shift=(0.5, 0.0, -1.0)), StandInModel("shear", scale=2.0)],
    ids=["ellipsoid", "shear"],
)
def test_marching_cubes_agrees_with_the_boundary_mesh(model):
    resolution, padding = 40, 0.1
    cubes = marching_cubes_mesh(model, resolution=resolution, padding=padding)
    report = validity(cubes, check_intersections=False)
    assert report["watertight"] and report["positive_volume"] and report["n_components"] == 1
    assert report["volume"] == pytest.approx(model.volume_, rel=0.03)

    reference = boundary_mesh(model).mesh
    spacing = np.ptp(reference.bounds, axis=0).max() * (1 + 2 * padding) / (resolution - 1)
    to_reference = np.abs(trimesh.proximity.closest_point(reference, cubes.vertices)[1]).max()
    to_cubes = np.abs(trimesh.proximity.closest_point(cubes, reference.vertices)[1]).max()
    assert max(to_reference, to_cubes) < 0.25 * spacing


def test_marching_cubes_with_coverage_is_smaller():
    model = StandInModel(matrix=np.diag([1.0, 0.6, 0.4]))
    cubes = marching_cubes_mesh(model, coverage=0.5, resolution=32)
    assert cubes.volume == pytest.approx(0.5 * model.volume_, rel=0.05)


@pytest.mark.parametrize(
    "kwargs", [{"resolution": 4}, {"resolution": 32.0}, {"padding": -0.1}, {"padding": "wide"}, {"coverage": 2.0}]
)
def test_marching_cubes_rejects_bad_arguments(kwargs):
    with pytest.raises(PcflowError):
        marching_cubes_mesh(StandInModel(), **kwargs)


# ----------------------------------------------------------------------------------------------------------------
# snapping onto points


def unit_directions(n, seed=0):
    directions = np.random.default_rng(seed).normal(size=(n, 3))
    return directions / np.linalg.norm(directions, axis=1, keepdims=True)


def test_snap_moves_a_sphere_onto_the_noisy_sphere_of_its_points():
    rng = np.random.default_rng(1)
    points = 1.06 * unit_directions(30_000) + rng.normal(scale=0.005, size=(30_000, 3))
    unit = sphere_mesh(lambda z: z, 1.0, tolerance=0.1)
    snapped = snap_to_points(unit, points)
    radii = np.linalg.norm(snapped.mesh.vertices, axis=1)
    assert abs(radii.mean() - 1.06) < 0.002 and np.abs(radii - 1.06).max() < 0.01
    np.testing.assert_array_equal(snapped.mesh.faces, unit.mesh.faces)
    np.testing.assert_array_equal(snapped.latent, unit.latent)
    np.testing.assert_array_equal(snapped.uv, unit.uv)
    checks = validity(snapped.mesh)
    assert checks["watertight"] and checks["genus"] == 0 and checks["self_intersections"] == 0
    info = snapped.info["snap"]
    assert info["rounds"] == 3 and info["n_points"] == 30_000
    assert info["max_offset"] == pytest.approx(0.02 * np.linalg.norm(np.ptp(unit.mesh.vertices, axis=0)))
    assert info["mean_move"] == pytest.approx(np.linalg.norm(snapped.mesh.vertices - unit.mesh.vertices, axis=1).mean())
    np.testing.assert_array_equal(unit.mesh.vertices, unit.latent)  # the input is not changed


def test_snap_reach_does_not_shrink_with_the_edge_length():
    """Points 0.06 off a unit sphere meshed with edges under 0.05: the default reach is 2% of the diagonal."""
    points = 1.06 * unit_directions(30_000)
    fine = sphere_mesh(lambda z: z, 1.0, tolerance=0.05)
    assert fine.info["tolerance"] < 0.06
    radii = np.linalg.norm(snap_to_points(fine, points).mesh.vertices, axis=1)
    assert abs(radii.mean() - 1.06) < 0.002


@pytest.mark.parametrize("half", [0.03, 0.015])
def test_snap_keeps_a_thin_part_thick(half):
    """Points on both sides of a slab thinner than max_offset: each side keeps to its own points."""
    rng = np.random.default_rng(2)
    points = unit_directions(40_000) * [1.0, 1.0, half] + rng.normal(scale=0.004, size=(40_000, 3))
    start = sphere_mesh(lambda z: z * [1.0, 1.0, half + 0.01], 1.0, tolerance=0.08)
    snapped = snap_to_points(start, points, max_offset=0.08)  # the other side is within reach
    vertices = snapped.mesh.vertices
    centre = np.hypot(vertices[:, 0], vertices[:, 1]) < 0.5
    assert abs(vertices[centre & (vertices[:, 2] > 0), 2].mean() - half) < 0.003
    assert abs(vertices[centre & (vertices[:, 2] < 0), 2].mean() + half) < 0.003


def test_snap_onto_sparse_noisy_points_keeps_a_fine_mesh_smooth():
    """Ten times more vertices than points, noise 0.01: the offsets pool enough rings and are shrunk by their
    standard error, so the mesh stays within a fraction of the noise of the surface the points were drawn from."""
    rng = np.random.default_rng(5)
    points = unit_directions(1500, seed=4) + rng.normal(scale=0.01, size=(1500, 3))
    unit = sphere_mesh(lambda z: z, 1.0, tolerance=0.05)
    assert len(unit.mesh.vertices) > 10 * len(points)
    radii = np.linalg.norm(snap_to_points(unit, points).mesh.vertices, axis=1)
    assert np.abs(radii - 1.0).mean() < 0.003


def test_snap_leaves_vertices_without_points_in_place():
    directions = unit_directions(20_000)
    points = 1.05 * directions[directions[:, 2] > 0.3]
    unit = sphere_mesh(lambda z: z, 1.0, tolerance=0.1)
    moved = snap_to_points(unit, points).mesh.vertices
    far = unit.mesh.vertices[:, 2] < -0.3
    np.testing.assert_array_equal(moved[far], unit.mesh.vertices[far])
    assert np.linalg.norm(moved[unit.mesh.vertices[:, 2] > 0.6], axis=1).min() > 1.04


def test_snap_backs_off_where_moves_would_fold_or_cross(monkeypatch):
    import pcflow.meshing.snap as snap_module

    rng = np.random.default_rng(3)
    unit = sphere_mesh(lambda z: z, 1.0, tolerance=0.1)
    wild = rng.choice([-0.4, 0.4], size=len(unit.mesh.vertices))  # neighbours pulled far apart: folds and crossings
    monkeypatch.setattr(snap_module, "_pooled_offsets", lambda *args: wild)
    snapped = snap_to_points(unit, unit_directions(1000), iterations=1)
    info = snapped.info["snap"]
    assert info["rounds"] == 1 and info["n_backoffs"] > 0 and info["max_move"] > 0
    assert count_self_intersections(snapped.mesh) == 0
    before = unit.mesh.face_normals
    after = trimesh.Trimesh(snapped.mesh.vertices, snapped.mesh.faces, process=False).face_normals
    assert np.einsum("ij,ij->i", before, after).min() >= 0.5 - 1e-9  # no face turned by more than 60 degrees


def test_snap_returns_a_self_intersecting_mesh_unmoved():
    unit = sphere_mesh(lambda z: z, 1.0, subdivisions=2, tolerance=np.inf)
    crossed = BoundaryMesh(mesh=unit.mesh, latent=unit.latent, uv=unit.uv, radius=1.0,
                           info={**unit.info, "self_intersections": 2})
    snapped = snap_to_points(crossed, 1.1 * unit_directions(2000))
    np.testing.assert_array_equal(snapped.mesh.vertices, unit.mesh.vertices)
    assert snapped.info["snap"]["rounds"] == 0 and snapped.info["self_intersections"] == 2
    unchecked = BoundaryMesh(mesh=unit.mesh, latent=unit.latent, uv=unit.uv, radius=1.0,
                             info={**unit.info, "self_intersections": None})
    assert snap_to_points(unchecked, 1.1 * unit_directions(2000)).info["self_intersections"] == 0  # counted first


@pytest.mark.parametrize(
    "points, kwargs, message",
    [
        (np.zeros((5, 2)), {}, "expected (N, 3)"),
        (np.zeros((0, 3)), {}, "expected (N, 3)"),
        (np.full((5, 3), np.nan), {}, "non-finite"),
        (np.zeros((5, 3)), {"iterations": -1}, "iterations=-1"),
        (np.zeros((5, 3)), {"max_offset": 0.0}, "max_offset"),
    ],
)
def test_snap_rejects_bad_arguments(points, kwargs, message):
    unit = sphere_mesh(lambda z: z, 1.0, subdivisions=1, tolerance=np.inf)
    with pytest.raises(PcflowError, match=re.escape(message)):
        snap_to_points(unit, points, **kwargs)
