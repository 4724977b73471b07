"""Tests for pcflow.scene.trim: the trimmed surface is open, manifold, without islands, with its loops counted."""

import numpy as np
import pytest
import trimesh

from pcflow.errors import PcflowError
from pcflow.scene.trim import boundary_loops, trim_mesh


def fans_per_vertex(faces):
    """Reference: per vertex, the number of groups of its faces connected through edges at that vertex (a plain
    breadth-first search over each vertex's faces)."""
    around = {}
    for f, face in enumerate(faces.tolist()):
        for v in face:
            around.setdefault(v, []).append(f)
    counts = {}
    for v, incident in around.items():
        unseen, n = set(incident), 0
        while unseen:
            n += 1
            stack = [unseen.pop()]
            while stack:
                f = stack.pop()
                others = set(faces[f].tolist()) - {v}
                for g in list(unseen):
                    if others & set(faces[g].tolist()):  # shares an edge at v
                        unseen.remove(g)
                        stack.append(g)
        counts[v] = n
    return counts


def assert_open_manifold(mesh):
    edge_faces = np.bincount(mesh.edges_unique_inverse)
    assert edge_faces.max() <= 2, "every edge in at most two faces"
    assert set(fans_per_vertex(np.asarray(mesh.faces)).values()) == {1}, "one fan of faces per vertex"
    assert not mesh.is_watertight
    assert mesh.is_winding_consistent


def sphere_points(n, seed=0):
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(n, 3))
    return directions / np.linalg.norm(directions, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def sphere():
    return trimesh.creation.icosphere(subdivisions=4)  # 5120 faces, edges about 0.077


def test_points_on_one_hemisphere_keep_half_the_sphere(sphere):
    points = sphere_points(20000)
    points = points[points[:, 2] > 0]
    trimmed = trim_mesh(sphere, points, 0.05)
    mesh = trimmed.mesh
    assert trimmed.area_share == pytest.approx(0.5, abs=0.03)
    assert mesh.area == pytest.approx(trimmed.area_share * sphere.area)
    assert trimmed.boundary_loops == 1 == len(mesh.outline().entities)
    assert_open_manifold(mesh)
    assert trimmed.n_faces_removed == len(sphere.faces) - len(mesh.faces)
    # every kept face near the points, every removed face's centroid far from them
    centroids = sphere.triangles_center
    from scipy.spatial.distance import cdist

    near = np.concatenate([cdist(chunk, points).min(axis=1) for chunk in np.array_split(centroids, 20)]) <= 0.05
    exact = trim_mesh(sphere, points, 0.05, max_hole_share=0.0)
    np.testing.assert_array_equal(np.flatnonzero(near), exact.face_index)
    assert set(exact.face_index) <= set(trimmed.face_index)
    # the kept part is the input's, in the input's order
    np.testing.assert_array_equal(np.diff(trimmed.vertex_index) > 0, True)
    np.testing.assert_array_equal(mesh.vertices, sphere.vertices[trimmed.vertex_index])
    np.testing.assert_array_equal(trimmed.vertex_index[mesh.faces], sphere.faces[trimmed.face_index])
    np.testing.assert_allclose(mesh.vertex_normals, sphere.vertex_normals[trimmed.vertex_index])
    assert mesh.centroid[2] > 0.4


def test_points_everywhere_remove_nothing(sphere):
    trimmed = trim_mesh(sphere, sphere_points(20000, seed=1), 0.05)
    assert (trimmed.n_faces_removed, trimmed.boundary_loops, trimmed.area_share) == (0, 0, 1.0)
    assert trimmed.mesh.is_watertight
    np.testing.assert_array_equal(trimmed.mesh.faces, sphere.faces)
    np.testing.assert_array_equal(trimmed.mesh.vertices, sphere.vertices)


def test_two_caps_give_two_loops(sphere):
    points = sphere_points(20000, seed=2)
    points = points[np.abs(points[:, 2]) > 0.5]
    trimmed = trim_mesh(sphere, points, 0.05)
    assert trimmed.boundary_loops == 2
    assert len(trimmed.mesh.split(only_watertight=False)) == 2
    assert_open_manifold(trimmed.mesh)
    # a band: the caps' complement, one piece with two loops
    points = sphere_points(20000, seed=3)
    band = trim_mesh(sphere, points[np.abs(points[:, 2]) < 0.3], 0.05)
    assert band.boundary_loops == 2 and len(band.mesh.split(only_watertight=False)) == 1
    assert_open_manifold(band.mesh)


def fan_of(mesh, vertex):
    """The faces around `vertex` in cyclic order."""
    incident = [f for f in range(len(mesh.faces)) if vertex in mesh.faces[f]]
    order = [incident.pop(0)]
    while incident:
        last = set(mesh.faces[order[-1]].tolist())
        following = next(f for f in incident if len(last & set(mesh.faces[f].tolist())) == 2)
        incident.remove(following)
        order.append(following)
    return order


def test_a_pinched_vertex_keeps_its_larger_fan(sphere):
    # keep exactly three faces around vertex 0: two neighbours (one fan) and the face opposite (another fan)
    ring = fan_of(sphere, 0)
    chosen = [ring[0], ring[1], ring[3]]
    assert fans_per_vertex(sphere.faces[chosen])[0] == 2  # the plain selection is pinched
    trimmed = trim_mesh(sphere, sphere.triangles_center[chosen], 1e-9)
    np.testing.assert_array_equal(trimmed.face_index, sorted(chosen[:2]))
    assert trimmed.boundary_loops == 1
    assert_open_manifold(trimmed.mesh)


def test_pinches_in_a_ragged_selection_are_all_resolved(sphere):
    rng = np.random.default_rng(4)
    chosen = np.flatnonzero(rng.random(len(sphere.faces)) < 0.6)  # many pinched vertices
    assert max(fans_per_vertex(sphere.faces[chosen]).values()) > 1
    trimmed = trim_mesh(sphere, sphere.triangles_center[chosen], 1e-9, min_island_share=0.0, max_hole_share=0.0)
    assert set(trimmed.face_index) <= set(chosen) and len(trimmed.face_index) > 0.3 * len(chosen)
    assert_open_manifold(trimmed.mesh)
    assert trimmed.boundary_loops == len(trimmed.mesh.outline().entities)
    again = trim_mesh(sphere, sphere.triangles_center[chosen], 1e-9, min_island_share=0.0, max_hole_share=0.0)
    np.testing.assert_array_equal(again.face_index, trimmed.face_index)  # deterministic


def test_small_islands_are_dropped(sphere):
    points = sphere_points(20000, seed=5)
    cap = points[points[:, 2] > 0]
    spot = np.array([[0.0, 0.0, -1.0]])  # a few faces at the south pole
    trimmed = trim_mesh(sphere, np.vstack([cap, spot]), 0.05)
    plain = trim_mesh(sphere, cap, 0.05)
    np.testing.assert_array_equal(trimmed.face_index, plain.face_index)
    kept = trim_mesh(sphere, np.vstack([cap, spot]), 0.05, min_island_share=0.0)
    assert len(kept.face_index) > len(plain.face_index) and kept.boundary_loops == 2


def test_gaps_of_the_sampling_are_kept(sphere):
    points = sphere_points(3000, seed=6)
    points = points[points[:, 2] > 0]  # 1500 points, spacing about 0.065: holes between them at distance 0.04
    holey = trim_mesh(sphere, points, 0.04, max_hole_share=0.0)
    filled = trim_mesh(sphere, points, 0.04)
    assert holey.boundary_loops > 10
    assert filled.boundary_loops == 1
    assert filled.area_share == pytest.approx(0.5, abs=0.03) and holey.area_share < filled.area_share - 0.05
    assert_open_manifold(filled.mesh)


def test_no_face_near_the_points_gives_an_empty_mesh(sphere):
    trimmed = trim_mesh(sphere, np.array([[5.0, 0.0, 0.0]]), 0.1)
    assert len(trimmed.mesh.faces) == 0 and trimmed.boundary_loops == 0
    assert trimmed.n_faces_removed == len(sphere.faces) and trimmed.area_share == 0.0


def test_boundary_loops_of_two_squares():
    faces = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    assert boundary_loops(faces) == 2


@pytest.mark.parametrize(
    "points, distance, kwargs, match",
    [
        (np.zeros((3, 3)), 0.0, {}, "distance=0.0 is invalid"),
        (np.zeros((3, 3)), -1.0, {}, "distance=-1.0 is invalid"),
        (np.zeros((3, 3)), float("nan"), {}, "distance=nan is invalid"),
        (np.zeros((3, 3)), "far", {}, "distance='far' is invalid"),
        (np.zeros((0, 3)), 0.1, {}, "points has shape"),
        (np.zeros((3, 2)), 0.1, {}, "points has shape"),
        (np.array([[0.0, np.nan, 0.0]]), 0.1, {}, "NaN or infinite"),
        (np.zeros((3, 3)), 0.1, {"min_island_share": 1.0}, "min_island_share=1.0"),
        (np.zeros((3, 3)), 0.1, {"max_hole_share": -0.1}, "max_hole_share=-0.1"),
        (np.zeros((3, 3)), 0.1, {"max_hole_share": "all"}, "max_hole_share='all'"),
    ],
)
def test_bad_arguments_are_one_line_errors(sphere, points, distance, kwargs, match):
    with pytest.raises(PcflowError, match=match) as error:
        trim_mesh(sphere, points, distance, **kwargs)
    assert "\n" not in str(error.value)


def test_bad_meshes_are_refused():
    with pytest.raises(PcflowError, match="no faces"):
        trim_mesh(trimesh.Trimesh(np.zeros((3, 3)), np.zeros((0, 3), int)), np.zeros((1, 3)), 0.1)
    fin = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, -1, 0]],
                          [[0, 1, 2], [0, 1, 3], [0, 1, 4]], process=False)
    with pytest.raises(PcflowError, match="1 edges of three or more faces"):
        trim_mesh(fin, np.zeros((1, 3)), 0.1)
