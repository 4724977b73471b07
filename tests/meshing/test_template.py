"""Tests for pcflow.meshing.template: the sphere's chart and its per-corner coordinates."""

import numpy as np
import trimesh

from pcflow.meshing import SPHERE, BoundaryMesh, IcoSphere, sphere_mesh, validity
from pcflow.meshing.template import _sphere_uv


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


def test_icosphere_start_and_midpoints_lie_on_the_sphere():
    latent, faces = IcoSphere().start(2, 1.7)
    reference = trimesh.creation.icosphere(subdivisions=2)
    np.testing.assert_array_equal(faces, reference.faces)
    np.testing.assert_allclose(latent, 1.7 * reference.vertices, atol=1e-12)
    middle = SPHERE.midpoints(latent[faces[:, 0]], latent[faces[:, 1]], 1.7)
    np.testing.assert_allclose(np.linalg.norm(middle, axis=1), 1.7, atol=1e-12)
    chord = latent[faces[:, 0]] + latent[faces[:, 1]]  # the arc's midpoint: along the chord's, on the sphere
    np.testing.assert_allclose(np.cross(middle, chord), 0.0, atol=1e-12)


class CountingSphere(IcoSphere):
    """The sphere, counting the calls the mesh construction makes of its template."""

    def __init__(self):
        object.__setattr__(self, "calls", {"start": 0, "midpoints": 0, "uv": 0, "face_uv": 0})

    def __getattribute__(self, name):
        calls = object.__getattribute__(self, "calls")
        if name in calls:
            calls[name] += 1
        return object.__getattribute__(self, name)


def test_sphere_mesh_takes_the_template_it_is_given():
    template = CountingSphere()
    stretch = np.diag([3.0, 1.0, 1.0])
    bm = sphere_mesh(lambda z: z @ stretch, 1.0, subdivisions=1, tolerance=0.3, template=template)
    default = sphere_mesh(lambda z: z @ stretch, 1.0, subdivisions=1, tolerance=0.3)
    assert bm.template is template and default.template == SPHERE
    np.testing.assert_array_equal(bm.mesh.vertices, default.mesh.vertices)
    np.testing.assert_array_equal(bm.mesh.faces, default.mesh.faces)
    assert template.calls["start"] == 1 and template.calls["midpoints"] >= 1 and template.calls["uv"] == 1
    np.testing.assert_array_equal(bm.face_uv, default.face_uv)
    assert template.calls["face_uv"] == 1
    assert validity(bm.mesh)["genus"] == template.genus == 0


def _torus_template():
    from pcflow.latent import LatentTorus
    from pcflow.meshing import Torus

    return Torus(LatentTorus((0.1, 0.0, -0.2), tuple(np.array([0.0, 0.6, 0.8])), 1.5, 1.8))


def test_torus_start_is_a_closed_genus_1_grid_on_the_torus_sized_like_the_icosphere():
    import torch

    template = _torus_template()
    for subdivisions in (1, 3):
        latent, faces = template.start(subdivisions, 0.5)
        checks = validity(trimesh.Trimesh(latent, faces, process=False))
        assert checks["watertight"] and checks["winding_consistent"] and checks["positive_volume"]
        assert checks["genus"] == 1 and checks["n_components"] == 1
        assert 0.5 < len(faces) / (20 * 4**subdivisions) < 2.0
        np.testing.assert_allclose(template.torus.level(torch.as_tensor(latent)).numpy(), 0.5, rtol=1e-10)


def test_torus_midpoints_lie_on_it_halfway_in_angle_across_the_seams():
    import torch

    template = _torus_template()
    torus = template.torus
    u = np.array([3.0, -3.0, 0.5])  # the first pair straddles the ring's seam at pi
    v = np.array([0.2, 0.1, -3.1])  # the last straddles the tube's
    first = torus.point(u, v, 0.5)
    second = torus.point(u + np.array([0.4, -0.2, 0.3]), v + np.array([0.1, 0.3, -0.2]), 0.5)
    middle = template.midpoints(first, second, 0.5)
    np.testing.assert_allclose(torus.level(torch.as_tensor(middle)).numpy(), 0.5, rtol=1e-10)
    mu, mv = torus.angles(middle)
    np.testing.assert_allclose(np.cos(mu - (u + np.array([0.2, -0.1, 0.15]))), 1.0, atol=1e-10)
    np.testing.assert_allclose(np.cos(mv - (v + np.array([0.05, 0.15, -0.1]))), 1.0, atol=1e-10)


def test_torus_mesh_of_a_map_is_genus_1_without_crossings_and_its_face_uv_unbroken():
    template = _torus_template()
    bm = sphere_mesh(lambda z: z * np.array([1.0, 0.7, 1.3]), 0.5, subdivisions=2, template=template)
    checks = validity(bm.mesh)
    assert checks["watertight"] and checks["genus"] == 1 and checks["self_intersections"] == 0
    assert bm.template is template and bm.info["n_refinement_passes"] >= 1
    assert np.all((bm.uv >= 0) & (bm.uv < 1))
    corners = bm.face_uv
    assert np.ptp(bm.uv[bm.mesh.faces], axis=1).max() > 0.9  # per vertex, faces on a seam span the chart
    assert np.ptp(corners, axis=1).max() < 0.25
